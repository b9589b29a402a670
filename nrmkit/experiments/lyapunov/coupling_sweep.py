"""Options and configuration shared by the Lyapunov workflows (no torch import here)."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from nrmkit.core.base import IncrementalSweep, MemoryTerm
from nrmkit.experiments.lyapunov.settings import (
    LOG_ITEMSIZE,
    RESULT_BYTES_PER_VALUE,
    RandomNetworkSettings,
    default_value,
    engine_memory,
    memory_term,
    naming_divergence,
    plural,
    raised,
    weight_memory,
)


@dataclass(frozen=True)
class SweepResult:
    """Exponents of a coupling sweep as ``[g, sample, k]`` numpy arrays (descending in k).

    ``tons`` is the longest interval any sample used (the interval of every sample unless
    ``--tons auto``), ``tons_per_sample`` the interval of each sample's engine call, and
    ``t_accumulated`` the shortest accumulation time.
    """

    exponents: Any
    stderr: Any
    tons: float
    t_accumulated: float
    tons_per_sample: Any = None

    @classmethod
    def from_units(cls, arrays: Any) -> SweepResult:
        """From :func:`iter_coupling_sweep`'s arrays of every sample (first axis = sample)."""
        tons = arrays["tons"].reshape(-1)
        return cls(exponents=arrays["exponents"].transpose(1, 0, 2),
                   stderr=arrays["stderr"].transpose(1, 0, 2), tons=float(tons.max()),
                   t_accumulated=float(arrays["t_accumulated"].min()), tons_per_sample=tons)


def iter_coupling_sweep(
    name: str, settings: RandomNetworkSettings, context: Any, *, couplings: list[float],
    samples: list[int], parameter: tuple[str, ...], independent_draws: bool,
):
    """Exponents of the networks of ``samples`` at every coupling, one sample at a time.

    Sample ``s`` draws its matrix from the ensemble ``settings.connectivity`` (reused
    across the couplings unless ``independent_draws``), gains/shifts, initial states and
    tangent basis from its own stream ``(seed, s, "sample")`` and runs in its own engine
    call (batched over the couplings, ``one_pass``: the state and the tangent vectors in
    one product per step, so each step reads the sample's matrix once): its numbers are bit
    for bit the same in any chunk of samples (batching samples together changes float32
    round-off, ≈ 1e-8). Yields
    ``(s, arrays)`` with ``exponents``, ``stderr`` of shape ``(1, couplings, nle)``
    (descending in k) and ``tons``, ``t_accumulated`` of shape ``(1,)``. A divergence is
    re-raised naming the coupling and sample of every failed network.
    """
    import numpy as np

    from nrmkit.dynamics import lyapunov_spectrum
    from nrmkit.dynamics.lyapunov import random_basis
    from nrmkit.nn.rate_rnn import random_rate_network

    m_g = len(couplings)
    context.log(f"{name}: {m_g} couplings × {len(samples)} samples, N={settings.n}, "
                f"nle={settings.nle}, {settings.connectivity} connectivity, on "
                f"{context.device} ({context.dtype})")
    progress = context.progress("lyapunov")
    for position, sample in enumerate(samples):
        generator = context.stream("sample", unit=sample)
        model = random_rate_network(
            settings.n, couplings, 1, vary=parameter, shared_matrix=not independent_draws,
            activation=settings.activation, dt=settings.dt, generator=generator,
            dtype=context.torch_dtype, device=context.device, **settings.network_kwargs(),
        )
        state = model.initial_state(generator)
        basis = random_basis(model.batch_shape, settings.nle, settings.n, generator=generator,
                             dtype=context.torch_dtype, device=context.device)

        def report(done: int, total: int, position: int = position) -> None:
            progress(position * total + done, len(samples) * total)

        def describe(index: tuple[int, ...], sample: int = sample,
                     columns: int = model.batch_shape[1]) -> str:
            return f"g={couplings[index[0] * columns + index[1]]:g}, sample {sample}"

        with naming_divergence(describe):
            result = lyapunov_spectrum(model, settings.nle, state=state, basis=basis,
                                       progress=report, one_pass=True,
                                       **settings.engine_kwargs()).sorted()
        yield sample, {
            "exponents": result.exponents.detach().cpu().numpy().reshape(1, m_g, settings.nle),
            "stderr": result.standard_error.detach().cpu().numpy().reshape(1, m_g, settings.nle),
            "tons": np.array([result.tons]), "t_accumulated": np.array([result.t_accumulated])}


