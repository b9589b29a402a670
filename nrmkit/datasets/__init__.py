"""Datasets shipped with or read by nrmkit.

* :mod:`nrmkit.datasets.connectome` — signed connectomes (the shipped FlyWire right mushroom
  body, FlyStability ROI folders) as sparse ``W[post, pre]`` matrices with per-neuron labels,
  Dale's-law signs, cell-class selection, populations and Sinkhorn–Knopp normalisation.
"""

from __future__ import annotations
