"""Speed of the batched LIF λ grid search against a one-trial-at-a-time reference loop.

The reference is a direct NumPy transcription of the published per-trial LIF update (one
trial and one scaling factor at a time, ``N×1`` state vectors, the column sum of the weights
of the neurons that spiked): what the published MATLAB script does for each of the
``λ × trials`` pairs. It runs ``--reference_trials`` trials and is extrapolated to the grid;
nrmkit runs the whole grid (every λ and trial at once), once event-driven (the default on
a CPU: only the neurons that spiked are touched, the refractory gate is a state, the read-out
integrated per rate step) and once dense (the spike matrix times the jumps, the gate and the
read-out filter updated for every neuron every step), same noise: same spikes, read-outs
equal to round-off (``max_output_difference_relative``). All use the same network: the
``model.pt`` / ``.mat`` of ``--model`` or, without it, a freshly initialised Dale network.

Run:
    python bash/rate_to_lif_benchmark.py --model data/runs/rate_to_lif/<run>
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from nrmkit.core.checks import int_at_least
from nrmkit.core.errors import ConfigError
from nrmkit.core.streams import stream_seed, torch_generator
from nrmkit.datasets.cognitive import GO_NOGO
from nrmkit.nn.dale import DaleRateRNN, DaleSpec
from nrmkit.nn.lif import LIFParameters, simulate_lif


def reference_trial(w_eff, w_in, w_out, taus_ms, u, scaling, rng) -> np.ndarray:
    """One trial, one λ, step by step as published (seconds, mV); returns the read-out."""
    n = w_eff.shape[0]
    dt, tref, tm, vreset, vpeak, tr = 0.00005, 0.002, 0.010, -65.0, -40.0, 0.002
    td = taus_ms / 1000.0
    w = w_eff / scaling
    steps = u.shape[1] * 100
    ipsc, h, r, hr = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    v = vreset + rng.random(n) * (30 - vreset)
    tlast = np.full(n, -np.inf)
    ext = w_in @ u
    out = np.empty(steps)
    for i in range(1, steps + 1):
        current = ipsc + vpeak + ext[:, min((i - 1) // 100, u.shape[1] - 1)]
        dv = (dt * i > tlast + tref) * (-v + current) / tm
        v = v + dt * dv + rng.standard_normal(n) / 10
        fired = v >= vpeak
        jd = w[:, fired].sum(1)
        tlast = np.where(fired, dt * i, tlast)
        ipsc = ipsc * np.exp(-dt / td) + h * dt
        h = h * math.exp(-dt / tr) + jd / (tr * td)
        r = r * np.exp(-dt / td) + hr * dt
        hr = hr * math.exp(-dt / tr) + fired / (tr * td)
        v = np.where(fired, vreset, v)
        out[i - 1] = w_out @ r / scaling
    return out


def load(model: str | None, n: int) -> DaleRateRNN:
    if model is None:
        return DaleRateRNN(DaleSpec(n=n), generator=torch_generator(0, 0, "initialisation"))
    from nrmkit.experiments.rate_to_lif.models import load_model
    from nrmkit.experiments.rate_to_lif.rate_to_lif import RateToLifConfig

    return load_model(RateToLifConfig(mode="convert", model=model), GO_NOGO)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="run folder, model.pt or .mat")
    parser.add_argument("--n", type=int_at_least(2), default=200,
                        help="units without --model")
    parser.add_argument("--trials", type=int_at_least(1), default=100)
    parser.add_argument("--reference_trials", type=int_at_least(1), default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the timings as JSON")
    args = parser.parse_args()
    try:
        network = load(args.model, args.n)
    except ConfigError as error:
        parser.error(str(error))
    network.requires_grad_(False)
    lambdas = torch.arange(20.0, 76.0, 5.0)
    trials = GO_NOGO.trials(args.trials, torch_generator(0, 0, "trials"))

    seconds, accuracy, counts, outputs = {}, {}, {}, {}
    for propagation in ("events", "dense"):
        started = time.perf_counter()
        result = simulate_lif(network.effective_weights(), network.w_in, network.w_out,
                              float(network.b_out), network.taus_ms(), trials.inputs,
                              scaling=lambdas, params=LIFParameters(), record_spikes=False,
                              generator=torch_generator(0, 0, "noise"), propagation=propagation)
        seconds[propagation] = time.perf_counter() - started
        accuracy[propagation] = GO_NOGO.correct(result.output, trials.labels,
                                                spiking=True).float().mean(-1)
        counts[propagation] = result.spike_counts
        outputs[propagation] = result.output
    ours = seconds["events"]

    w_eff = network.effective_weights().double().numpy()
    w_in = network.w_in.double().numpy()
    w_out = network.w_out.double().numpy()
    taus = network.taus_ms().double().numpy()
    rng = np.random.default_rng(stream_seed(0, 0, "reference noise"))
    started = time.perf_counter()
    for k in range(args.reference_trials):
        reference_trial(w_eff, w_in, w_out, taus, trials.inputs[:, k].double().numpy().T,
                        float(lambdas[k % len(lambdas)]), rng)
    per_trial = (time.perf_counter() - started) / args.reference_trials
    pairs = len(lambdas) * args.trials
    report = {
        "n": network.spec.n, "scaling_factors": len(lambdas), "trials": args.trials,
        "lif_steps_per_trial": trials.inputs.shape[0] * 100,
        "nrmkit_grid_seconds": round(ours, 2),
        "dense_grid_seconds": round(seconds["dense"], 2),
        "events_speedup_over_dense": round(seconds["dense"] / ours, 2),
        "same_spike_counts": bool(torch.equal(counts["events"], counts["dense"])),
        "same_accuracies": bool(torch.equal(accuracy["events"], accuracy["dense"])),
        "max_output_difference_relative": float(
            (outputs["events"] - outputs["dense"]).abs().max() / outputs["dense"].abs().max()),
        "mean_rate_hz": round(float(counts["events"].double().mean()
                                    / (trials.inputs.shape[0] * 5e-3)), 2),
        "reference_seconds_per_trial": round(per_trial, 3),
        "reference_grid_seconds_extrapolated": round(per_trial * pairs, 1),
        "speedup": round(per_trial * pairs / ours, 1),
        "torch_threads": torch.get_num_threads(),
        **{f"lif_accuracy_{name}": {f"{v:g}": round(float(a), 3) for v, a in
                                    zip(lambdas.tolist(), acc.tolist(), strict=True)}
           for name, acc in accuracy.items()},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
