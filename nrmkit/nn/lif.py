r"""Rate-to-spiking conversion: a leaky integrate-and-fire (LIF) network from a trained rate RNN.

Kim, Li & Sejnowski (PNAS 2019) turn a trained Dale's-law rate RNN (one rate step = 5 ms)
into a spiking network by dividing its recurrent and readout weights by a scaling factor
``λ``: ``W_spk = W_eff / λ`` and ``w_out,spk = w_out / λ`` (``W_in`` and ``b_out`` unscaled).

Units: the membrane in ms and mV (the membrane "resistance" is 1, so a current is the
voltage it would hold the membrane at); the synaptic filters count time in **seconds**, as the
published LIF code does, so that a neuron's filtered spike train ``r`` is its rate in Hz and
the scaling factors ``λ`` keep the published meaning (a rate of ``λ·φ`` Hz stands for a
rate-model activity ``φ``; λ ∈ 20…75 for sigmoid networks). Weights follow ``W[post, pre]``
(column ``j`` holds neuron ``j``'s outputs, already Dale-signed). One LIF step of ``dt`` for
every neuron ``i`` of every network, in this order (step ``s = 1, 2, …``, time ``t = s·dt``):

.. math::

    I_i &= \mathrm{IPSC}_i + \text{bias} + (W_{in} u(t))_i \\
    v_i &\leftarrow v_i + g_i\,\tfrac{dt}{τ_m}(I_i - v_i) + σ\,ξ_i,
        \qquad g_i = [\,t > t^{last}_i + t_{ref}\,],\ ξ_i \sim N(0, 1) \\
    S_i &= [\,v_i \ge v_{th}\,];\quad S_i \Rightarrow v_i \leftarrow v_{reset},\
        t^{last}_i \leftarrow t

then the synapses (``δ = dt`` in seconds, ``τ_{d,i}`` the trained decay of unit ``i`` in
seconds, applied per *postsynaptic* neuron to the recurrent current and per neuron to its own
filtered train ``r``; this step's spikes enter at once):

.. math::

    τ_r > 0:\quad \mathrm{IPSC}_i &\leftarrow \mathrm{IPSC}_i e^{-δ/τ_{d,i}} + h_i\,δ, \qquad
        h_i \leftarrow h_i e^{-δ/τ_r} + \frac{\sum_j W^{spk}_{ij} S_j}{τ_r τ_{d,i}} \\
    r_i &\leftarrow r_i e^{-δ/τ_{d,i}} + h^r_i\,δ, \qquad
        h^r_i \leftarrow h^r_i e^{-δ/τ_r} + \frac{S_i}{τ_r τ_{d,i}} \\
    τ_r = 0:\quad \mathrm{IPSC}_i &\leftarrow \mathrm{IPSC}_i e^{-δ/τ_{d,i}}
        + \frac{\sum_j W^{spk}_{ij} S_j}{τ_{d,i}}, \qquad
        r_i \leftarrow r_i e^{-δ/τ_{d,i}} + \frac{S_i}{τ_{d,i}}

with ``W^{spk} = W_eff/λ``, and the read-out ``out = (w_out/λ)·r + b_out``. The rate-model
input ``u`` of rate step ``k`` (0-based) is held for the LIF steps ``s = k·n + 1 … (k+1)·n``
with ``n = rate_step_ms / dt`` (100 by default).

Conventions:

* **Filter normalisation.** Each spike adds unit area (in s · s⁻¹) to ``r`` and ``W_ij`` of
  area (mV · s) to ``IPSC_i``, so a neuron firing at a constant rate ``ν`` Hz has a
  time-averaged ``r = ν`` up to the Euler factor of the update: exactly ``ν·c_d`` (single
  exponential) or ``ν·c_d·c_r`` (double), ``c_x = (δ/τ_x)/(1 − e^{−δ/τ_x}) ≈ 1 + δ/(2τ_x)``
  (``c_d ≈ 1.001`` for τ_d = 20 ms, ``c_r ≈ 1.0125`` for τ_r = 2 ms), and its mean current
  into neuron ``i`` is ``W^{spk}_{ij}·ν`` mV.
* **Bias.** ``bias = v_th = −40 mV`` (the published choice): with no synaptic input a neuron
  sits at rheobase and fires only through the noise, so ``I − v_th`` plays the role of the
  rate model's ``x``. The analytic rate of :func:`lif_rate_constant_current` takes the
  *total* current (bias included).
* **Output** is the read-out *averaged over the LIF steps of each rate step*, plus ``b_out``
  (the published code sampled it every LIF step and left ``b_out`` out; ``b_out`` is part of
  the trained read-out and is usually ≈ 0).
* **Refractoriness.** ``t^last`` starts at ``−∞`` (no neuron starts refractory; the published
  code started it at 0, freezing every neuron for the first ``t_ref``). A neuron that
  spikes at step ``s`` is frozen for the steps ``s'`` with ``(s'−s)·dt ≤ t_ref`` (noise is
  still added, as published).
* **Random numbers.** ``v0 ~ U(v0_range)`` and the noise ``ξ`` are drawn per (trial, neuron)
  on the CPU ``generator`` and *shared by every scaling factor* (common random numbers), so a
  batched run over ``λ`` equals separate runs with the same seed and the λ comparison is not
  blurred by independent noise.

This module does not print, write files or hold global state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from nrmkit.nn.lif_perturbation import perturbation_hooks
from nrmkit.nn.lif_propagation import RefractoryGate, propagate, spiking_indices
from nrmkit.nn.lif_readout import WindowReadout


@dataclass(frozen=True)
class LIFParameters:
    """Parameters of the LIF network (ms and mV; see the module docstring).

    Attributes:
        dt: LIF time step (ms). tau_m: membrane time constant (ms). t_ref: refractory period.
        v_threshold, v_reset: spike threshold and reset potential (mV).
        bias: constant current added to every neuron (mV).
        tau_rise: synaptic rise time (ms); 0 gives a single-exponential synapse.
        noise_std: standard deviation of the Gaussian noise added to ``v`` each step (mV;
            published 0.1).
        rate_step_ms: duration of one rate step / input sample (ms); a multiple of ``dt``.
        v0_range: initial membrane potentials are drawn from ``U(v0_range)`` (mV).
    """

    dt: float = 0.05
    tau_m: float = 10.0
    t_ref: float = 2.0
    v_threshold: float = -40.0
    v_reset: float = -65.0
    bias: float = -40.0
    tau_rise: float = 2.0
    noise_std: float = 0.1
    rate_step_ms: float = 5.0
    v0_range: tuple[float, float] = (-65.0, 30.0)

    def __post_init__(self):
        if self.dt <= 0 or self.tau_m <= 0:
            raise ValueError("dt and tau_m must be positive")
        if self.t_ref < 0 or self.tau_rise < 0 or self.noise_std < 0:
            raise ValueError("t_ref, tau_rise and noise_std must be non-negative")
        if self.v_reset >= self.v_threshold:
            raise ValueError("v_reset must lie below v_threshold")
        ratio = self.rate_step_ms / self.dt
        if ratio < 0.5 or abs(ratio - round(ratio)) > 1e-6 * ratio:
            raise ValueError(f"rate_step_ms ({self.rate_step_ms}) must be a multiple of dt "
                             f"({self.dt})")

    @property
    def steps_per_rate_step(self) -> int:
        """LIF steps per rate step (``rate_step_ms / dt``)."""
        return round(self.rate_step_ms / self.dt)

    @property
    def refractory_steps(self) -> int:
        """Steps frozen after a spike: the number of ``k ≥ 1`` with ``k·dt ≤ t_ref``."""
        return math.floor(self.t_ref / self.dt + 1e-9)


@dataclass
class LIFResult:
    """What :func:`simulate_lif` returns (``L`` scaling factors, ``B`` trials, ``N`` neurons).

    Attributes:
        output: ``(T_rate, L, B)`` readout averaged over each rate step.
        spike_counts: ``(L, B, N)`` spikes per neuron over the whole run (int64).
        mean_rate_hz: ``(L, B)`` firing rate averaged over neurons and time (Hz).
        spikes: with ``record_spikes``, for trial 0 only, one ``(times_ms, neurons)`` pair per
            scaling factor: spike times (float, ms, ``s·dt``) and neuron indices (int64),
            in time order; ``None`` otherwise.
        duration_ms: simulated time (ms). dt: the LIF step (ms).
        voltage: ``(T_lif, L, trace_trials, K)`` traces (mV) of ``trace_units``, or None.
    """

    output: Tensor
    spike_counts: Tensor
    mean_rate_hz: Tensor
    spikes: list[tuple[Tensor, Tensor]] | None
    duration_ms: float
    dt: float
    voltage: Tensor | None = None

    def raster(self, scaling_index: int = 0) -> Tensor:
        """Dense ``(T_lif, N)`` bool raster of trial 0 for one scaling factor."""
        if self.spikes is None:
            raise ValueError("the run did not record spikes (record_spikes=False)")
        times, neurons = self.spikes[scaling_index]
        n_steps = round(self.duration_ms / self.dt)
        out = torch.zeros(n_steps, self.spike_counts.shape[-1], dtype=torch.bool)
        steps = torch.round(times.cpu() / self.dt).long() - 1
        out[steps, neurons.cpu()] = True
        return out


def lif_rate_constant_current(current, params: LIFParameters = LIFParameters()):
    """Analytic firing rate (Hz) of one neuron under a constant *total* input ``I`` (mV).

    ``I`` is everything on the right of ``τ_m dv/dt = −v + I`` (bias included), so the rate is
    ``1 / (t_ref + τ_m ln((I − v_reset)/(I − v_th)))`` for ``I > v_th`` and 0 otherwise
    (continuous time; the Euler simulation agrees to about ``dt`` per period). Accepts a
    float (returns a float) or a tensor (returns a tensor of the same shape).
    """
    p = params
    if isinstance(current, Tensor):
        above = current > p.v_threshold
        safe = torch.where(above, current, torch.full_like(current, p.v_threshold + 1.0))
        period = p.t_ref + p.tau_m * torch.log((safe - p.v_reset) / (safe - p.v_threshold))
        return torch.where(above, 1000.0 / period, torch.zeros_like(period))
    current = float(current)
    if current <= p.v_threshold:
        return 0.0
    period = p.t_ref + p.tau_m * math.log((current - p.v_reset) / (current - p.v_threshold))
    return 1000.0 / period


def _as_tensor(x, *, device, dtype) -> Tensor:
    return torch.as_tensor(x).to(device=device, dtype=dtype)


@torch.no_grad()
def simulate_lif(w_eff, w_in, w_out, b_out, taus, inputs, *, scaling,
                 params: LIFParameters = LIFParameters(),
                 generator: torch.Generator | None = None,
                 record_spikes: bool = True, progress=None, stimulation=None,
                 stim_generator: torch.Generator | None = None, trace_units=None,
                 trace_trials: int = 1, propagation: str | None = None) -> LIFResult:
    """Simulate the LIF networks of every (scaling factor, trial) pair at once.

    Args:
        w_eff: ``(N, N)`` Dale-signed rate-model weights ``W[post, pre]``.
        w_in: ``(N, I)`` input weights. w_out: ``(N,)`` readout weights. b_out: scalar.
        taus: ``(N,)`` trained synaptic decay time constants (ms).
        inputs: ``(T_rate, B, I)`` rate-model inputs, time-first.
        scaling: ``(L,)`` scaling factors ``λ`` (recurrent and readout weights divided by λ).
        params: :class:`LIFParameters`.
        generator: CPU generator for ``v0`` and the noise (default: the global one).
        record_spikes: keep the spike times of trial 0 (see :class:`LIFResult`).
        progress: optional ``callback(done_rate_steps, total_rate_steps)``.
        stimulation, stim_generator, trace_units, trace_trials: artificial stimulation and
            voltage traces, see :mod:`nrmkit.nn.lif_perturbation` (traces never change the
            dynamics; without both, the arithmetic is the unperturbed one).
        propagation: ``"events"`` (only the spiking neurons are touched: their jumps added,
            the refractory gate kept as a state, the read-out integrated per rate step) or
            ``"dense"`` (spike matrix × jumps and every neuron's gate and read-out filter
            updated every step), see :mod:`nrmkit.nn.lif_propagation` and
            :mod:`nrmkit.nn.lif_readout`; default ``"events"`` on the CPU, ``"dense"``
            elsewhere. Same spikes, currents and voltages; read-outs equal to round-off.

    Tensors follow ``inputs``' device (float32 unless ``inputs`` is float64); only the running
    state of the ``L·B`` networks is kept, never per-step state (but traces).
    """
    p = params
    inputs, w_eff, w_in, w_out, b_out, taus, scaling = _checked_arrays(
        w_eff, w_in, w_out, b_out, taus, inputs, scaling)
    device, dtype = inputs.device, inputs.dtype
    if propagation is None:
        propagation = "events" if device.type == "cpu" else "dense"
    if propagation not in ("events", "dense"):
        raise ValueError(f"propagation must be 'events' or 'dense', got {propagation!r}")
    t_rate, n_trials, _ = inputs.shape
    n = w_eff.shape[0]
    n_scale = scaling.numel()
    steps_per, dt = p.steps_per_rate_step, p.dt
    lo, hi = p.v0_range
    v0 = torch.rand(n_trials, n, generator=generator, dtype=dtype) * (hi - lo) + lo
    hooks = perturbation_hooks(stimulation, stim_generator, trace_units, trace_trials, dt=dt,
                               shape=(n_trials, n_scale, n), n_steps=t_rate * steps_per,
                               device=device, dtype=dtype)
    output, counts, raster_idx, raster_steps = _integrate(
        inputs, w_in, w_out, v0, _synapse_constants(w_eff, taus, scaling, n_trials, p), p,
        n_scale=n_scale, generator=generator, record_spikes=record_spikes, progress=progress,
        hooks=hooks, dense=propagation == "dense")
    output = output / steps_per + b_out     # r is kept divided by λ: (w_out/λ)·r + b_out
    output = output.view(t_rate, n_trials, n_scale).transpose(1, 2).contiguous()
    counts = counts.view(n_trials, n_scale, n).transpose(0, 1).contiguous()
    duration = t_rate * steps_per * dt
    mean_rate = counts.to(dtype).mean(dim=2) / duration * 1000.0
    spikes = (_spike_trains(raster_idx, raster_steps, n, n_scale, dt, dtype, device)
              if record_spikes else None)
    return LIFResult(output=output, spike_counts=counts, mean_rate_hz=mean_rate,
                     spikes=spikes, duration_ms=duration, dt=dt,
                     voltage=None if hooks is None else hooks.traces())


def _checked_arrays(w_eff, w_in, w_out, b_out, taus, inputs, scaling):
    """The arguments of :func:`simulate_lif` as tensors on ``inputs``' device and float dtype
    (``b_out`` as a float), their shapes and values checked."""
    inputs = torch.as_tensor(inputs)
    device = inputs.device
    dtype = inputs.dtype if inputs.dtype in (torch.float32, torch.float64) else torch.float32
    inputs = inputs.to(dtype)
    w_eff = _as_tensor(w_eff, device=device, dtype=dtype)
    w_in = _as_tensor(w_in, device=device, dtype=dtype)
    w_out = _as_tensor(w_out, device=device, dtype=dtype).reshape(-1)
    taus = _as_tensor(taus, device=device, dtype=dtype).reshape(-1)
    scaling = _as_tensor(scaling, device=device, dtype=dtype).reshape(-1)
    b_out = float(b_out)
    if inputs.ndim != 3:
        raise ValueError(f"inputs must be (T_rate, B, I), got shape {tuple(inputs.shape)}")
    n_inputs = inputs.shape[2]
    n = w_eff.shape[0]
    if w_eff.shape != (n, n) or w_in.shape != (n, n_inputs) or w_out.shape != (n,) \
            or taus.shape != (n,):
        raise ValueError(
            f"shape mismatch: w_eff {tuple(w_eff.shape)}, w_in {tuple(w_in.shape)} "
            f"(expected ({n}, {n_inputs})), w_out {tuple(w_out.shape)}, taus {tuple(taus.shape)}")
    if scaling.numel() == 0 or bool((scaling <= 0).any()):
        raise ValueError("scaling must hold at least one positive factor")
    if bool((taus <= 0).any()):
        raise ValueError("taus must be positive")
    return inputs, w_eff, w_in, w_out, b_out, taus, scaling


def _synapse_constants(w_eff: Tensor, taus: Tensor, scaling: Tensor, n_trials: int,
                       p: LIFParameters) -> tuple[Tensor, Tensor, Tensor, float]:
    """``(jump, inv_scale, decay_d, decay_r)``: the synaptic jump ``(N, 2N)`` per presynaptic
    spike, ``1/λ`` per state row ``(M,)``, the decay ``(2N,)`` and the rise decay per step."""
    # Synaptic jump per presynaptic spike j: row j of [W^T/(τ_r τ_d,post) | diag(1/(τ_r τ_d))]
    # in seconds (the second half drives the neuron's own filtered train r); 1/λ is applied
    # per row, so the state holds W/λ-driven currents and r/λ (the readout then uses w_out).
    dt = p.dt
    double = p.tau_rise > 0
    taus_s = taus / 1000.0
    norm = taus_s * (p.tau_rise / 1000.0) if double else taus_s
    jump = torch.cat([w_eff.t() / norm[None, :], torch.diag(1.0 / norm)], dim=1)   # (N, 2N)
    inv_scale = (1.0 / scaling).repeat(n_trials)                                     # (M,)
    decay_d = torch.exp(-dt / taus).repeat(2)                                        # (2N,)
    decay_r = math.exp(-dt / p.tau_rise) if double else 0.0
    return jump, inv_scale, decay_d, decay_r


def _integrate(inputs: Tensor, w_in: Tensor, w_out: Tensor, v0: Tensor, synapses: tuple,
               p: LIFParameters, *, n_scale: int, generator: torch.Generator | None,
               record_spikes: bool, progress, hooks=None,
               dense: bool = False) -> tuple[Tensor, Tensor, list, list]:
    """The time loop of :func:`simulate_lif` over the ``M = B·L`` networks (rows ordered
    (trial, scaling)), from ``v0`` ``(B, N)`` and the :func:`_synapse_constants`:
    ``(output, counts, raster_idx, raster_steps)``: per rate step the sum over its LIF steps
    of ``w_out·r`` ``(T_rate, M)``, spikes per (row, neuron) ``(M·N,)``, and trial 0's
    spikes as flat indices into ``(L, N)`` with their steps (lists of tensors).

    ``dense``: the synaptic state is ``[IPSC | r]`` ``(M, 2N)``, updated every step, the
    refractory gate recomputed and the spike matrix multiplied every step. Otherwise (events)
    the state is the IPSC alone, the read-out integrates ``r`` per rate step from the spikes
    (:class:`~nrmkit.nn.lif_readout.WindowReadout`), the gate is a state and only the
    spiking neurons are touched (:mod:`nrmkit.nn.lif_propagation`): the same spikes and
    currents, the read-out equal to round-off.
    """
    t_rate, n_trials, _ = inputs.shape
    n = w_in.shape[0]
    jump, inv_scale, decay_d, decay_r = synapses
    steps_per, n_ref, double = p.steps_per_rate_step, p.refractory_steps, p.tau_rise > 0
    step_s, k_m = p.dt / 1000.0, p.dt / p.tau_m
    # events: the IPSC half of the synapses; r and its rise go to the read-out
    readout, jump, decay_d = ((None, jump, decay_d) if dense
                              else _event_synapses(synapses, w_out, step_s, steps_per))
    (v, syn, rise, neg_last, counts, drive, tmp, gate, spk, r_acc, output,
     noise_buf) = _state_buffers(v0, t_rate, n_scale, p, inputs.device,
                                 width=jump.shape[1], dense=dense)
    ipsc, rate = syn[:, :n], syn[:, n:]
    device, dtype = v.device, v.dtype
    refractory = None if dense else RefractoryGate(v.shape, n_ref, device=device, dtype=dtype)
    gate = gate if refractory is None else refractory.gate
    traced = hooks is not None and hooks.voltage is not None
    raster_idx, raster_steps = [], []
    trial0 = n_scale * n                     # flat indices below this belong to trial 0
    step = 0
    for k in range(t_rate):
        current = inputs[k] @ w_in.t() + p.bias                                  # (B, N)
        drive.view(n_trials, n_scale, n).copy_(current[:, None, :])
        if r_acc is not None:
            r_acc.zero_()
        window, window_steps = [], []             # events: this rate step's spikes
        for within in range(1, steps_per + 1):
            step += 1
            _membrane_step(v, ipsc, drive, tmp, gate, neg_last, refractory, step, n_ref, k_m)
            if noise_buf is not None:
                _add_noise(v, noise_buf, generator, p.noise_std)
            if hooks is not None:
                hooks.stimulate(v, step)
            if dense or traced:
                torch.ge(v, p.v_threshold, out=spk)
            spikes = spk if dense else spiking_indices(v, p.v_threshold)
            if traced:
                hooks.record(v, spk, step)
            _decay_synapses(syn, rise, decay_d, decay_r, step_s)   # then this step's spikes
            first = propagate(spikes, rise if double else syn, jump, inv_scale, v=v,
                              neg_last=neg_last, counts=counts, step=step,
                              v_reset=p.v_reset, trial0=trial0 if record_spikes else 0,
                              gate=refractory)
            _keep_trial0(first, step, raster_idx, raster_steps)
            if readout is None:
                r_acc.add_(rate)
            elif spikes is not None:
                window.append(spikes)
                window_steps.append(within)
        if readout is None:
            output[k] = r_acc @ w_out
        else:
            output[k] = readout.close(*_window_spikes(window, window_steps, counts))
        if progress is not None:
            progress(k + 1, t_rate)
    return output, counts, raster_idx, raster_steps


def _event_synapses(synapses: tuple, w_out: Tensor, step_s: float,
                    steps: int) -> tuple[WindowReadout, Tensor, Tensor]:
    """``(read-out, IPSC jumps (N, N), IPSC decay (N,))`` of the event-driven path from the
    :func:`_synapse_constants` (whose jumps and decays are ``[IPSC | r]``, ``2N`` wide)."""
    jump, inv_scale, decay_d, decay_r = synapses
    n = jump.shape[0]
    readout = WindowReadout(decay_d[:n], decay_r, step_s, torch.diagonal(jump[:, n:]),
                            inv_scale, w_out, steps)
    return readout, jump[:, :n].contiguous(), decay_d[:n].contiguous()


def _add_noise(v: Tensor, noise: Tensor, generator: torch.Generator | None,
               std: float) -> None:
    """``v += σ ξ`` with ``ξ`` ``(B, N)`` drawn on the CPU ``generator`` into ``noise`` and
    shared by the ``L`` scaling factors of each trial (``v`` ``(B·L, N)``)."""
    n_trials, n = noise.shape
    torch.randn(n_trials, n, generator=generator, dtype=noise.dtype, out=noise)
    v.view(n_trials, -1, n).add_(noise.to(v.device)[:, None, :], alpha=std)


def _decay_synapses(syn: Tensor, rise: Tensor | None, decay_d: Tensor, decay_r: float,
                    step_s: float) -> None:
    """One step of the synaptic filters before the step's spikes: ``syn ← syn·e^{−δ/τ_d} +
    δ·rise``, ``rise ← rise·e^{−δ/τ_r}`` (``syn ← syn·e^{−δ/τ_d}`` without a rise)."""
    syn.mul_(decay_d)
    if rise is not None:
        syn.add_(rise, alpha=step_s)
        rise.mul_(decay_r)


def _membrane_step(v: Tensor, ipsc: Tensor, drive: Tensor, tmp: Tensor, gate: Tensor,
                   neg_last: Tensor, refractory: RefractoryGate | None, step: int, n_ref: int,
                   k_m: float) -> None:
    """``v += g·dt/τ_m·(I − v)`` in place, ``g = 1`` unless refractory (the gate recomputed
    from the last spike steps, or kept by ``refractory``)."""
    torch.sub(ipsc, v, out=tmp)
    tmp.add_(drive)
    if refractory is None:
        torch.add(neg_last, float(step - n_ref), out=gate)
        gate.clamp_(0.0, 1.0)
    else:
        refractory.open_due(step, neg_last)
    v.addcmul_(tmp, gate, value=k_m)


def _window_spikes(window: list[Tensor], window_steps: list[int],
                   counts: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """A rate step's spikes as ``(flat indices, step in the rate step)``, counted into
    ``counts`` (``(None, None)`` without spikes)."""
    if not window:
        return None, None
    idx = torch.cat(window)
    counts.index_add_(0, idx, torch.ones_like(idx))
    sizes = torch.tensor([part.numel() for part in window])
    return idx, torch.repeat_interleave(torch.tensor(window_steps), sizes).to(idx.device)


def _keep_trial0(first: Tensor | None, step: int, raster_idx: list, raster_steps: list) -> None:
    """Append trial 0's spikes of ``step`` (flat indices ``first``) to the raster lists."""
    if first is not None and first.numel():
        raster_idx.append(first)
        raster_steps.append(torch.full_like(first, step))


