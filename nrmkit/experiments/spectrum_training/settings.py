"""The options of the spectrum-training workflows (:class:`TrainingSettings`) and their
defaults; what the workflows do with them: :mod:`nrmkit.experiments.spectrum_training.training`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nrmkit.core.checks import check, check_finite
from nrmkit.core.registry import LOSSES
from nrmkit.experiments.lyapunov.settings import MAX_STEPS, LyapunovSettings
from nrmkit.training import PROCEDURES

#: default evaluation length in epochs' simulated time (``--eval_tsim = 4 · --tsim``).
EVALUATION_EPOCHS = 4


#: default window of the windows procedure [τ] (at most --tsim).
DEFAULT_WINDOW = 10.0


#: what to try after a training run diverged.
TRAINING_DIVERGENCE_HINT = "try a smaller --dt, --g or --lr, or --dtype float64"


@dataclass(frozen=True)
class TrainingSettings(LyapunovSettings):
    """Options shared by the training workflows (times in τ)."""

    n: int = 100
    nle: int | None = 10
    tsim: float = 100.0
    tons: float = 0.2
    ttrans: float = 50.0
    activation: str = "tanh_stretch"
    n_samples: int = 1
    samples_per_batch: int = 1
    n_epochs: int = 100
    loss: str = "MSE"
    target: float = 0.0
    lr: float = 0.01
    clip: float = 1.0
    procedure: str = "windows"
    window: float | None = None
    replicas: int = 4
    eval_tsim: float | None = None
    eval_ttrans: float | None = None
    baseline: bool = True
    early_stopping: float | None = None
    spectrum_every: int = 10
    spectrum_nle: int | None = None
    train_weights: bool = False
    train_gains: bool = True
    train_shifts: bool = True

    def __post_init__(self):
        super().__post_init__()
        check(self.n_samples >= 1, "--n_samples", f"must be at least 1, got {self.n_samples}")
        check(1 <= self.samples_per_batch <= self.n_samples, "--samples_per_batch",
              f"must lie in [1, --n_samples = {self.n_samples}], got {self.samples_per_batch}")
        check(self.n_epochs >= 1, "--n_epochs", f"must be at least 1, got {self.n_epochs}")
        check(self.loss in LOSSES, "--loss", f"unknown loss {self.loss!r}")
        object.__setattr__(self, "loss", LOSSES.canonical(self.loss))
        explicit_evaluation = self._fill_defaults()
        for name in ("target", "lr", "clip", "window", "eval_tsim", "eval_ttrans"):
            check_finite(getattr(self, name), f"--{name}")
        self._check_procedure()
        self._check_evaluation(explicit_evaluation)
        if self.early_stopping is not None:
            check_finite(self.early_stopping, "--early_stopping")
        check(self.lr > 0, "--lr", f"must be positive, got {self.lr}")
        check(self.clip > 0, "--clip", f"must be positive, got {self.clip}")
        check(self.spectrum_every >= 1, "--spectrum_every",
              f"must be at least 1, got {self.spectrum_every}")
        check(self.trained_sets != (), "--train_gains",
              "nothing to train: enable --train_weights, --train_gains or --train_shifts")
        check(not (self.activation == "tanh" and (self.train_gains or self.train_shifts)),
              "--activation", "tanh ignores gains and shifts: use tanh_stretch or tanh_pos")
        spectrum_nle = min(self.n, 50) if self.spectrum_nle is None else self.spectrum_nle
        check(1 <= spectrum_nle <= self.n, "--spectrum_nle",
              f"must lie in [1, {self.n}], got {spectrum_nle}")
        object.__setattr__(self, "spectrum_nle", spectrum_nle)

    def _fill_defaults(self) -> bool:
        """Set the derived defaults ``--window = min(10, --tsim)``, ``--eval_tsim = 4 ·
        --tsim`` and ``--eval_ttrans = --tsim``; whether ``--eval_tsim`` was given."""
        if self.window is None:
            object.__setattr__(self, "window", min(DEFAULT_WINDOW, self.tsim))
        explicit_evaluation = self.eval_tsim is not None
        if self.eval_tsim is None:
            object.__setattr__(self, "eval_tsim", EVALUATION_EPOCHS * self.tsim)
        if self.eval_ttrans is None:
            object.__setattr__(self, "eval_ttrans", self.tsim)
        return explicit_evaluation

    def _check_procedure(self) -> None:
        """``--procedure``, ``--window`` (``tons ≤ window ≤ tsim``) and ``--replicas``."""
        check(self.procedure in PROCEDURES, "--procedure",
              f"choose from {', '.join(PROCEDURES)}, got {self.procedure!r}")
        check(self.tons <= self.window, "--window",
              f"must be at least --tons ({self.window} < {self.tons})")
        check(self.window <= self.tsim, "--window",
              f"cannot exceed --tsim ({self.window} > {self.tsim})")
        check(1 <= self.replicas <= 1024, "--replicas",
              f"must lie in [1, 1024], got {self.replicas}")

    def _check_evaluation(self, explicit_evaluation: bool) -> None:
        """``--eval_tsim ≥ --tons``, ``--eval_ttrans ≥ 0`` and, when ``--eval_tsim`` was
        given, at most ``MAX_STEPS`` Euler steps."""
        check(self.eval_tsim >= self.tons, "--eval_tsim",
              f"must be at least --tons ({self.eval_tsim} < {self.tons})")
        check(self.eval_ttrans >= 0, "--eval_ttrans",
              f"must be non-negative, got {self.eval_ttrans}")
        check(not explicit_evaluation or self.eval_tsim / self.dt <= MAX_STEPS,
              "--eval_tsim",
              f"more than {MAX_STEPS:.0e} Euler steps: use a shorter run or a larger --dt")

    @property
    def eval_nle(self) -> int:
        """Exponents of the evaluation runs: enough for the loss and the logged spectra."""
        return max(self.nle, self.spectrum_nle)

    @property
    def trained_sets(self) -> tuple[str, ...]:
        flags = {"weights": self.train_weights, "gains": self.train_gains,
                 "shifts": self.train_shifts}
        return tuple(name for name, on in flags.items() if on)


def evaluation_option(config: Any) -> str:
    """The option that set the evaluation length: ``--tsim`` when ``--eval_tsim`` is its
    default (``4 · --tsim``)."""
    derived = config.eval_tsim == EVALUATION_EPOCHS * config.tsim
    return "--tsim" if derived else "--eval_tsim"
