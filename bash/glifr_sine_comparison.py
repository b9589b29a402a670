"""Sine-generation MSE of GLIFR hom / lhet / rhet (with after-spike currents) and the
parameter-matched RNN and LSTM at one budget, next to the published values.

Every model is a ``train_glifr`` run (under OUT); rhet starts from the trained lhet run.
Writes ``comparison.json`` and ``comparison.md`` into OUT.

Run:
    python bash/glifr_sine_comparison.py --hidden 32 --epochs 1000 --lr 3e-3 --ntrials 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from nrmkit.runs.summaries import mean_std

#: published sine MSE (mean over 10 trials; hidden sizes matched to an RNN, 5000 epochs).
PUBLISHED = {"RNN": 0.056, "LSTM": 0.0094, "GLIFR-homa": 0.0348, "GLIFR-lheta": 0.0227,
             "GLIFR-rheta": 0.0115}
RUNS = [("GLIFR-homa", ["--model", "glifr", "--variant", "hom"]),
        ("GLIFR-lheta", ["--model", "glifr", "--variant", "lhet"]),
        ("GLIFR-rheta", ["--model", "glifr", "--variant", "rhet"]),
        ("RNN", ["--model", "rnn"]), ("LSTM", ["--model", "lstm"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--ntrials", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("data/runs/glifr_sine_comparison"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    budget = ["--task", "sine", "--hidden", str(args.hidden), "--epochs", str(args.epochs),
              "--lr", str(args.lr), "--ntrials", str(args.ntrials), "--quiet", "--overwrite"]
    rows = {}
    for name, flags in RUNS:
        run_dir = args.out / name
        extra = ["--lhet_run", str(args.out / "GLIFR-lheta")] if name == "GLIFR-rheta" else []
        subprocess.run(["train_glifr", *flags, *budget, *extra, "--output-dir", str(run_dir)],
                       check=True)
        result = json.loads((run_dir / "results.json").read_text())
        mses = [trial["test_mse"] for trial in result["trials"]]
        rows[name] = {"hidden": result["hidden_size"],
                      "parameters": result["parameter_counts"][result["model"]]["parameters"],
                      "mse": mses, "seconds": result["elapsed_seconds"]}
        print(name, rows[name], flush=True)
    (args.out / "comparison.json").write_text(json.dumps({"budget": vars(args) | {
        "out": str(args.out)}, "models": rows}, indent=2) + "\n")
    lines = ["| model | hidden | parameters | test MSE (mean ± s.d., ddof 0) | published MSE |",
             "|---|---|---|---|---|"]
    for name, row in rows.items():
        stats = mean_std(row["mse"])
        spread = f" ± {stats['std']:.4f}" if len(row["mse"]) > 1 else ""
        lines.append(f"| {name} | {row['hidden']} | {row['parameters']} | "
                     f"{stats['mean']:.4f}{spread} | {PUBLISHED[name]} |")
    table = "\n".join(lines) + "\n"
    (args.out / "comparison.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
