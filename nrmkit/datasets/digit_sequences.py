"""Digit images as sequence-classification data, prepared once for every sequence workflow.

:func:`load_splits` reads the train / validation / test splits of a digit dataset
(:func:`nrmkit.datasets.digits.load_digit_splits`) and names ``--data-dir`` when a user's
MNIST files are at fault; :func:`sequence_tensors` turns every split into time-first tensors
``inputs (T, B, I)`` and ``labels (B,)`` (rows: ``T`` = image height, ``I`` = width; pixels:
``T`` = height·width, ``I`` = 1; an optional pixel permutation for permuted MNIST).
"""

from __future__ import annotations

from typing import Any

from nrmkit.core.errors import ConfigError, DataError
from nrmkit.datasets import digits

SPLITS = ("train", "validation", "test")


def load_splits(dataset: str, data_dir: str | None) -> digits.DigitSplits:
    """The splits of ``dataset`` (``digits`` or ``mnist``).

    Raises:
        ConfigError: naming ``--data-dir`` when the MNIST files given there are missing,
            truncated or malformed (one line naming the file).
        DataError: the data cannot be found or read otherwise.
    """
    try:
        return digits.load_digit_splits(dataset, data_dir=data_dir)
    except DataError as error:
        if data_dir is None or dataset != "mnist":
            raise
        raise ConfigError("--data-dir", str(error)) from None


def sequence_tensors(splits: digits.DigitSplits, *, input_mode: str, permutation: Any = None,
                     dtype: Any = None, device: Any = None) -> dict[str, tuple[Any, Any]]:
    """``{"train" | "validation" | "test": (inputs (T, B, I), labels (B,))}`` as tensors."""
    import torch

    def tensors(images, labels):
        sequences = digits.as_sequences(images, image_shape=splits.image_shape,
                                        input_mode=input_mode, permutation=permutation)
        return (torch.as_tensor(sequences, dtype=dtype, device=device),
                torch.as_tensor(labels, device=device))

    return {name: tensors(getattr(splits, f"{name}_images"), getattr(splits, f"{name}_labels"))
            for name in SPLITS}