class CouplingSweep(IncrementalSweep):
    """A sweep over random networks (units: samples) at every coupling of
    ``config.couplings`` (``transition_2_chaos``, ``spectrum``); each sample's part is stored
    as soon as it is done. Subclasses implement :meth:`aggregate`."""

    unit_name = "sample"
    resumable = True

    def n_units(self, config: Any) -> int:
        return config.n_samples

    @abstractmethod
    def couplings_growth(self, config: Any) -> dict[str, float]:
        """The option that sets the number of couplings, and how much it raised that number
        above the default (see :func:`raised`)."""

    def memory_terms(self, config: Any, *, itemsize: int) -> list[MemoryTerm]:
        """One sample at a time, batched over the ``m`` couplings (``k = nle``, ``n_ons =
        tsim / t_ONS``; bytes):

        * weights ``M · N² · (8 + itemsize)`` with ``M = m`` under ``--independent-draws``,
          else 1 (:func:`weight_memory`; 12 or 17 instead of 8 for the ``symmetric`` and
          ``ei`` ensembles, :data:`~nrmkit.experiments.lyapunov.settings.CONNECTIVITY_DRAW_BYTES`);
        * engine ``7 · m·(k+1)·N · itemsize + m·k² · itemsize``, plus
          ``m · N · (8 + itemsize)`` for each drawn set of gains or shifts;
        * history ``2 · n_ons · m · k · 8`` (:func:`engine_memory`);
        * results ``128 · n_samples · m · k``: every exponent of every sample in the parts,
          the arrays and the lists of ``results.json``.

        Measured (float32, peak RSS above the same run at N = 20): ``transition_2_chaos
        --m_g 7 --n 3000 --independent-draws --tsim 2``: 1127 MiB for 1203 estimated;
        ``spectrum --n 500`` (full spectra at 12 couplings, ``--tons 1 --tsim 4``): 109 MiB
        for 97.
        """
        m, n, k = config.n_couplings, config.n, config.nle
        couplings = self.couplings_growth(config)
        n_growth = raised(config, "--n")
        k_growth = (k + 1) / (default_value(config, "--nle") + 1)
        matrices = m if config.independent_draws else 1
        working, history = engine_memory(networks=m, n=n, nle=k, n_ons=config.n_ons,
                                         itemsize=itemsize)
        drawn = len([name for name in config.parameter if name != "weights"])
        working += drawn * m * n * (LOG_ITEMSIZE + itemsize)
        each = (f"the {m} {n}×{n} weight matrices" if matrices > 1
                else f"the {n}×{n} weight matrix")
        return [
            memory_term({"--n": n_growth ** 2, **(couplings if matrices > 1 else {})},
                        weight_memory(n, matrices, itemsize, config.draw_bytes),
                        f"{each} of each sample"),
            memory_term({"--n": n_growth, **couplings, "--nle": k_growth}, working,
                        f"the states and {plural(k, 'tangent vector')} of "
                        f"{plural(m, 'network')} of {n} neurons"),
            memory_term({"--tsim": raised(config, "--tsim"),
                         "--tons": raised(config, "--tons", -1), **couplings,
                         "--nle": k_growth}, history,
                        f"the float64 logs of {plural(config.n_ons, 're-orthonormalisation')} of "
                        f"{plural(k, 'exponent')} of {plural(m, 'network')}"),
            memory_term({"--n_samples": raised(config, "--n_samples"), **couplings,
                         "--nle": k_growth},
                        RESULT_BYTES_PER_VALUE * config.n_samples * m * k,
                        f"the {config.n_samples}×{m}×{k} exponents of the sweep"),
        ]

    def iter_units(self, config: Any, context: Any, units: list[int]):
        for sample, arrays in iter_coupling_sweep(
                self.name, config, context, couplings=config.couplings, samples=units,
                parameter=config.parameter, independent_draws=config.independent_draws):
            yield [sample], arrays
