"""Checks shared by the options of the sequence workflows (``smnist``, ``smnist_grid``,
``ptb_task``)."""

from __future__ import annotations

from nrmkit.core.checks import check, check_finite


def check_training_options(config) -> None:
    """``--lr`` finite and positive; ``--clip`` (None: off) finite and positive; the gamma
    shape ``--gain`` n > 0 and ``--saturation`` s ∈ [0, 1] (``ConfigError`` naming the
    option)."""
    for name in ("lr", "gain", "saturation"):
        check_finite(getattr(config, name), f"--{name}")
    check(config.lr > 0, "--lr", f"must be positive, got {config.lr}")
    if config.clip is not None:
        check_finite(config.clip, "--clip")
        check(config.clip > 0, "--clip", f"must be positive, got {config.clip}")
    check(config.gain > 0, "--gain", f"the gain n must be positive, got {config.gain}")
    check(0 <= config.saturation <= 1, "--saturation",
          f"the saturation s must lie in [0, 1], got {config.saturation}")
