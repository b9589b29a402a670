"""Neuronal response modulation against synaptic training: the comparison of the study.

Random networks (``--g``, tanh_stretch) trained with the default procedure to an MSE of
the top ``nle`` exponents to 0, every number evaluated independently of training
(``results.json``: ``evaluation``):

* **parameter sets** (N = 100, nle 10): gains, shifts, gains + shifts (NRM), all synaptic
  weights, and ``train_rd_model_fixed_param`` with K random weights;
* **nle** 1, 10, 25, 50 (gains + shifts, N = 100);
* **N** 50, 100, 200 (gains + shifts, nle 10).

Per run: the evaluated loss before and after training (mean over samples), the best single
global gain's loss, and the epochs until the training loss first falls below
``--threshold`` × the evaluated initial loss. Writes ``comparison.json``, ``comparison.md``
(the README table) and ``figures/comparison.{png,pdf}`` into OUT.

Run everything here:      python bash/nrm_comparison.py all
As SLURM array tasks:     sbatch --array=0-10 --wrap "python bash/nrm_comparison.py run"
                          then: python bash/nrm_comparison.py report
(``run`` takes the task from ``--index`` or ``SLURM_ARRAY_TASK_ID``; ``list`` prints the
11 distinct runs; each run is a resumable nrmkit run folder, so a resubmitted task continues.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

GROUPS = ("parameters", "nle", "n")


def runs(args: argparse.Namespace) -> list[dict]:
    """Every run of the comparison: name, group, the x value it is plotted at, the command."""
    common = ["--g", str(args.g), "--loss", "MSE", "--target", "0", "--n_epochs",
              str(args.epochs), "--n_samples", str(args.samples), "--seed", str(args.seed),
              "--quiet", *args.extra]
    nrm = ["--train_gains", "true", "--train_shifts", "true", "--train_weights", "false"]
    sets = {
        "gains": ["--train_gains", "true", "--train_shifts", "false"],
        "shifts": ["--train_gains", "false", "--train_shifts", "true"],
        "gains + shifts": nrm,
        "weights": ["--train_weights", "true", "--train_gains", "false",
                    "--train_shifts", "false"],
    }
    table = [{"name": name, "group": "parameters", "command": [
        "train_rd_model", "--n", "100", "--nle", "10", *flags, *common]}
        for name, flags in sets.items()]
    table += [{"name": f"K = {k} weights", "group": "parameters", "command": [
        "train_rd_model_fixed_param", "--n", "100", "--nle", "10", "--number_param", str(k),
        "0", "0", "--train_weights", "true", "--train_gains", "false", "--train_shifts",
        "false", *common]} for k in args.fixed_weights]
    table += [{"name": f"nle {k}", "group": "nle", "x": k, "command": [
        "train_rd_model", "--n", "100", "--nle", str(k), *nrm, *common]} for k in args.nle]
    table += [{"name": f"N {n}", "group": "n", "x": n, "command": [
        "train_rd_model", "--n", str(n), "--nle", "10", *nrm, *common]} for n in args.n]
    folders: dict[tuple[str, ...], str] = {}  # one run folder per distinct command
    for run in table:
        key = tuple(run["command"])
        run["folder"] = folders.setdefault(key, str(args.out / f"run_{len(folders):02d}"))
    return table


def distinct(table: list[dict]) -> list[dict]:
    """The runs to execute: one per folder (rows with the same command share it)."""
    first: dict[str, dict] = {}
    for run in table:
        first.setdefault(run["folder"], run)
    return list(first.values())


def run_one(run: dict) -> None:
    folder = Path(run["folder"])
    if (folder / "results.json").exists():
        return
    flag = ["--resume"] if (folder / ".nrmkit").exists() else []
    subprocess.run([*run["command"], "--output-dir", run["folder"], *flag], check=True)


def summary(run: dict, threshold: float) -> dict:
    """The run's numbers from its results.json (means over samples)."""
    results = json.loads((Path(run["folder"]) / "results.json").read_text())
    samples = results["samples"]
    initial = [s["evaluation"]["loss_initial"] for s in samples]
    final = [s["evaluation"]["loss_final"] for s in samples]
    reached = []
    for sample, start in zip(samples, initial, strict=True):
        below = np.flatnonzero(np.asarray(sample["loss"], dtype=float) <= threshold * start)
        reached.append(float(below[0] + 1) if below.size else float("nan"))
    baseline = [s["baseline_global_gain"]["loss"] for s in samples
                if s["baseline_global_gain"] is not None]
    counts = samples[0]["n_trainable"]
    return {
        "name": run["name"], "group": run["group"], "x": run.get("x"),
        "command": " ".join(run["command"]), "n_trainable": int(sum(counts.values())),
        "loss_initial": float(np.mean(initial)), "loss_final": float(np.mean(final)),
        "loss_ratio": float(np.mean(np.asarray(final) / np.asarray(initial))),
        "lambda_max_final": float(np.mean([s["evaluation"]["lambda_max_final"]
                                           for s in samples])),
        "baseline_loss": float(np.mean(baseline)) if baseline else None,
        "epochs_to_threshold": float(np.nanmean(reached)) if np.isfinite(reached).any()
        else None,
        "reached": int(np.isfinite(reached).sum()), "samples": len(samples),
        "seconds_per_epoch": float(results["seconds_per_epoch"]),
    }


