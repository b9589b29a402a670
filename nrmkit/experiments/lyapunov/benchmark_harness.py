"""What every ``lyapu_benchmark`` measurement does: draw networks, time the engine, time the
dense-Jacobian references.

:class:`BenchmarkHarness` binds a configuration and a run context (device, dtype, random
streams); its methods hold no state between calls. The engine is
:func:`nrmkit.dynamics.lyapunov_spectrum` (batched, shared state + tangent product); the
references are :func:`nrmkit.dynamics.reference.dense_jacobian_spectrum` on one network at a
time, with ``jacobian="product"`` (FlyStability, a dense ``N×N×N`` product per step) or
``jacobian="broadcast"`` (``O(N²)`` work per step). Every timed call follows an untimed
warm-up call of one re-orthonormalisation interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nrmkit.experiments.lyapunov.benchmark_timing import Clock, best_of, timed

if TYPE_CHECKING:
    from nrmkit.core.context import RunContext
    from nrmkit.experiments.lyapunov.lyapu_benchmark import BenchmarkConfig


@dataclass(frozen=True)
class BenchmarkHarness:
    """The configuration and run context that the measurements share."""

    config: BenchmarkConfig
    context: RunContext

    @property
    def device(self) -> Any:
        return self.context.device

    def network(self, n: int, couplings: list[float], n_samples: int, purpose: str,
                shared: bool = True, unit: int = 0):
        """Random rate networks of ``n`` neurons, batch ``(n_samples, len(couplings))``
        (``shared``: one matrix per sample reused across the couplings; otherwise one per
        network), drawn from the stream ``(purpose, unit)``."""
        from nrmkit.nn.rate_rnn import random_rate_network

        config, context = self.config, self.context
        return random_rate_network(
            n, couplings, n_samples, shared_matrix=shared, activation=config.activation,
            dt=config.dt, generator=context.stream(purpose, unit=unit),
            dtype=context.torch_dtype, device=context.device,
        )

    def engine(self, model, k: int, steps: int, *, purpose: str, unit: int = 0):
        """``steps`` tangent steps of ``k`` exponents on every network of ``model`` (no
        transients); returns ``(seconds, steps run, result)``, seconds best of three when
        short. The initial state and basis come from the stream ``(purpose, unit)`` and are
        drawn outside the timed call: only steps count."""
        from nrmkit.dynamics import lyapunov_spectrum
        from nrmkit.dynamics.lyapunov import random_basis

        config = self.config
        dt = config.dt
        generator = self.context.stream(purpose, unit=unit)
        state = model.initial_state(generator)
        basis = random_basis(model.batch_shape, k, model.state_dim, generator=generator,
                             dtype=state.dtype, device=state.device)
        kwargs = {"tsim": steps * dt, "tons": config.tons, "ttrans": 0.0, "tbasis": 0.0,
                  "state": state, "basis": basis}
        lyapunov_spectrum(model, k, **{**kwargs, "tsim": config.steps_per_ons * dt})  # warm-up
        clock = Clock()

        def call():
            clock.restart()
            return lyapunov_spectrum(model, k, progress=clock, **kwargs)

        seconds, result = best_of(call, self.device)
        return seconds, clock.total, result

    def reference(self, model, index: tuple[int, int], k: int, steps: int, state, basis,
                  *, repeat: bool = True, jacobian: str = "product") -> float:
        """Seconds of ``steps`` reference steps of ``k`` exponents on batch entry ``index =
        (sample, coupling)`` of ``model``, from ``state`` ``(N,)`` and ``basis`` ``(N, k)``
        (same weights, coupling, gains, shifts and dtype as the engine); best of three when
        short and ``repeat``."""
        from nrmkit.dynamics.reference import dense_jacobian_spectrum

        config = self.config
        s, g = index
        weight = model.weight.detach()[s]
        kwargs = {
            "n_exponents": k, "steps_per_ons": config.steps_per_ons, "dt": config.dt,
            "coupling": float(model.coupling[s, g]),
            "gain": model.neuron_gain().detach()[s, g],
            "shift": model.neuron_shift().detach()[s, g],
            "activation": config.activation, "state": state, "basis": basis,
            "jacobian": jacobian,
        }
        dense_jacobian_spectrum(weight, n_steps=config.steps_per_ons, **kwargs)  # warm-up
        function = lambda: dense_jacobian_spectrum(weight, n_steps=steps, **kwargs)  # noqa: E731
        return (best_of(function, self.device) if repeat else timed(function, self.device))[0]


def entry(result, index: tuple[int, int]):
    """Final state ``(N,)`` and basis columns ``(N, k)`` of one batch entry of an engine
    result (state ``(S, m, N)``, basis ``(S, m, k, N)``)."""
    return (result.state.detach()[index].clone(),
            result.basis.detach()[index].transpose(0, 1).contiguous())