def _state_buffers(v0: Tensor, t_rate: int, n_scale: int, p: LIFParameters, device, *,
                   width: int, dense: bool) -> tuple:
    """The running state of the ``M = B·L`` networks and the work buffers of
    :func:`_integrate`, on ``device`` in ``v0``'s dtype: ``(v, syn, rise, −(last spike
    step), counts, drive, tmp, gate, spk, r_acc, output, noise_buf)``; ``syn`` and ``rise``
    are ``width`` wide (``[IPSC | r]`` for ``2N``, the IPSC alone for ``N``); ``r_acc``, the
    read-out sum of a rate step, only for the ``dense`` path (None otherwise)."""
    n_trials, n = v0.shape
    dtype = v0.dtype
    m = n_trials * n_scale                    # rows ordered (trial, scaling): row = b·L + l
    v = v0.to(device)[:, None, :].expand(n_trials, n_scale, n).reshape(m, n).contiguous()
    syn = torch.zeros(m, width, device=device, dtype=dtype)       # [IPSC | r] or IPSC
    rise = torch.zeros(m, width, device=device, dtype=dtype) if p.tau_rise > 0 else None
    neg_last = torch.full((m, n), math.inf, device=device, dtype=dtype)   # −(last spike step)
    counts = torch.zeros(m * n, device=device, dtype=torch.int64)
    drive = torch.empty(m, n, device=device, dtype=dtype)
    tmp = torch.empty(m, n, device=device, dtype=dtype)
    gate = torch.empty(m, n, device=device, dtype=dtype)
    spk = torch.empty(m, n, device=device, dtype=torch.bool)
    r_acc = torch.zeros(m, n, device=device, dtype=dtype) if dense else None
    output = torch.empty(t_rate, m, device=device, dtype=dtype)
    noise_buf = torch.empty(n_trials, n, dtype=dtype) if p.noise_std > 0 else None
    return (v, syn, rise, neg_last, counts, drive, tmp, gate, spk, r_acc, output, noise_buf)


def _spike_trains(raster_idx: list[Tensor], raster_steps: list[Tensor], n: int, n_scale: int,
                  dt: float, dtype: torch.dtype, device) -> list[tuple[Tensor, Tensor]]:
    """Trial 0's spikes per scaling factor: ``(times_ms, neurons)`` pairs in time order."""
    if raster_idx:
        flat = torch.cat(raster_idx)
        steps_all = torch.cat(raster_steps)
    else:
        flat = torch.empty(0, dtype=torch.int64, device=device)
        steps_all = flat
    lam = torch.div(flat, n, rounding_mode="floor")
    neuron = flat - lam * n
    spikes = []
    for ell in range(n_scale):
        sel = lam == ell
        spikes.append((steps_all[sel].to(dtype) * dt, neuron[sel]))
    return spikes
