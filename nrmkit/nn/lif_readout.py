r"""The read-out of the batched LIF networks of :mod:`nrmkit.nn.lif`, one rate step at a time.

Each neuron's filtered spike train ``r`` (and, with a rise time, its rise ``h``) never acts
back on the network: it only feeds the read-out, the sum over the ``T`` LIF steps of a rate
step of ``w_out · r``. Per neuron ``j`` the pair ``x = (r, h)`` follows one linear map per
step and jumps at its spikes,

.. math::

    x_t = A_j x_{t-1} + c_j λ_m^{-1} S_{t} e, \qquad
    A_j = \begin{pmatrix} D_j & δ \\ 0 & d \end{pmatrix},
    \qquad \text{out} = \sum_{t=1}^{T} w_{out} \cdot r_t

(``D_j = e^{-δ/τ_{d,j}}``, ``d = e^{-δ/τ_r}``, ``c_j = 1/(τ_r τ_{d,j})``, the spike entering
``h``: ``e = e_h``; without a rise time ``x = r``, ``A_j = D_j``, ``c_j = 1/τ_{d,j}``,
``e = e_r``). So a rate step needs only its starting state and its spikes:

.. math::

    \sum_t r_t = s_T \cdot x_0 + \sum_{\text{spikes}} c_j λ_m^{-1}
        \bigl(s_{u} \cdot e + [e = e_r]\bigr), \qquad
    x_T = A^T x_0 + \sum_{\text{spikes}} c_j λ_m^{-1} A^{u} e,

with ``u = T − τ`` the steps left after a spike's step ``τ`` and ``s_k = Σ_{i=1}^{k} e_rᵀ A^i``.
:class:`WindowReadout` tabulates ``A^k`` and ``s_k`` (``k = 0 … T``) once, in float64 from the
coefficients as the step-by-step update rounds them, and keeps ``x`` in float64: the read-out
equals the step-by-step sum to round-off, and a LIF step no longer touches ``r`` or ``h``
(half the synaptic state).

Reference: Kim, Li & Sejnowski, PNAS 116, 22811 (2019) (the double-exponential synaptic
filter and the read-out of the LIF network). This module does not print, write files or hold
global state.
"""

from __future__ import annotations

import torch
from torch import Tensor


class WindowReadout:
    """``Σ_t w_out·r_t`` per rate step of ``M`` networks of ``N`` neurons (module docstring).

    Args:
        decay: ``D_j`` ``(N,)`` in the simulation dtype. rise_decay: ``d`` (0: no rise).
        step_s: ``δ``, the step in seconds (multiplies ``h``). jump: ``c_j`` ``(N,)`` in the
            simulation dtype. inv_scale: ``1/λ_m`` ``(M,)`` in the simulation dtype.
        w_out: ``(N,)`` read-out weights. steps: ``T``, LIF steps per rate step.
    """

    def __init__(self, decay: Tensor, rise_decay: float, step_s: float, jump: Tensor,
                 inv_scale: Tensor, w_out: Tensor, steps: int) -> None:
        dtype, device = decay.dtype, decay.device
        self.double = rise_decay > 0
        rounded = torch.tensor([rise_decay, step_s], dtype=dtype).double()
        d, delta = (float(rounded[0]), float(rounded[1])) if self.double else (0.0, 0.0)
        big_d = decay.double()
        n, m = decay.numel(), inv_scale.numel()
        self.n, self.steps, self.dtype = n, steps, dtype
        self.jump, self.inv_scale = jump, inv_scale
        self.w_out = w_out.double()
        # powers A^k = [[D^k, X_k], [0, d^k]] and s_k = Σ_{i≤k} e_rᵀA^i, k = 0…T, (T+1, N)
        power_d = torch.empty(steps + 1, n, dtype=torch.float64, device=device)
        cross = torch.empty_like(power_d)
        sum_r, sum_h = torch.empty_like(power_d), torch.empty_like(power_d)
        power_d[0], cross[0], sum_r[0], sum_h[0] = 1.0, 0.0, 0.0, 0.0
        for k in range(steps):
            power_d[k + 1] = big_d * power_d[k]
            cross[k + 1] = big_d * cross[k] + delta * d ** k
            sum_r[k + 1] = sum_r[k] + power_d[k + 1]
            sum_h[k + 1] = sum_h[k] + cross[k + 1]
        self.power_d, self.cross, self.sum_r, self.sum_h = power_d, cross, sum_r, sum_h
        self.power_rise = torch.tensor([d ** k for k in range(steps + 1)], dtype=torch.float64,
                                       device=device)
        self.r = torch.zeros(m, n, dtype=torch.float64, device=device)
        self.h = torch.zeros_like(self.r) if self.double else None

    def close(self, idx: Tensor | None = None, step_in_window: Tensor | None = None) -> Tensor:
        """The current rate step's ``Σ_t w_out·r_t`` ``(M,)`` (float64) given its spikes
        ``idx`` (flat into ``(M, N)``) at the steps ``τ = step_in_window`` (1 … T); advances
        the state to the end of the rate step."""
        steps = self.steps
        r0, h0 = self.r, self.h
        total = r0 * self.sum_r[steps]
        end_r = r0 * self.power_d[steps]
        if self.double:
            total.addcmul_(h0, self.sum_h[steps])
            end_r.addcmul_(h0, self.cross[steps])
            self.h = h0 * self.power_rise[steps]
        output = total @ self.w_out
        if idx is not None and idx.numel():
            left = steps - step_in_window
            row = torch.div(idx, self.n, rounding_mode="floor")
            col = idx - row * self.n
            value = (self.jump.index_select(0, col)
                     * self.inv_scale.index_select(0, row)).double()   # as the step rounds it
            if self.double:
                into_sum = self.sum_h[left, col]
                end_r.view(-1).index_add_(0, idx, value * self.cross[left, col])
                self.h.view(-1).index_add_(0, idx, value * self.power_rise[left])
            else:
                into_sum = self.sum_r[left, col] + 1.0
                end_r.view(-1).index_add_(0, idx, value * self.power_d[left, col])
            output.index_add_(0, row, value * into_sum * self.w_out.index_select(0, col))
        self.r = end_r
        return output
