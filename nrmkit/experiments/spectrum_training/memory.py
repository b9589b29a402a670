"""The memory estimate of a spectrum-training run (see :func:`training_memory_terms`)."""

from __future__ import annotations

from typing import Any

from nrmkit.core.base import MemoryTerm
from nrmkit.experiments.lyapunov.settings import (
    DRAW_BYTES_PER_ENTRY,
    RESULT_BYTES_PER_VALUE,
    default_value,
    engine_memory,
    memory_term,
    plural,
    raised,
    steps_growth,
)
from nrmkit.experiments.spectrum_training.settings import EVALUATION_EPOCHS, evaluation_option
from nrmkit.training import BASELINE_GAINS

#: floats the autograd graph keeps per Euler step and network, per stacked row ``[φ | φ'⊙Q]``
#: and as state-sized tensors (fitted to peak RSS at k = 1 and k = 30, N = 300).
GRAPH_ROW_FLOATS = 2


GRAPH_STATE_FLOATS = 10


#: a Python float in a list (the object and its slot) [bytes].
PYTHON_FLOAT_BYTES = 32


def training_memory_terms(config: Any, *, itemsize: int,
                          dense_weights: bool) -> list[MemoryTerm]:
    """A batch of ``B = --samples_per_batch`` networks of ``N`` neurons trained together
    on ``k = nle`` exponents, back-propagating through ``T = (tbasis + tsim)/dt`` Euler
    steps in ``T / s`` re-orthonormalisations of ``s`` steps each (``i = itemsize``;
    bytes):

    * autograd graph ``T · B · N · i · (2·(k+1) + 10) + (T/s) · B · k · (N+k) · i``: per
      step the stacked rows ``[φ | φ'⊙Q]`` and the basis, and ≈ 10 state-sized tensors
      of the activation with its gains and shifts; per re-orthonormalisation the QR's Q
      and R;
    * logged spectra (``k' = --spectrum_nle``, no graph): the engine's working set and
      history (:func:`~nrmkit.experiments.lyapunov.settings.engine_memory`);
    * per-epoch records: ``n_epochs · (32 · B · (k + 4 + sets + k'/e) + 128 · n_samples
      · (6 + sets + k'/e))`` (``e = --spectrum_every``): the trainer's history of Python
      floats (spectrum, loss, λ_max, gradient norms), then every sample's padded arrays
      and the lists of ``results.json``;
    * dense weights of the batch ``B · N² · i · (4 + 4·w) + 16 · N²`` (``w = 1`` when
      the weights are trained: gradient, Adam's two moments, the copy that keeps frozen
      entries) and of the model rebuilt from all ``n_samples`` networks at the end,
      ``n_samples · N² · i · (4 + w)``; none for a sparse connectome
      (``dense_weights`` false).

    Measured (float32, peak RSS above the same run at N = 20 and tsim = 1, samples =
    batch): ``--n 300 --nle 30 --samples_per_batch 8 --tsim 50``: 458 MiB for 469
    estimated; ``--n 300 --nle 1 --samples_per_batch 64 --tsim 50``: 647 MiB for 763;
    ``--n 2000 --nle 1 --samples_per_batch 4 --tsim 1``: 374 MiB for 555, with
    ``--train_weights true`` 527 MiB for 860 (the batch and the rebuilt model are not
    alive at once: with samples = batch their sum overestimates).
    """
    sizes = {"--n": raised(config, "--n")} if dense_weights else {}
    terms = [graph_term(config, itemsize, sizes), evaluation_term(config, itemsize, sizes),
             records_term(config)]
    if dense_weights:
        terms += weight_terms(config, itemsize)
    return terms


