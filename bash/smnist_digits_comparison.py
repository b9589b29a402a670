"""Digits test accuracy of RNN-ReLU, RNN-gamma2 (learned shape), ANRU, LSTM and GRU at an
equal budget: same hidden size, learning rate, batch size, epochs and seeds.

Each model is trained by the ``smnist`` workflow itself (one run directory per model and
seed under OUT); the script collects clean, sine-gain and step-drive test accuracies, the
parameter count and the median time per epoch, and writes ``comparison.json`` and a
Markdown table ``comparison.md`` into OUT.

Run:
    python bash/smnist_digits_comparison.py --input rows --epochs 25 --seeds 0 1 2
    python bash/smnist_digits_comparison.py --input pixels --epochs 40 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

from nrmkit.runs.summaries import mean_std

MODELS = {
    "RNN-ReLU": ["--net-type", "RNN", "--nonlin", "ReLU"],
    "RNN-gamma2": ["--net-type", "RNN", "--nonlin", "gamma2"],
    "ANRU": ["--net-type", "ANRU"],
    "LSTM": ["--net-type", "LSTM"],
    "GRU": ["--net-type", "GRU"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", choices=["rows", "pixels"], default="rows")
    parser.add_argument("--nhid", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path("data/runs/smnist_comparison") / args.input
    out.mkdir(parents=True, exist_ok=True)
    budget = ["--input", args.input, "--nhid", str(args.nhid), "--lr", str(args.lr),
              "--batch", str(args.batch), "--epochs", str(args.epochs),
              "--no-fractional_order", "--quiet", "--overwrite"]
    rows = {}
    for name, flags in MODELS.items():
        runs = []
        for seed in args.seeds:
            run_dir = out / f"{name}_seed{seed}"
            done = subprocess.run(["smnist", *flags, *budget, "--seed", str(seed),
                                   "--output-dir", str(run_dir)], capture_output=True, text=True)
            if done.returncode != 0:
                runs.append({"seed": seed, "error": done.stderr.strip().splitlines()[-1]})
                continue
            result = json.loads((run_dir / "results.json").read_text())
            runs.append({"seed": seed, **{key: result[key] for key in (
                "test_accuracy", "test_accuracy_sine", "test_accuracy_step", "n_parameters",
                "seconds_per_epoch")}})
        rows[name] = runs
        print(name, _line(runs), flush=True)
    (out / "comparison.json").write_text(json.dumps({"budget": vars(args) | {"out": str(out)},
                                                     "models": rows}, indent=2) + "\n")
    header = ("| model | parameters | test accuracy (%) | sine gain (%) | step drive (%) | "
              "s / epoch |\n|---|---|---|---|---|---|\n")
    table = header + "".join(f"| {name} | {_line(runs)} |\n" for name, runs in rows.items())
    (out / "comparison.md").write_text(table)
    print(table)


def _line(runs: list[dict]) -> str:
    good = [run for run in runs if "error" not in run]
    if not good:
        return " | ".join(["failed: " + runs[0]["error"]] + [""] * 4)

    def stat(key: str, scale: float = 100.0) -> str:
        stats = mean_std([scale * run[key] for run in good])
        spread = f" ± {stats['std']:.1f}" if len(good) > 1 else ""
        return f"{stats['mean']:.1f}{spread}"

    failed = len(runs) - len(good)
    note = f" ({failed} diverged)" if failed else ""
    return " | ".join([str(good[0]["n_parameters"]), stat("test_accuracy") + note,
                       stat("test_accuracy_sine"), stat("test_accuracy_step"),
                       f"{statistics.median(run['seconds_per_epoch'] for run in good):.2f}"])


if __name__ == "__main__":
    main()
