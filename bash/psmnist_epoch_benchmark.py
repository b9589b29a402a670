"""Time training updates of the psMNIST model against this machine's matrix-product limit.

The model is the one ``smnist -p`` trains by default (RNN-gamma2, hidden 400, random gamma
shape, learned; built by the workflow's own constructor), on psMNIST shapes: 784 pixel steps,
batch 100, input size 1 (random pixels in [0, 1] and random labels: timing only). One update
is forward + cross-entropy + backward + Adam step + the gamma projection, exactly as the
trainer does it, run two ways:

* ``loop``: the step-by-step loop with autograd recording every step (``fused=False``);
* ``fused``: the whole sequence as one autograd node (:mod:`nrmkit.nn.fused_sequence`).

The bound is the time of the update's matrix products at this machine's rate, the rate
measured in the same run: the best of a few large square products (``2 n³`` flops each)
before the updates and of one more after every timed update, so that the rate and the
updates are sampled over the same stretch of a machine whose speed drifts. The products:
per step ``h V^T`` forward and ``δ V`` backward, plus ``∂L/∂V = Σ δ_t^T h_{t−1}``, i.e.
``3 · 2 T B H²`` flops, and the small input and read-out products. An epoch is
``50000 / batch`` updates (the workflow trains on 50 000 of the 60 000 MNIST training images
and holds 10 000 out for validation).

Per way: ``s_per_update`` (the mean of the timed updates), ``s_per_epoch`` (extrapolated
from it), ``epoch_over_bound`` (the mean over the bound), ``best_s_per_update`` and
``best_over_bound`` (the fastest update: best against best, the least disturbed by other
work on the machine), ``warmup_s`` (the untimed first updates together).

Run: python bash/psmnist_epoch_benchmark.py [--steps 3] [--nonlin gamma2] [--threads N]
(prints one JSON object).
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace

import torch

from nrmkit.core.checks import int_at_least
from nrmkit.core.errors import ConfigError
from nrmkit.core.streams import torch_generator
from nrmkit.experiments.sequences.single_run import _new_model
from nrmkit.experiments.sequences.smnist import SmnistConfig
from nrmkit.training.sequence import CLASSIFICATION

TRAINING_IMAGES = 50000
MNIST_PIXELS = 784


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int_at_least(1), default=3, help="timed updates per way")
    parser.add_argument("--warmup", type=int_at_least(0), default=1, help="untimed updates first")
    parser.add_argument("--nonlin", default="gamma2", help="gamma, gamma2, ReLU, tanh, ...")
    parser.add_argument("--nhid", type=int_at_least(1), default=400)
    parser.add_argument("--batch", type=int_at_least(1), default=100)
    parser.add_argument("--seq", type=int_at_least(1), default=MNIST_PIXELS,
                        help="steps per sequence")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--threads", type=int_at_least(1), default=None, help="torch threads")
    parser.add_argument("--gemm-size", type=int_at_least(1), default=2048,
                        help="n of the n×n products")
    parser.add_argument("--ways", nargs="+", default=["loop", "fused"],
                        choices=("loop", "fused"), help="which updates to time")
    return parser


class GemmRate:
    """The best flops per second of ``size × size`` products seen so far."""

    def __init__(self, size: int, dtype: torch.dtype) -> None:
        generator = torch_generator(0, 0, "gemm")
        self.left = torch.randn(size, size, generator=generator).to(dtype)
        self.right = torch.randn(size, size, generator=generator).to(dtype)
        self.product = torch.empty_like(self.left)
        self.best = 0.0

    def sample(self, repeats: int = 1) -> None:
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(self.left, self.right, out=self.product)
            rate = 2.0 * self.left.shape[0] ** 3 / (time.perf_counter() - start)
            self.best = max(self.best, rate)


def update_flops(steps: int, batch: int, hidden: int, inputs: int, classes: int) -> float:
    """Matrix-product flops of one update (forward and backward; inputs need no gradient)."""
    recurrent = 2.0 * steps * batch * hidden * hidden       # one (B×H)(H×H) product per step
    input_layer = 2.0 * steps * batch * hidden * inputs
    readout = 2.0 * batch * hidden * classes
    forward = recurrent + input_layer + readout
    backward = 2 * recurrent + input_layer + 2 * readout    # δV per step and ∂L/∂V; ∂L/∂U
    return forward + backward


def make_update(model, optimizer, inputs, labels, *, fused: bool):
    def update() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = CLASSIFICATION.loss(model(inputs, fused=fused), labels)
        loss.backward()
        optimizer.step()
        model.project_()
        return float(loss.detach())
    return update


def update_seconds(update, steps: int, warmup: int, between) -> tuple[float, list[float]]:
    """Seconds of the ``warmup`` first updates together, and of each of the ``steps`` timed
    updates after them, calling ``between()`` (untimed) after each timed one."""
    start = time.perf_counter()
    for _ in range(warmup):
        update()
    warmup_seconds = time.perf_counter() - start
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        update()
        seconds.append(time.perf_counter() - start)
        between()
    return warmup_seconds, seconds


def main() -> None:
    parser = make_parser()
    args = parser.parse_args()
    try:
        config = SmnistConfig(permute=True, nonlin=args.nonlin, nhid=args.nhid,
                              batch=args.batch)
    except (ConfigError, KeyError) as error:
        parser.error(f"--nonlin: {error.args[0]}" if isinstance(error, KeyError) else str(error))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    context = SimpleNamespace(device="cpu", torch_dtype=dtype,
                              stream=lambda purpose, unit=0: torch_generator(0, unit, purpose))
    generator = torch_generator(0, 0, "pixels")
    inputs = torch.rand((args.seq, args.batch, 1), generator=generator).to(dtype)
    labels = torch.randint(0, 10, (args.batch,), generator=generator)
    rate = GemmRate(args.gemm_size, dtype)
    rate.sample(repeats=4)
    flops = update_flops(args.seq, args.batch, args.nhid, 1, 10)
    updates_per_epoch = TRAINING_IMAGES / args.batch
    timings = {}
    for way in args.ways:
        model = _new_model(config, context, input_size=1)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        update = make_update(model, optimizer, inputs, labels, fused=way == "fused")
        timings[way] = update_seconds(update, args.steps, args.warmup, rate.sample)
    bound = flops / rate.best
    result = {"nonlin": args.nonlin, "steps": args.seq, "batch": args.batch,
              "hidden": args.nhid, "dtype": args.dtype, "threads": torch.get_num_threads(),
              "gemm_gflops_per_s": rate.best / 1e9, "update_gflop": flops / 1e9,
              "bound_s_per_update": bound, "bound_s_per_epoch": bound * updates_per_epoch,
              "updates_per_epoch": updates_per_epoch, "timed_updates": args.steps}
    for way, (warmup_seconds, seconds) in timings.items():
        mean, best = sum(seconds) / len(seconds), min(seconds)
        result[way] = {"s_per_update": mean, "s_per_epoch": mean * updates_per_epoch,
                       "epoch_over_bound": mean / bound, "best_s_per_update": best,
                       "best_over_bound": best / bound, "warmup_s": warmup_seconds}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
