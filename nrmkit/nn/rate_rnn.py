r"""The continuous-time rate network of FlyStability, Euler-discretised, batched.

.. math::

    h_{t+1} = (1 - \Delta t)\, h_t + \Delta t\, c_b\, W_s\, \phi(h_t; a_b, s_b) + u_t

* ``h``: neuron states, shape ``(S, G, N)``; time in units of the neuronal time constant τ.
* ``W_s``: the signed weight matrix ``C∘W`` of network family ``s`` (``S`` matrices, dense,
  or one sparse matrix shared by all networks), zero diagonal (no self-connections).
* ``c_b``: a scalar coupling per network, shape ``(S, G)``: the ``G`` networks of family ``s``
  are ``c·W_s``. This is how a coupling sweep reuses one random matrix per sample
  (``W = g·J`` has the distribution of a fresh ``N(0, g²/N)`` draw) and turns the update
  into one matrix–matrix product.
* ``a``, ``s``: gains and shifts, per neuron or shared by a population of neurons
  (``population[i]`` is neuron ``i``'s population), shape ``(S, G, P)`` after broadcasting.
* ``u_t``: optional external drive, broadcastable to ``(S, G, N)``.

The tangent map at ``h`` is ``J_t = (1 − Δt) I + Δt c W diag(φ'(h))``; it is applied to
``k`` tangent vectors without ever forming ``J_t``, and :meth:`RateRNN.step_with_tangent`
shares one product ``W [φ(h) | φ'(h)⊙Q]`` between the state and the tangent update.
:meth:`RateRNN.step` and :meth:`RateRNN.step_with_tangent` run as one autograd node with an
analytic adjoint (:mod:`nrmkit.nn.tangent_step`); ``_reference_step`` and
``_reference_step_with_tangent`` are the same maps as plain differentiable tensor ops.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nrmkit.core.model import DynamicalModel
from nrmkit.nn.activations import Activation, get_activation
from nrmkit.nn.connectivity import normal_like
from nrmkit.nn.ensembles import unit_coupling
from nrmkit.nn.tangent_native import NativeTanhRuns
from nrmkit.nn.tangent_product import PackedWeight, fused_state_step, fused_tangent_step
from nrmkit.nn.tangent_step import (
    StepPlan,
    flat_population,
    population_membership,
    sparse_operators,
    tangent_step,
)
from nrmkit.nn.tangent_window import tangent_window


class RateRNN(DynamicalModel):
    """A batch of ``S × G`` rate networks (see the module docstring for the equations).

    Args:
        weight: signed weights ``C∘W``: dense ``(N, N)`` or ``(S, N, N)``, or a sparse
            ``(N, N)`` matrix (COO or CSR) shared by every network. Diagonals are zeroed
            (set ``self_connections=True`` to keep them).
        coupling: per-network multiplier of ``weight``, broadcastable to ``(S, G)``;
            default 1.
        gain, shift: per-population parameters broadcastable to ``(S, G, P)``; defaults
            1 and 0. ``P`` is ``N`` (per neuron) when ``population`` is None.
        population: ``(N,)`` integer population index of every neuron, or None.
        activation: name (or alias) from the activation registry, or an Activation.
        dt: Euler step in units of τ, in (0, 1].
        initial_std: standard deviation of the random initial state ``h_0 ~ N(0, σ²)``.
    """

    def __init__(
        self,
        weight: Tensor,
        *,
        coupling: Tensor | float | Sequence[float] | None = None,
        gain: Tensor | float | None = None,
        shift: Tensor | float | None = None,
        population: Tensor | None = None,
        activation: str | Activation = "tanh",
        dt: float = 0.1,
        initial_std: float = 1.0,
        self_connections: bool = False,
    ):
        super().__init__()
        if not 0.0 < dt <= 1.0:
            raise ValueError(f"dt must lie in (0, 1], got {dt}")
        self.dt = float(dt)
        self.activation = get_activation(activation)
        self.initial_std = float(initial_std)
        self.sparse = weight.layout != torch.strided
        dtype, device = weight.dtype, weight.device
        weight, n_matrices, n = _prepare_weight(weight, self.sparse, self_connections)
        self._n = n
        self.self_connections = self_connections

        coupling = _as_coupling_tensor(_as_tensor(coupling, 1.0, dtype, device))
        gain = _as_population_tensor(_as_tensor(gain, 1.0, dtype, device))
        shift = _as_population_tensor(_as_tensor(shift, 0.0, dtype, device))
        population = _checked_population(population, gain, shift, n, device)
        batch = _broadcast_batch(n_matrices, coupling, gain, shift)
        self._batch_shape = torch.Size(batch)

        if self.sparse:  # a fixed sparse connectome: a buffer, never trained
            self.register_buffer("weight", weight)
        else:
            self.weight = nn.Parameter(weight, requires_grad=False)
        self.gain = nn.Parameter(gain.expand(*batch, gain.shape[-1]).clone(), requires_grad=False)
        self.shift = nn.Parameter(
            shift.expand(*batch, shift.shape[-1]).clone(), requires_grad=False
        )
        self.register_buffer("coupling", coupling.expand(*batch).clone())
        self.register_buffer("population", population)
        self._diagonal_hook = None
        self._plan_cache = None

    # -- configuration -----------------------------------------------------------------
    @property
    def batch_shape(self) -> torch.Size:
        return self._batch_shape

    @property
    def state_dim(self) -> int:
        return self._n

    @property
    def n_neurons(self) -> int:
        return self._n

    def set_trainable(self, *, weights: bool = False, gains: bool = False, shifts: bool = False):
        """Choose which parameter sets receive gradients.

        Trainable dense weights keep a zero diagonal: the diagonal of their gradient is
        masked, so gradient-based updates never create self-connections.
        """
        if weights and self.sparse:
            raise ValueError("training a sparse weight matrix is not supported")
        if not self.sparse:
            self.weight.requires_grad_(weights)
        self.gain.requires_grad_(gains)
        self.shift.requires_grad_(shifts)
        if weights and not self.self_connections and self._diagonal_hook is None:
            self._diagonal_hook = self.weight.register_hook(_zero_diagonal)
        return self

    def neuron_gain(self) -> Tensor:
        """Gains per neuron, ``(S, G, N)`` or ``(S, G, 1)`` when shared by all neurons."""
        return self._per_neuron(self.gain)

    def neuron_shift(self) -> Tensor:
        return self._per_neuron(self.shift)

    def _per_neuron(self, value: Tensor) -> Tensor:
        if self.population is None or value.shape[-1] == 1:
            return value
        return value[..., self.population]

    # -- dynamics ----------------------------------------------------------------------
    def initial_state(self, generator: torch.Generator | None = None) -> Tensor:
        """``h_0 ~ N(0, initial_std²)``, shape ``(S, G, N)``, drawn on the CPU."""
        draw = normal_like((*self.batch_shape, self._n), generator=generator,
                           dtype=self.weight.dtype, device=self.weight.device)
        return self.initial_std * draw

    def activation_and_slope(self, state: Tensor) -> tuple[Tensor, Tensor]:
        """``φ(h)`` and ``φ'(h)`` with this network's gains and shifts."""
        return self.activation.value_and_derivative(
            state, self.neuron_gain(), self.neuron_shift()
        )

    def propagate(self, rows: Tensor) -> Tensor:
        """Apply ``c_b W_s`` to row vectors ``(S, G, m, N)`` → ``(S, G, m, N)``.

        Dense: one (batched) product ``rows @ W_sᵀ`` with all ``G·m`` rows of family ``s``
        stacked, so a coupling sweep reads each matrix once per step.
        """
        n_matrices, n_couplings = self.batch_shape
        m = rows.shape[-2]
        stacked = rows.reshape(n_matrices, n_couplings * m, self._n)
        if self.sparse:
            product = (self.weight @ stacked[0].transpose(0, 1)).transpose(0, 1).unsqueeze(0)
        else:
            product = torch.matmul(stacked, self.weight.transpose(-1, -2))
        product = product.reshape(n_matrices, n_couplings, m, self._n)
        return product * self.coupling[..., None, None]

    def step(self, state: Tensor, drive: Tensor | None = None) -> Tensor:
        fused = self._fused()
        if fused is None:
            return self._reference_step(state, drive)
        plan, gain, shift, weight = fused
        return tangent_step(plan, state, None, gain, shift, weight, drive)

    def tangent(self, state: Tensor, vectors: Tensor, drive: Tensor | None = None) -> Tensor:
        _, slope = self.activation_and_slope(state)
        return (1.0 - self.dt) * vectors + self.dt * self.propagate(slope.unsqueeze(-2) * vectors)

    def step_with_tangent(
        self, state: Tensor, vectors: Tensor, drive: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(h', Q')``: the step and the tangent map at ``h`` applied to the rows ``Q``.

        Shapes ``state (S, G, N)``, ``vectors (S, G, k, N)``; one autograd node with an
        analytic adjoint (:mod:`nrmkit.nn.tangent_step`), or no graph at all when nothing
        requires a gradient.
        """
        fused = self._fused()
        if fused is None:
            return self._reference_step_with_tangent(state, vectors, drive)
        plan, gain, shift, weight = fused
        return tangent_step(plan, state, vectors, gain, shift, weight, drive)

    def fused_step_with_tangent(
        self, state: Tensor, vectors: Tensor, drive: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """:meth:`step_with_tangent` reading each dense matrix once per step
        (:mod:`nrmkit.nn.tangent_product`; equal to round-off) where nothing needs a
        gradient; otherwise :meth:`step_with_tangent` itself."""
        fused = self._one_pass_plan(state, vectors, drive)
        if fused is None:
            return self.step_with_tangent(state, vectors, drive)
        plan, gain, shift, _ = fused
        return fused_tangent_step(plan, state, vectors, gain, shift, self._packed_weight(plan),
                                  drive)

    def fused_step(self, state: Tensor, drive: Tensor | None = None) -> Tensor:
        """:meth:`step` through the one-product kernel of :meth:`fused_step_with_tangent`
        (equal to round-off) where nothing needs a gradient; otherwise :meth:`step`."""
        fused = self._one_pass_plan(state, drive)
        if fused is None:
            return self.step(state, drive)
        plan, gain, shift, _ = fused
        return fused_state_step(plan, state, gain, shift, self._packed_weight(plan), drive)

    def _one_pass_plan(self, *tensors: Tensor | None):
        """:meth:`_fused`'s tuple where the one-product kernel applies (dense weights,
        nothing needing a gradient), else None."""
        fused = self._fused()
        if fused is None or fused[3] is None or (torch.is_grad_enabled() and any(
                t is not None and t.requires_grad for t in (*tensors, *fused[1:]))):
            return None
        return fused

    def native_runs(self, n_exponents: int, state: Tensor | None = None,
                    basis: Tensor | None = None) -> NativeTanhRuns | None:
        """Runs of :meth:`fused_step` and :meth:`fused_step_with_tangent` through the
        compiled kernel (:mod:`nrmkit.nn.tangent_native`; equal to round-off) where it
        applies: this class's own steps with ``tanh``, dense float32 weights on the CPU,
        ``n_exponents = 1``, ``state`` ``(S, G, N)`` and ``basis`` ``(S, G, 1, N)`` (where
        given) float32 on the CPU, nothing needing a gradient, and the kernel available
        (:func:`nrmkit.nn.native.library`); else None."""
        from nrmkit.nn import native

        fused = self._one_pass_plan(state, basis)
        shapes = {(*self.batch_shape, self._n): state, (*self.batch_shape, 1, self._n): basis}
        if (fused is None or n_exponents != 1 or self.activation.name != "tanh"
                or self.weight.dtype != torch.float32 or self.weight.device.type != "cpu"
                or not _own_steps(type(self)) or any(
                    t is not None and (tuple(t.shape) != shape or t.dtype != torch.float32
                                       or t.device.type != "cpu")
                    for shape, t in shapes.items())):
            return None
        lib, instruction_set = native.library(), native.instruction_set()
        if lib is None:
            return None
        plan = fused[0]
        cache = self.__dict__.get("_native_cache")
        if cache is None or cache[0] is not plan or cache[1].instruction_set != instruction_set:
            runs = NativeTanhRuns(lib, self.weight, plan.scale, self.dt, instruction_set)
            cache = self._native_cache = (plan, runs)
        return cache[1]

    def _packed_weight(self, plan: StepPlan) -> PackedWeight:
        """The :class:`~nrmkit.nn.tangent_product.PackedWeight` of the dense weight, rebuilt
        with the plan (that is, when the weight was replaced or changed in place)."""
        cache = self.__dict__.get("_packed_cache")
        if cache is None or cache[0] is not plan:
            cache = self._packed_cache = (plan, PackedWeight(self.weight.detach()))
        return cache[1]

    def tangent_window(self, state: Tensor, vectors: Tensor, n_intervals: int,
                       steps_per_interval: int) -> tuple[Tensor, Tensor, Tensor] | None:
        """``(h, Q, log|R_ii| per interval)`` after ``n_intervals`` re-orthonormalisation
        intervals of ``steps_per_interval`` steps, as one autograd node
        (:mod:`nrmkit.nn.tangent_window`); None where the fused step does not apply or
        ``k = 1`` (then run the engine step by step)."""
        fused = self._fused()
        if fused is None or vectors.shape[-2] < 2:
            return None
        plan, gain, shift, weight = fused
        return tangent_window(plan, state, vectors, gain, shift, weight, n_intervals,
                              steps_per_interval)

    def _fused(self) -> tuple[StepPlan, Tensor, Tensor, Tensor | None] | None:
        """``(plan, gain, shift, dense weight or None)`` of the fused step, or None where it
        does not apply (then the reference ops, differentiated by autograd, run instead).

        Called every step: reads the module's dictionaries directly and rebuilds the plan
        only when a tensor it holds was replaced or changed in place, or ``dt`` or the
        activation changed.
        """
        parameters, buffers = self._parameters, self._buffers
        coupling, population = buffers["coupling"], buffers["population"]
        weight = buffers["weight"] if self.sparse else parameters["weight"]
        activation = self.activation
        if (activation.pullback is None or activation.linearize is None
                or coupling.requires_grad or (self.sparse and weight.requires_grad)):
            return None
        key = (weight, weight._version, coupling, coupling._version, population, self.dt,
               activation)
        cache = self.__dict__.get("_plan_cache")  # absent in models pickled before it existed
        if cache is None or not _same_key(cache[0], key):
            cache = self._plan_cache = (key, self._make_plan(weight, coupling, population))
        return cache[1], parameters["gain"], parameters["shift"], (
            None if self.sparse else weight)

    def _make_plan(self, weight: Tensor, coupling: Tensor, population: Tensor | None):
        sparse = transposed = None
        if self.sparse:
            sparse, transposed = sparse_operators(weight)
        count = 0 if population is None else int(population.max()) + 1
        n_matrices, n_couplings = coupling.shape
        scale = (self.dt * coupling).reshape(n_matrices, n_couplings, 1, 1)
        return StepPlan(self.dt, self.activation, scale, population, count, sparse=sparse,
                        sparse_transpose=transposed,
                        membership=population_membership(population, self.gain.dtype),
                        flat_population=flat_population(population, self.batch_shape))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_plan_cache"] = None  # derived data, rebuilt on the first step
        state["_packed_cache"] = None
        state["_native_cache"] = None
        return state

    def _plan(self) -> StepPlan | None:
        """The fused step's :class:`~nrmkit.nn.tangent_step.StepPlan` (None: not fused)."""
        fused = self._fused()
        return None if fused is None else fused[0]

    def _reference_step(self, state: Tensor, drive: Tensor | None = None) -> Tensor:
        """:meth:`step` as plain tensor ops (autograd differentiates them)."""
        value, _ = self.activation_and_slope(state)
        recurrent = self.propagate(value.unsqueeze(-2)).squeeze(-2)
        return self._combine(state, recurrent, drive)

    def _reference_step_with_tangent(
        self, state: Tensor, vectors: Tensor, drive: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """:meth:`step_with_tangent` as plain tensor ops (autograd differentiates them)."""
        value, slope = self.activation_and_slope(state)
        rows = torch.cat([value.unsqueeze(-2), slope.unsqueeze(-2) * vectors], dim=-2)
        product = self.propagate(rows)
        next_state = self._combine(state, product[..., 0, :], drive)
        next_vectors = (1.0 - self.dt) * vectors + self.dt * product[..., 1:, :]
        return next_state, next_vectors

    def _combine(self, state: Tensor, recurrent: Tensor, drive: Tensor | None) -> Tensor:
        updated = (1.0 - self.dt) * state + self.dt * recurrent
        return updated if drive is None else updated + drive

    def dense_jacobian(self, state: Tensor) -> Tensor:
        """The explicit ``(S, G, N, N)`` Jacobian — for tests and reference benchmarks only."""
        _, slope = self.activation_and_slope(state)
        weight = self.weight.to_dense().unsqueeze(0) if self.sparse else self.weight
        scaled = weight[:, None] * self.coupling[..., None, None] * slope[..., None, :]
        eye = torch.eye(self._n, dtype=state.dtype, device=state.device)
        return (1.0 - self.dt) * eye + self.dt * scaled

    def extra_repr(self) -> str:
        kind = "sparse" if self.sparse else "dense"
        return (f"N={self._n}, batch={tuple(self.batch_shape)}, {kind}, "
                f"activation={self.activation.name}, dt={self.dt}")


def _same_key(cached: tuple, key: tuple) -> bool:
    """Tensors and the activation by identity, versions and ``dt`` by value."""
    return all(a is b or (type(a) in (int, float) and a == b)
               for a, b in zip(cached, key, strict=True))


def _prepare_weight(weight: Tensor, sparse: bool,
                    self_connections: bool) -> tuple[Tensor, int, int]:
    """``(weight, n_matrices, N)``: a sparse weight as one CSR matrix, a dense one as a copy
    ``(S, N, N)``; the diagonal dropped unless ``self_connections``."""
    if sparse:
        if weight.dim() != 2:
            raise ValueError("a sparse weight must be one (N, N) matrix")
        weight = _prepare_sparse(weight, self_connections)
        return weight, 1, weight.shape[-1]
    if weight.dim() == 2:
        weight = weight.unsqueeze(0)
    if weight.dim() != 3 or weight.shape[-1] != weight.shape[-2]:
        raise ValueError(f"weight must be (N, N) or (S, N, N), got {tuple(weight.shape)}")
    weight = weight.clone()
    if not self_connections:
        weight.diagonal(dim1=-2, dim2=-1).zero_()
    return weight, weight.shape[0], weight.shape[-1]


def _as_tensor(value, default: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``value`` (``default`` when None) as a tensor of the weight's dtype and device."""
    return torch.as_tensor(default if value is None else value, dtype=dtype, device=device)


def _as_coupling_tensor(coupling: Tensor) -> Tensor:
    """Reshape couplings to at least ``(1, G)`` (a 1-D coupling is one row of ``G``)."""
    coupling = coupling.reshape((1, -1) if coupling.dim() == 1 else coupling.shape)
    while coupling.dim() < 2:
        coupling = coupling.unsqueeze(0)
    return coupling


def _checked_population(population, gain: Tensor, shift: Tensor, n: int,
                        device: torch.device) -> Tensor | None:
    """The population index ``(N,)`` as a long tensor (or None), checked against the
    number of gains and shifts per network (``1``, ``P`` populations, or ``N`` neurons)."""
    if population is not None:
        population = torch.as_tensor(population, dtype=torch.long, device=device)
        if population.shape != (n,):
            raise ValueError(
                f"population must have shape ({n},), got {tuple(population.shape)}"
            )
        n_populations = int(population.max()) + 1
        for label, value in (("gain", gain), ("shift", shift)):
            if value.shape[-1] not in (1, n_populations):
                raise ValueError(
                    f"{label} has {value.shape[-1]} entries per network but there are "
                    f"{n_populations} populations"
                )
    else:
        for label, value in (("gain", gain), ("shift", shift)):
            if value.shape[-1] not in (1, n):
                raise ValueError(f"{label} must have 1 or N={n} entries, got {value.shape[-1]}")
    return population


def _broadcast_batch(n_matrices: int, coupling: Tensor, gain: Tensor, shift: Tensor) -> tuple:
    """The ``(S, G)`` batch that the weights, couplings, gains and shifts broadcast to."""
    batch = torch.broadcast_shapes(
        (n_matrices, 1), coupling.shape, gain.shape[:-1], shift.shape[:-1]
    )
    if len(batch) != 2 or batch[0] != n_matrices:
        raise ValueError(
            f"coupling/gain/shift batch {tuple(batch)} does not match {n_matrices} matrices"
        )
    return batch


def _as_population_tensor(value: Tensor) -> Tensor:
    """Reshape gains/shifts to at least ``(1, 1, P)``."""
    if value.dim() == 0:
        value = value.reshape(1)
    while value.dim() < 3:
        value = value.unsqueeze(0)
    return value


def _prepare_sparse(weight: Tensor, self_connections: bool) -> Tensor:
    coo = weight if weight.layout == torch.sparse_coo else weight.to_sparse_coo()
    coo = coo.coalesce()
    indices, values = coo.indices(), coo.values()
    if not self_connections:
        keep = indices[0] != indices[1]
        indices, values = indices[:, keep], values[keep]
    coo = torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=True).coalesce()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # CSR support is flagged as beta
        return coo.to_sparse_csr()


def _zero_diagonal(grad: Tensor) -> Tensor:
    grad = grad.clone()
    grad.diagonal(dim1=-2, dim2=-1).zero_()
    return grad


def random_rate_network(
    n: int,
    couplings: Sequence[float],
    n_samples: int,
    *,
    vary: Sequence[str] = ("weights",),
    shared_matrix: bool = True,
    activation: str = "tanh",
    dt: float = 0.1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    connectivity: str = "gaussian",
    frac_exc: float = 0.8,
    connection_prob: float = 0.1,
) -> RateRNN:
    """Random networks for a coupling sweep, batched as ``n_samples × len(couplings)``.

    For coupling ``g`` (the FlyStability conventions):

    * ``"weights"`` in ``vary``: ``W = g·J``; otherwise ``W = J``. ``J`` is drawn from the
      ensemble ``connectivity`` at unit coupling (:func:`nrmkit.nn.ensembles.unit_coupling`;
      default ``gaussian``, ``J_ij ~ N(0, 1/N)``; ``frac_exc`` and ``connection_prob`` are
      the ``ei`` ensemble's).
    * ``"gains"`` in ``vary``: ``a_i ~ N(1, g²/N)``; otherwise ``a = 1``.
    * ``"shifts"`` in ``vary``: ``s_i ~ N(1, g²/N)``; otherwise ``s = 0``.

    With ``shared_matrix`` (default) each sample draws one ``J`` and one set of standard
    normal gain/shift deviates, reused at every ``g`` (common random numbers: each network
    has exactly the distribution of an independent draw, and the sweep becomes a
    matrix–matrix product): batch shape ``(n_samples, len(couplings))``. Without it every
    ``(sample, g)`` pair draws its own: batch shape ``(n_samples · len(couplings), 1)``, in
    sample-major order. Either way ``result.reshape(n_samples, len(couplings), ...)``
    indexes networks as ``[sample, g]``.
    """
    unknown = set(vary) - {"weights", "gains", "shifts"}
    if unknown:
        raise ValueError(f"unknown parameter(s) to vary: {sorted(unknown)}")
    g = torch.as_tensor(list(couplings), dtype=torch.float64)
    m_g = g.numel()
    if shared_matrix:
        n_matrices, scale_shape = n_samples, (n_samples, m_g)
        g_grid = g.expand(n_samples, m_g)
        deviate_shape = (n_samples, 1, n)
    else:
        n_matrices = n_samples * m_g
        g_grid = g.repeat(n_samples).reshape(n_matrices, 1)
        deviate_shape = (n_matrices, 1, n)
        scale_shape = (n_matrices, 1)
    unit = unit_coupling(connectivity, n, frac_exc=frac_exc, connection_prob=connection_prob,
                         batch=(n_matrices,), generator=generator, dtype=dtype, device=device)
    coupling = g_grid if "weights" in vary else torch.ones(scale_shape, dtype=torch.float64)
    spread = (g_grid / n**0.5)[..., None]
    kwargs = {"generator": generator, "dtype": torch.float64, "device": "cpu"}
    gain = 1.0 + spread * normal_like(deviate_shape, **kwargs) if "gains" in vary else None
    shift = 1.0 + spread * normal_like(deviate_shape, **kwargs) if "shifts" in vary else None
    cast = lambda v: None if v is None else v.to(dtype=dtype, device=device)  # noqa: E731
    return RateRNN(unit, coupling=cast(coupling), gain=cast(gain), shift=cast(shift),
                   activation=activation, dt=dt)


def _own_steps(cls: type) -> bool:
    """Whether ``cls`` steps as :class:`RateRNN` does (a subclass that redefines a step is
    not run through the compiled kernel of RateRNN's map)."""
    return all(getattr(cls, name) is getattr(RateRNN, name)
               for name in ("step", "step_with_tangent", "fused_step", "fused_step_with_tangent",
                            "activation_and_slope", "propagate"))
