"""The memory estimate of a ``rate_to_lif`` run (:meth:`RateToLif.memory_terms`): the peak
allocations of training or of the LIF simulations, whichever phase is larger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nrmkit.experiments.rate_to_lif.conversion import lif_parameters

if TYPE_CHECKING:
    from nrmkit.experiments.rate_to_lif.rate_to_lif import RateToLifConfig


#: N × N matrices alive while training (in floats of the run's dtype): the weights, their
#: gradient, Adam's two moments, the SOM mask, the effective weights and the temporaries
#: that form them, and a checkpoint of weights, mask and moments.
TRAINING_MATRICES = 12


#: N × N float64 matrices while the ``.mat`` is written: ``w``, ``w0``, ``m`` and ``som_m``,
#: their float64 copies, and the compressed file.
MAT_MATRICES = 9


#: N × N matrices of a LIF simulation: the network's weights, mask and effective weights,
#: and the synaptic jumps ``[W/τ | diag(1/τ)]`` (N × 2N) with the temporaries forming them.
LIF_MATRICES = 7


#: bytes per (network, neuron) of the LIF state (:func:`nrmkit.nn.lif.simulate_lif`): ten
#: float buffers (v, [IPSC | r] and its rise, last spike, drive, two scratch, r summed over a
#: rate step) and, with the dense spike propagation (the default off the CPU), the float
#: spike matrix of a step; the int64 spike counts and the bool spikes.
LIF_STATE_FLOATS, LIF_STATE_BYTES = 11, 8 + 1


#: copies of ``(T, trials, N)`` in a run of the rate network without gradients: the noise,
#: the input drive, the rates of every step and their stacked copy, and a transfer temporary.
RATE_RUN_COPIES = 5


#: floats kept per step, trial and unit for backpropagation through a training batch (the
#: state, rates, recurrent input and update, the noise and drive), with allocator slack.
RATE_TRAINING_FLOATS = 14


#: firing rate assumed for sizing spike records and spike-driven temporaries (converted
#: networks at their best λ fire at 10–50 Hz, untrained ones or small λ at 150–210 Hz; the
#: refractory period alone would allow ~500 Hz).
SPIKE_RATE_BOUND_HZ = 200.0


#: resident memory over the size of one step's spike-driven temporaries of the event-driven
#: propagation, the default on the CPU (``(spikes, 2N)``, a different size every step, so the
#: allocator keeps fragments of many: measured 8× at N = 800 and up to 30× at N = 1500, 20
#: trials, ``lif_dt`` 0.5 ms).
SPIKE_TEMPORARY_SLACK = 4


#: bytes per N² entry while a model is loaded: a ``.mat``'s float64 ``w``, ``m`` and
#: ``som_m`` with their squeezed copies, and the network they are copied into (measured
#: 54–64).
MODEL_LOAD_BYTES = 64


def rate_to_lif_memory_terms(config: RateToLifConfig, *, itemsize: int) -> list:
    """Estimated peak allocations of one run, in bytes, for ``N`` units, trials of ``T``
    5-ms steps, ``L`` scaling factors and floats of ``itemsize`` bytes. Training and the LIF
    runs come one after the other: the terms of the phase with the larger sum are returned.

    Training (``train``, ``all``):

    * ``N²·(itemsize·12 + 8·7)`` — weights, gradient, Adam state, mask, effective weights and
      a checkpoint (:data:`TRAINING_MATRICES`), and the float64 ``.mat`` fields
      (:data:`MAT_MATRICES`);
    * ``itemsize·14·T·batch·N`` — backpropagation through a batch of trials, or, when
      larger, ``itemsize·5·T·100·N`` for the evaluations on 100 trials between updates
      (:data:`RATE_RUN_COPIES`).

    LIF (``convert``, ``eval``, ``all``), with ``M = --lif_trials · L`` networks
    (``L = 1`` for ``eval``):

    * ``itemsize·7·N²`` — the weights and the synaptic jumps (:data:`LIF_MATRICES`), plus
      ``64·N²`` to load ``--model`` (:data:`MODEL_LOAD_BYTES`);
    * ``4·2·itemsize·2N`` per spike of one LIF step of ``dt`` ms at
      :data:`SPIKE_RATE_BOUND_HZ` (``M·N·rate·dt`` spikes): their synaptic jumps, with the
      allocator's slack (:data:`SPIKE_TEMPORARY_SLACK`);
    * ``M·N·(11·itemsize + 9)`` — the state of every network; or, if larger,
      ``itemsize·5·T·trials·N`` for the rate network on the same trials;
    * ``eval``: the spike times and neurons of trial 0 (16 bytes per spike, twice) at
      :data:`SPIKE_RATE_BOUND_HZ`.

    With ``--model``, ``N`` comes from the file without loading its weights (a ``.mat``'s
    header, a run folder's ``results.json``); a bare ``model.pt`` gives no estimate.
    """
    from nrmkit.datasets.cognitive import get_task

    steps = get_task(config.task).n_steps
    if config.model is None:
        n, size_option = config.n, "--n"
    else:
        n, size_option = model_units(config.model), "--model"
        if n is None:
            return []
    phases = []
    if config.mode in ("train", "all"):
        phases.append(_training_terms(config, n, size_option, steps, itemsize))
    if config.mode != "train":
        phases.append(_lif_terms(config, n, size_option, steps, itemsize))
    return max(phases, key=lambda terms: sum(term.nbytes for term in terms))


def _training_terms(config: RateToLifConfig, n: int, size_option: str, steps: int,
                    itemsize: int) -> list:
    """The training phase: the N × N matrices, then backpropagation through a batch or the
    evaluations on ``EVAL_TRIALS`` trials, whichever is larger."""
    from nrmkit.core.base import MemoryTerm
    from nrmkit.training.rate_task import EVAL_TRIALS

    backpropagation = MemoryTerm(
        "--batch", itemsize * RATE_TRAINING_FLOATS * steps * config.batch * n,
        f"backpropagation through {config.batch} trials of {steps} steps")
    evaluation = MemoryTerm(size_option, itemsize * RATE_RUN_COPIES * steps * EVAL_TRIALS
                            * n, f"the evaluations on {EVAL_TRIALS} trials")
    return [
        MemoryTerm(size_option, n * n * (itemsize * TRAINING_MATRICES + 8 * MAT_MATRICES),
                   f"the {n}×{n} weights with their gradient, Adam state and copies"),
        max(backpropagation, evaluation, key=lambda term: term.nbytes),
    ]


def _lif_terms(config: RateToLifConfig, n: int, size_option: str, steps: int,
               itemsize: int) -> list:
    """The LIF phase: weights and synaptic jumps, one step's spikes, the state of the
    ``--lif_trials · L`` networks, and (``eval``, ``all``) the raster's spike times."""
    from nrmkit.core.base import MemoryTerm

    params = lif_parameters(config)
    lambdas = 1 if config.mode == "eval" else len(config.lambdas) or default_grid_size(config)
    networks = config.lif_trials * lambdas
    spikes_per_step = networks * n * SPIKE_RATE_BOUND_HZ * params.dt / 1000.0
    state = networks * n * (LIF_STATE_FLOATS * itemsize + LIF_STATE_BYTES)
    rate_run = itemsize * RATE_RUN_COPIES * steps * config.lif_trials * n
    loading = MODEL_LOAD_BYTES * n * n if config.model is not None else 0
    terms = [
        MemoryTerm(size_option, itemsize * LIF_MATRICES * n * n + loading,
                   f"the {n}×{n} weights of the LIF networks and their synaptic jumps"),
        # M·N spiking neurons, each adding a row of 2N: named after the larger factor.
        MemoryTerm(size_option if n >= networks else "--lif_trials",
                   SPIKE_TEMPORARY_SLACK * spikes_per_step * 2 * itemsize * 2 * n,
                   "the synaptic jumps of one LIF step's spikes at "
                   f"{SPIKE_RATE_BOUND_HZ:g} Hz"),
        MemoryTerm("--lif_trials", max(state, rate_run),
                   f"{networks:,} LIF networks of {n} neurons"),
    ]
    if config.mode in ("eval", "all"):
        duration_s = steps * params.rate_step_ms / 1000.0
        spikes = n * SPIKE_RATE_BOUND_HZ * duration_s
        terms.append(MemoryTerm(size_option, 2 * 16 * spikes, "the spike times of the raster"))
    if config.trace_units:
        lif_steps = steps * params.steps_per_rate_step
        terms.append(MemoryTerm("--trace_units", itemsize * 2 * lif_steps * config.trace_trials
                                * len(config.trace_units),
                                "the voltage traces (and those of the stimulated run)"))
    return terms


def model_units(model: str) -> int | None:
    """``N`` of ``--model`` read without its weights: the shape of a ``.mat``'s ``w`` or a run
    folder's ``results.json``; None otherwise (a bare ``model.pt``, an unreadable file:
    loading it reports why)."""
    import json

    import scipy.io
    from scipy.io.matlab import MatReadError

    path = Path(model)
    try:
        if path.is_dir():
            return int(json.loads((path / "results.json").read_text())["n"])
        if path.suffix == ".mat":
            shapes = {name: shape for name, shape, _ in scipy.io.whosmat(str(path))}
            return int(max(shapes["w"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError, MatReadError):
        return None
    return None


def default_grid_size(config: RateToLifConfig) -> int:
    """λ values of the published grid: the model's transfer function's, or the largest
    grid when the model's function is not known before loading it."""
    from nrmkit.core.registry import TRANSFER_FUNCTIONS

    if config.model is None:
        return len(TRANSFER_FUNCTIONS.get(config.act).lif_scaling_grid)
    return max(len(TRANSFER_FUNCTIONS.get(name).lif_scaling_grid)
               for name in TRANSFER_FUNCTIONS.names())