def report(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = runs(args)
    missing = sorted({run["folder"] for run in table
                      if not (Path(run["folder"]) / "results.json").exists()})
    if missing:
        sys.exit(f"report: no results yet in {', '.join(missing)} (run them first)")
    rows = [summary(run, args.threshold) for run in table]
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=2) + "\n")
    fmt = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    loss = lambda v: "—" if v is None else format(v, ".4f" if v >= 0.01 else ".1e")  # noqa: E731
    lines = [f"| run | trainable | loss before | after | after / before | best global gain "
             f"| epochs to {args.threshold:g}× | λ_max after | s / epoch |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['n_trainable']} | {loss(row['loss_initial'])} | "
            f"{loss(row['loss_final'])} | {row['loss_ratio']:.2g} | "
            f"{loss(row['baseline_loss'])} | {fmt(row['epochs_to_threshold'], '.0f')} "
            f"({row['reached']}/{row['samples']}) | {row['lambda_max_final']:+.3f} | "
            f"{row['seconds_per_epoch']:.2f} |")
    (args.out / "comparison.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    figure, axes = plt.subplots(1, 3, figsize=(10.5, 3.0), layout="constrained")
    by_group = {group: [r for r in rows if r["group"] == group] for group in GROUPS}
    for row in by_group["parameters"]:
        axes[0].scatter(row["n_trainable"], row["loss_ratio"], s=25)
        axes[0].annotate(row["name"], (row["n_trainable"], row["loss_ratio"]), fontsize=7,
                         xytext=(3, 3), textcoords="offset points")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("trainable parameters per network")
    axes[0].set_ylabel("evaluated loss after / before")
    axes[0].axhline(1.0, color="grey", lw=0.6, ls=":")
    for axis, group, label in ((axes[1], "nle", "exponents in the loss (nle)"),
                               (axes[2], "n", "neurons N")):
        points = [(r["x"], r["epochs_to_threshold"]) for r in by_group[group]
                  if r["epochs_to_threshold"] is not None]
        if points:
            axis.plot(*zip(*points, strict=True), "o-", lw=1)
        axis.set_xlabel(label)
        axis.set_ylabel(f"epochs to {args.threshold:g}× the initial loss")
    for axis, letter in zip(axes, "abc", strict=True):
        axis.spines[["top", "right"]].set_visible(False)
        axis.set_title(letter, loc="left", fontweight="bold")
    figure.suptitle(f"NRM vs synaptic training: N=100 and nle 10 unless varied, g={args.g:g}, "
                    f"MSE to 0, "
                    f"{args.epochs} epochs, {args.samples} sample(s)", fontsize=9)
    (args.out / "figures").mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "pdf"):
        figure.savefig(args.out / "figures" / f"comparison.{suffix}", dpi=150)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("list", "run", "all", "report"))
    parser.add_argument("--index", type=int, default=None,
                        help="run only this run (default: $SLURM_ARRAY_TASK_ID)")
    parser.add_argument("--out", type=Path, default=Path("data/runs/nrm_comparison"))
    parser.add_argument("--g", type=float, default=3.0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="epochs until the training loss ≤ this × the initial loss")
    parser.add_argument("--nle", type=int, nargs="+", default=[1, 10, 25, 50])
    parser.add_argument("--n", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--fixed-weights", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="options passed to every run, e.g. --extra --eval_tsim 200")
    return parser


def main() -> None:
    args = make_parser().parse_args()
    table = runs(args)
    if args.action == "list":
        for index, run in enumerate(distinct(table)):
            names = ", ".join(r["name"] for r in table if r["folder"] == run["folder"])
            print(index, names, " ".join(run["command"]), sep="\t")
        return
    if args.action == "run":
        index = args.index if args.index is not None else os.environ.get("SLURM_ARRAY_TASK_ID")
        if index is None:
            sys.exit("run: give --index or set SLURM_ARRAY_TASK_ID")
        todo = distinct(table)
        if not str(index).isdigit() or int(index) >= len(todo):
            sys.exit(f"run: --index must be one of 0 … {len(todo) - 1} (see `list`), "
                     f"got {index}")
        run_one(todo[int(index)])
        return
    if args.action == "all":
        for run in distinct(table):
            run_one(run)
    report(args)


if __name__ == "__main__":
    main()
