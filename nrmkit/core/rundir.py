"""Run directories: where a workflow leaves ``config.json``, ``results.json``, arrays, figures.

Every file is written atomically (a temporary file in the same folder, then
``os.replace``), so a reader or a killed job never sees half a file. A directory that
already holds files is refused unless the caller asks to overwrite (only a previous
nrmkit run directory is ever cleared) or to resume.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nrmkit import __version__
from nrmkit.core.errors import ConfigError

#: Runs without ``--output-dir`` go to ``$NRMKIT_RUNS_DIR/<workflow>/<timestamp>``
#: (default ``./data/runs``).
DEFAULT_RUNS_DIR = Path("data") / "runs"
MARKER_FILE = "config.json"


def default_run_path(workflow: str) -> Path:
    """A fresh timestamped folder for ``workflow`` under the default runs directory."""
    root = Path(os.environ.get("NRMKIT_RUNS_DIR", DEFAULT_RUNS_DIR))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = root / workflow / stamp
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = root / workflow / f"{stamp}-{suffix}"
    return candidate


class RunDir:
    """An output folder with atomic writers. Create with :meth:`create`."""

    def __init__(self, path: Path, *, created: bool = False):
        self.path = Path(path)
        self.created = created
        self.written: list[Path] = []

    @classmethod
    def create(
        cls,
        path: str | Path | None,
        *,
        workflow: str,
        overwrite: bool = False,
        resume: bool = False,
    ) -> RunDir:
        """Open ``path`` (or a fresh default folder) for a new run.

        Raises:
            ConfigError: ``path`` is a file, or a non-empty folder without ``overwrite``
                or ``resume``, or (with ``overwrite``) a non-empty folder that is not
                an nrmkit run directory.
        """
        target = default_run_path(workflow) if path is None else Path(path)
        if target.exists() and not target.is_dir():
            raise ConfigError("--output-dir", f"{target} exists and is not a directory")
        existing = list(target.iterdir()) if target.exists() else []
        if existing and not resume:
            if not overwrite:
                raise ConfigError(
                    "--output-dir",
                    f"{target} is not empty (use --overwrite to replace a previous run)",
                )
            if not (target / MARKER_FILE).exists():
                raise ConfigError(
                    "--output-dir",
                    f"{target} is not empty and is not an nrmkit run directory; "
                    "refusing to delete it",
                )
            for entry in existing:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        created = not target.exists()
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError("--output-dir", f"cannot create {target}: {error}") from None
        return cls(target, created=created)

    # -- writers -----------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    def _atomic_write_bytes(self, name: str, data: bytes) -> Path:
        target = atomic_write_bytes(self.path / name, data)
        if target not in self.written:
            self.written.append(target)
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self._atomic_write_bytes(name, text.encode())

    def write_json(self, name: str, payload: Any) -> Path:
        """JSON with non-finite floats written as ``null`` (strict JSON)."""
        text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False)
        return self.write_text(name, text + "\n")

    def write_arrays(self, name: str, **arrays: Any) -> Path:
        """A compressed ``.npz`` of numpy-convertible arrays."""
        import numpy as np

        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
        return self._atomic_write_bytes(name, buffer.getvalue())

    def save_figure(self, figure: Any, stem: str, *, formats: tuple[str, ...] = ("png", "pdf")):
        """Save a matplotlib figure as ``figures/<stem>.png`` and ``.pdf``; close it."""
        paths = []
        for fmt in formats:
            buffer = io.BytesIO()
            figure.savefig(buffer, format=fmt, dpi=200 if fmt == "png" else None,
                           bbox_inches="tight")
            paths.append(self._atomic_write_bytes(f"figures/{stem}.{fmt}", buffer.getvalue()))
        import matplotlib.pyplot as plt

        plt.close(figure)
        return paths

    def discard(self) -> None:
        """Remove what this run wrote (after a failure); remove the folder if we made it."""
        for path in self.written:
            path.unlink(missing_ok=True)
        figures = self.path / "figures"
        if figures.is_dir() and not any(figures.iterdir()):
            figures.rmdir()
        if self.created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and
    ``os.replace``: readers and killed jobs see the old file or the new one, never half."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def to_jsonable(value: Any) -> Any:
    """Convert numpy/torch scalars and arrays, paths and tuples to plain JSON values."""
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy arrays / scalars, torch tensors
        return to_jsonable(value.tolist())
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    return str(value)


def run_metadata() -> dict[str, Any]:
    """Versions, host, command line, git commit and SLURM identifiers of this process."""
    from importlib import metadata

    versions = {"nrmkit": __version__, "python": platform.python_version()}
    for package in ("torch", "numpy", "scipy", "click", "matplotlib", "rich"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    slurm = {
        key: os.environ[key]
        for key in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                    "SLURM_JOB_NAME", "SLURM_CLUSTER_NAME")
        if key in os.environ
    }
    return {
        "versions": versions,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "cwd": os.getcwd(),
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "slurm": slurm,
    }


def _git_commit() -> str | None:
    """Commit of the nrmkit source tree if it is a git checkout (with ``+dirty``)."""
    source = Path(__file__).resolve().parents[2]
    if not (source / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
