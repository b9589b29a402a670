"""The summary statistics of results.json, written once.

Every ``{"mean", "std", …}`` that a workflow reports over trials, seeds, neurons or
trajectories comes from here, with one convention: ``std`` is the **population** standard
deviation of the reported values (``ddof = 0``, numpy's default; divide by √n for the
standard error of the mean, by √(n − 1)/√n for the sample estimate). Non-finite values are
not dropped: a NaN in the input is a NaN in the summary.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: the degrees of freedom of every reported standard deviation.
DDOF = 0


def as_array(values: Any) -> np.ndarray:
    """``values`` (a sequence, numpy array or torch tensor on any device) as float64."""
    if hasattr(values, "detach"):
        values = values.detach().double().cpu().numpy()
    return np.atleast_1d(np.asarray(values, dtype=float))


def mean_std(values: Any, axis: int | None = None) -> dict[str, Any]:
    """``{"mean", "std"}`` over ``axis`` (all values by default), std with ``ddof = 0``."""
    array = as_array(values)
    mean, std = array.mean(axis=axis), array.std(axis=axis, ddof=DDOF)
    if axis is None:
        return {"mean": float(mean), "std": float(std)}
    return {"mean": mean, "std": std}


def summary_statistics(values: Any) -> dict[str, float]:
    """``{"mean", "std", "min", "max"}`` of all values (std with ``ddof = 0``)."""
    array = as_array(values)
    return {**mean_std(array), "min": float(array.min()), "max": float(array.max())}
