"""Abstract base of a batched discrete-time dynamical model (imports torch).

Concrete models implement these hooks and are composed, not subclassed again; the
Lyapunov engine (:mod:`nrmkit.dynamics.lyapunov`) works on any of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class DynamicalModel(nn.Module, ABC):
    """A batch of discrete-time dynamical systems sharing one update rule.

    Shapes: a state is ``(*batch_shape, state_dim)``; tangent vectors are stored as
    *rows*, ``(*batch_shape, k, state_dim)``, so that products with a connectivity
    matrix act on contiguous rows.

    Attributes:
        dt: the time step of one update, in the model's time unit (Lyapunov exponents
            are reported per that unit).
    """

    dt: float

    @property
    @abstractmethod
    def batch_shape(self) -> torch.Size:
        """Shape of the batch of independent systems."""

    @property
    @abstractmethod
    def state_dim(self) -> int:
        """Dimension of one system's state."""

    @abstractmethod
    def initial_state(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A state of shape ``(*batch_shape, state_dim)`` (random if the model says so)."""

    @abstractmethod
    def step(self, state: torch.Tensor, drive: torch.Tensor | None = None) -> torch.Tensor:
        """One update ``x_{t+1} = F(x_t, u_t)``."""

    @abstractmethod
    def tangent(
        self, state: torch.Tensor, vectors: torch.Tensor, drive: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The Jacobian ``∂F/∂x`` at ``state`` applied to row vectors ``(*batch, k, D)``."""

    def step_with_tangent(
        self, state: torch.Tensor, vectors: torch.Tensor, drive: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F(x), ∂F/∂x(x) · v)`` — both evaluated at the state the step starts from.

        Subclasses override this to share work between the two (one matrix product).
        """
        return self.step(state, drive), self.tangent(state, vectors, drive)

    def tangent_window(self, state: torch.Tensor, vectors: torch.Tensor, n_intervals: int,
                       steps_per_interval: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Optional fast path: ``(state, vectors, log|R_ii|)`` after ``n_intervals`` intervals
        of ``steps_per_interval`` steps, each closed by a QR re-orthonormalisation of the
        rows, with exactly the values of the step-by-step run; None (the default): not
        available, the engine runs step by step."""
        return None

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for tensor in self.parameters():
            return tensor.dtype
        for tensor in self.buffers():
            return tensor.dtype
        return torch.get_default_dtype()