def graph_term(config: Any, itemsize: int, sizes: dict[str, float]) -> MemoryTerm:
    """The autograd graph of the batch's ``B · --replicas`` trajectories (see
    :func:`training_memory_terms`); ``sizes``: the growth factor of ``--n`` (dense
    weights) or none."""
    n, k, i = config.n, config.nle, itemsize
    steps = (config.window / config.dt if config.procedure == "windows"
             else config.tangent_steps)
    batch = config.samples_per_batch * config.replicas  # every replica's trajectory
    intervals = steps / config.steps_per_ons
    graph = (steps * batch * n * i * (GRAPH_ROW_FLOATS * (k + 1) + GRAPH_STATE_FLOATS)
             + intervals * batch * k * (n + k) * i)
    return memory_term({"--samples_per_batch": raised(config, "--samples_per_batch"),
                        **steps_growth(config), **sizes, "--nle": raised(config, "--nle")},
                       graph,
                       f"the autograd graph of {plural(batch, 'network')} of {n} neurons "
                       f"over {plural(round(steps), 'Euler step')} with "
                       f"{plural(k, 'tangent vector')}")


def evaluation_term(config: Any, itemsize: int, sizes: dict[str, float]) -> MemoryTerm:
    """The evaluation runs of ``k' = max(nle, spectrum_nle)`` exponents of the batch (and
    of its global-gain scan with ``--baseline``): the engine's working set and history."""
    spectrum_k = config.eval_nle
    evaluated = config.samples_per_batch * (len(BASELINE_GAINS) if config.baseline else 1)
    working, history = engine_memory(
        networks=evaluated, n=config.n, nle=spectrum_k,
        n_ons=config.eval_tsim / config.tons_effective, itemsize=itemsize)
    return memory_term({"--samples_per_batch": raised(config, "--samples_per_batch"),
                        "--spectrum_nle": raised(config, "--spectrum_nle"),
                        evaluation_option(config): config.eval_tsim / (
                            EVALUATION_EPOCHS * default_value(config, "--tsim")), **sizes},
                       working + history,
                       f"the evaluation runs of {plural(spectrum_k, 'exponent')} of "
                       f"{plural(evaluated, 'network')}")


def records_term(config: Any) -> MemoryTerm:
    """The per-epoch records: the trainer's history of Python floats and every sample's
    padded arrays and ``results.json`` lists (see :func:`training_memory_terms`)."""
    batch = config.samples_per_batch * config.replicas
    logged_per_epoch = config.eval_nle / config.spectrum_every
    sets = len(config.trained_sets)
    return memory_term(
        {"--n_epochs": raised(config, "--n_epochs"),
         "--samples_per_batch": raised(config, "--samples_per_batch"),
         "--n_samples": raised(config, "--n_samples")},
        config.n_epochs * (
            PYTHON_FLOAT_BYTES * batch * (config.nle + 4 + sets + logged_per_epoch)
            + RESULT_BYTES_PER_VALUE * config.n_samples * (6 + sets + logged_per_epoch)),
        f"the per-epoch records of {plural(config.n_epochs, 'epoch')} of "
        f"{plural(config.n_samples, 'sample')}")


def weight_terms(config: Any, itemsize: int) -> list[MemoryTerm]:
    """The dense ``N × N`` weights of the batch (with gradient, Adam moments and frozen
    copy when trained) and of the model of all ``n_samples`` networks rebuilt at the end."""
    n, i = config.n, itemsize
    batch = config.samples_per_batch * config.replicas
    trained = "weights" in config.trained_sets
    square = {"--n": raised(config, "--n", 2)}
    return [
        memory_term({"--samples_per_batch": raised(config, "--samples_per_batch"), **square},
                    batch * n * n * i * (4 + 4 * trained) + DRAW_BYTES_PER_ENTRY * n * n,
                    f"the {n}×{n} weight matrices of {plural(batch, 'network')}"
                    + (" with their gradients and Adam moments" if trained else "")),
        memory_term({"--n_samples": raised(config, "--n_samples"), **square},
                    config.n_samples * n * n * i * (4 + trained),
                    f"the {n}×{n} weight matrices of "
                    f"{plural(config.n_samples, 'sample')} in the saved model"),
    ]
