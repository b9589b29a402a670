"""The independent evaluation runs of the trained networks (:class:`Evaluation`): every
number a training workflow calls *evaluated*."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: QR interval of the evaluation runs (chosen from a pilot run, see ``lyapunov_spectrum``).
EVALUATION_TONS = "auto"


class Evaluation:
    """The independent evaluation runs of a batch of networks: from each network's evaluation
    state ``(S, G, N)`` and basis ``(S, G, k', N)`` (``k' = max(nle, spectrum_nle)``), a
    warm-up of ``--eval_ttrans`` and ``--eval_tsim`` of accumulation, no gradient, the QR
    interval chosen by ``tons="auto"`` (the exponents do not depend on it within the dtype's
    precision, which ``auto`` respects; see
    :func:`nrmkit.training.spectrum.evaluate_spectra`)."""

    def __init__(self, config: Any, loss: Callable, state: Any, basis: Any):
        self.config, self.loss, self.state, self.basis = config, loss, state, basis

    def spectra(self, model: Any) -> Any:
        """``(n_networks, k')`` float64 exponents, descending."""
        from nrmkit.training.spectrum import evaluate_spectra

        config = self.config
        exponents = evaluate_spectra(model, config.eval_nle, state=self.state,
                                     basis=self.basis, tsim=config.eval_tsim,
                                     tons=EVALUATION_TONS, ttrans=config.eval_ttrans)
        return exponents.reshape(-1, config.eval_nle).cpu().double().numpy()

    def initial(self, model: Any) -> dict[str, Any]:
        """The untrained networks: ``spectrum (n_networks, k')`` and, with ``--baseline``,
        the global-gain scan ``baseline_loss``, ``baseline_lambda_max`` ``(n_networks, M)``
        (:func:`nrmkit.training.spectrum.global_gain_baseline`)."""
        import numpy as np

        from nrmkit.training.spectrum import BASELINE_GAINS, global_gain_baseline

        config = self.config
        record = {"spectrum": self.spectra(model)}
        n_networks = record["spectrum"].shape[0]
        if config.baseline:
            k = config.nle
            scan = global_gain_baseline(
                model, k, loss=self.loss, target=config.target, state=self.state,
                basis=self.basis[..., :k, :].contiguous(), tsim=config.eval_tsim,
                tons=config.tons, ttrans=config.eval_ttrans)
            record["baseline_loss"] = scan["loss"].cpu().double().numpy()
            record["baseline_lambda_max"] = scan["lambda_max"].cpu().double().numpy()
        else:
            empty = np.full((n_networks, len(BASELINE_GAINS)), np.nan)
            record["baseline_loss"], record["baseline_lambda_max"] = empty, empty.copy()
        return record
