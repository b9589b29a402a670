"""Model files of the sequence models (``model.pt``): the spec, the weights and the data
settings, written atomically and read back with every check (a damaged, foreign or
non-finite file is one line naming it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

MODEL_FILE = "model.pt"


def model_file(path: str) -> Path:
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


def save_sequence_model(path: Path, model, data: dict[str, Any]) -> None:
    """``model.pt``: the spec, the weights and the data settings (permutation included)."""
    import torch

    from nrmkit.training.checkpoint import save_checkpoint

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, {"spec": dataclasses.asdict(model.spec), "state_dict": state,
                           "data": {**data, "permutation": torch.as_tensor(
                               data["permutation"]) if data["permutation"] is not None
                               else None}})


def load_sequence_model(path: str | Path, *, device: str = "cpu", dtype=None):
    """``(model, data settings)`` from an smnist run directory or its ``model.pt``.

    Raises:
        DataError: naming the file: unreadable, not written by :func:`save_sequence_model`,
            or holding non-finite weights.
    """
    import torch

    from nrmkit.nn.recurrent import build_sequence_model
    from nrmkit.training.checkpoint import build_from_record, load_checkpoint, require_finite

    path = model_file(str(path))
    what = "an smnist model file"
    record = load_checkpoint(path, what=what)

    def build():
        state = record["state_dict"]
        require_finite(state, path)
        model = build_sequence_model(record["spec"])
        model.load_state_dict(state)
        data = dict(record["data"])
        if data.get("permutation") is not None:
            data["permutation"] = data["permutation"].numpy()
        return model, data

    model, data = build_from_record(path, what, build)
    return model.to(device=device, dtype=dtype or torch.float32), data
