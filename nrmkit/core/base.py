"""Abstract bases: the hooks every model, trainer and workflow implements.

Concrete classes implement these hooks and are composed, not subclassed again.

* :class:`~nrmkit.core.model.DynamicalModel` (in :mod:`nrmkit.core.model`, which imports
  torch) — a discrete-time map ``x_{t+1} = F(x_t, u_t)`` on a batch of independent systems,
  with its tangent map ``v ↦ ∂F/∂x · v`` applied to vectors, never formed as a matrix.
* :class:`Trainer` — an epoch loop with early stopping, per-epoch metrics and
  checkpointable state.
* :class:`Workflow` — one command: a validated, frozen configuration in, a results
  dictionary and files in the run folder of its :class:`~nrmkit.core.context.RunContext`
  out. The harness (:func:`nrmkit.runs.harness.run_workflow`) calls exactly
  :meth:`Workflow.memory_terms` before anything is allocated, then :meth:`Workflow.run` —
  or, for a :class:`SweepWorkflow` whose configuration is a sweep, :meth:`~SweepWorkflow.
  n_units`, :meth:`~SweepWorkflow.unit_group`, :meth:`~SweepWorkflow.iter_units` per chunk
  and :meth:`~SweepWorkflow.aggregate` (:func:`nrmkit.runs.sweep.run_sweep`).
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from nrmkit.core.context import RunContext


class Trainer(ABC):
    """An epoch loop: ``fit`` calls ``train_epoch`` until done, early stopping or a budget.

    Subclasses implement :meth:`train_epoch` (one update pass, returns metrics) and
    :meth:`state_dict` / :meth:`load_state_dict` (everything needed to resume exactly).
    ``on_epoch_end`` callbacks receive ``(epoch, metrics)`` and may write logs or
    checkpoints; a callback returning ``True`` stops training.
    """

    #: metric compared with ``early_stopping`` (stop when it falls below that value).
    monitor: ClassVar[str] = "loss"

    def __init__(self, *, early_stopping: float | None = None):
        self.early_stopping = early_stopping
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    @abstractmethod
    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Run one epoch; return its metrics (must include :attr:`monitor`)."""

    def evaluate(self) -> dict[str, Any]:
        """Metrics of the current model without updating it (default: none)."""
        return {}

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: model, optimiser, RNG states, epoch, history."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def fit(
        self,
        n_epochs: int,
        *,
        on_epoch_end: tuple[Callable[[int, dict[str, Any]], bool | None], ...] = (),
    ) -> list[dict[str, Any]]:
        """Train from :attr:`epoch` up to ``n_epochs``; return the full history."""
        while self.epoch < n_epochs:
            metrics = {"epoch": self.epoch, **self.train_epoch(self.epoch)}
            self.history.append(metrics)
            self.epoch += 1
            stop = any(bool(callback(self.epoch - 1, metrics)) for callback in on_epoch_end)
            if stop or self._should_stop(metrics):
                break
        return self.history

    def _should_stop(self, metrics: Mapping[str, Any]) -> bool:
        if self.early_stopping is None:
            return False
        value = float(metrics[self.monitor])
        return math.isfinite(value) and value < self.early_stopping


@dataclasses.dataclass(frozen=True)
class MemoryTerm:
    """One large allocation of a run, estimated before anything is allocated.

    Attributes:
        option: the option that sets its size, as a user types it (``"--n"``): a run whose
            estimate exceeds the memory available is refused naming the option of its
            largest term.
        nbytes: its size in bytes (an estimate of the peak, not a lower bound).
        what: a few words, e.g. ``"the 1000000×1000000 weight matrix"``.
    """

    option: str
    nbytes: float
    what: str


