"""Training loops: spectrum training (:mod:`.spectrum`), tasks, sequences, checkpoints."""

#: the spectrum-training procedures (see :mod:`nrmkit.training.spectrum`).
PROCEDURES = ("windows", "single")
#: global gains of the baseline (see :func:`nrmkit.training.spectrum.global_gain_baseline`):
#: ``2^(j/4)``, j = −12 … 12 (0.125 … 8).
BASELINE_GAINS = tuple(2.0 ** (j / 4) for j in range(-12, 13))