class Workflow(ABC):
    """One command of the toolkit.

    A workflow declares its frozen configuration dataclass (validated at construction) and
    implements :meth:`run`, which writes arrays and figures through the run directory and
    returns the dictionary stored as ``results.json``.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    #: whether an interrupted run continues with ``--resume`` (checkpoints or finished units).
    resumable: ClassVar[bool] = False
    #: options (config field names) that may change between a run and its resumption,
    #: besides the harness's own (``n_epochs``, ``device``, ``output_dir``…).
    resume_free_options: ClassVar[tuple[str, ...]] = ()

    def memory_terms(self, config: Any, *, itemsize: int) -> list[MemoryTerm]:
        """The largest allocations of one run of ``config`` in one process (for a sweep: the
        units or groups computed together), with floats of ``itemsize`` bytes (4 or 8).

        The harness adds them up and refuses the run before it starts when the sum exceeds
        the memory available (``--memory-limit``). Default: nothing to check.
        """
        return []

    @abstractmethod
    def run(self, config: Any, context: RunContext) -> dict[str, Any] | None:
        """Compute, write arrays/figures into ``context.run_dir``, return the results summary
        (stored as ``results.json``)."""

    @classmethod
    def config_to_dict(cls, config: Any) -> dict[str, Any]:
        return dataclasses.asdict(config)


class SweepWorkflow(Workflow):
    """A workflow made of independent *units* (samples, seeds, scaling factors…).

    Units are numbered ``0 … n_units − 1``; :meth:`run_units` computes any subset (a
    *chunk*) and returns arrays whose first axis runs over those units, drawing every random
    number of a unit from that unit's own seed so that a unit's numbers do not depend on
    which chunk it is in. :meth:`aggregate` turns the arrays of all units (concatenated in
    unit order) into the results a serial run returns, writing figures and arrays. The
    executor (:mod:`nrmkit.runs.sweep`) decides where chunks run: in this process, in local
    subprocesses or as SLURM array jobs, and stores each finished unit in the run directory
    (``parts/unit-00000.npz``) so that an interrupted sweep resumes without recomputing it.
    """

    #: what one unit is, for messages ("sample", "seed", "scaling factor").
    unit_name: ClassVar[str] = "unit"
    #: the option that sets the number of units (named when there are too many).
    unit_option: ClassVar[str] = "--n_samples"

    def is_sweep(self, config: Any) -> bool:
        """Whether runs with ``config`` are split into units (default: always)."""
        return True

    @abstractmethod
    def n_units(self, config: Any) -> int:
        """Number of independent units of ``config``."""

    def unit_group(self, config: Any) -> int:
        """Consecutive units computed together (default 1): chunks hold whole groups, so a
        unit's numbers depend on its group, never on the executor or the chunking."""
        return 1

    @abstractmethod
    def run_units(self, config: Any, context: RunContext, units: list[int]) -> dict[str, Any]:
        """Compute ``units``; arrays with a first axis of ``len(units)``."""

    def iter_units(self, config: Any, context: RunContext,
                   units: list[int]) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """Compute ``units`` as ``(finished units, their arrays)`` pieces, each stored as soon
        as it is yielded (default: one piece, :meth:`run_units` of them all). Workflows whose
        units run one after the other yield each unit so that a chunk interrupted half-way
        keeps what finished."""
        yield list(units), self.run_units(config, context, list(units))

    @abstractmethod
    def aggregate(self, config: Any, context: RunContext,
                  arrays: Mapping[str, Any]) -> dict[str, Any]:
        """Results (and figures, arrays) from the arrays of every unit, in unit order."""

    def run(self, config: Any, context: RunContext) -> dict[str, Any] | None:
        """A configuration that is not a sweep (:meth:`is_sweep` false): every unit here,
        then :meth:`aggregate`. Sweeps are run by :func:`nrmkit.runs.sweep.run_sweep`."""
        units = list(range(self.n_units(config)))
        return self.aggregate(config, context, self.run_units(config, context, units))


class IncrementalSweep(SweepWorkflow):
    """A sweep whose units run one after the other (or in fixed groups): subclasses implement
    :meth:`iter_units`, yielding each finished piece so that it is stored at once, and
    :meth:`run_units` concatenates the pieces."""

    @abstractmethod
    def iter_units(self, config: Any, context: RunContext,
                   units: list[int]) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """Compute ``units``, yielding ``(finished units, their arrays)`` as they finish."""

    def run_units(self, config: Any, context: RunContext, units: list[int]) -> dict[str, Any]:
        import numpy as np

        pieces = [arrays for _, arrays in self.iter_units(config, context, list(units))]
        return {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}
