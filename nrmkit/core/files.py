"""Atomic file writes that record themselves in the manifest of an open run folder.

Every file nrmkit writes goes through :func:`atomic_write_bytes`: a temporary file in the
same folder, fsync, then ``os.replace``, so a reader or a killed job sees the old file or the
new one, never half; the file gets the permissions ``0666 & ~umask``. Inside a run folder
opened by :mod:`nrmkit.runs.rundir` (:func:`open_manifest`) the file is first recorded in
the writing process's manifest ``.nrmkit/written/<host>-<pid>-<random>.txt``, which is what
lets ``--overwrite`` delete only what nrmkit wrote.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import tempfile
from pathlib import Path

from nrmkit.core.errors import WriteError

#: nrmkit's own folder inside a run folder: marker, lock, manifests.
MARKER_DIR = ".nrmkit"
MANIFESTS = "written"
#: prefix of the temporary files of atomic writes (a killed writer may leave one behind).
TEMPORARY_PREFIX = ".nrmkit-tmp-"


class _Manifest:
    """The files one process wrote into one run folder, one relative path per line."""

    def __init__(self, root: Path):
        self.root = root
        self.recorded: set[str] = set()
        self._pid: int | None = None
        self.path = root

    def _file(self) -> Path:
        if self._pid != os.getpid():           # a forked child writes a manifest of its own
            self._pid = os.getpid()
            host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
            name = f"{host}-{self._pid}-{secrets.token_hex(4)}.txt"
            self.path = self.root / MARKER_DIR / MANIFESTS / name
            self.recorded = set()
        return self.path

    def record(self, relative: str) -> None:
        """Append ``relative`` (once) before the file is created."""
        path = self._file()
        if relative in self.recorded:
            return
        try:
            path.parent.mkdir(exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(relative + "\n")
        except OSError as error:
            raise WriteError(path, error) from None
        self.recorded.add(relative)


#: run folders open in this process (real path → its manifest); see :func:`atomic_write_bytes`.
_OPEN_RUNS: dict[Path, _Manifest] = {}


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _owner(target: Path) -> tuple[_Manifest, str] | None:
    """The manifest that must record ``target`` (the innermost open run folder holding it)
    and its path relative to that folder; None outside open run folders or inside
    ``.nrmkit/``."""
    if not _OPEN_RUNS:
        return None
    parent = _real(target.parent)
    roots = [root for root in _OPEN_RUNS if root == parent or root in parent.parents]
    if not roots:
        return None
    root = max(roots, key=lambda path: len(path.parts))
    relative = (parent / target.name).relative_to(root).as_posix()
    if relative.split("/", 1)[0] == MARKER_DIR:
        return None
    return _OPEN_RUNS[root], relative


def record_tree(folder: str | Path) -> None:
    """Record ``folder`` (inside an open run folder) as a whole: another program writes its
    files for nrmkit (submitit's job scripts and logs), so ``--overwrite`` may delete them."""
    owner = _owner(Path(folder))
    if owner is not None:
        owner[0].record(owner[1].rstrip("/") + "/")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and
    ``os.replace``: readers and killed jobs see the old file or the new one, never half.

    The file gets the permissions ``0666 & ~umask`` (as ``open`` would give it); inside an
    open run folder it is recorded in this process's manifest before it is created.

    Raises:
        WriteError: the operating system refused (read-only, disk full, permissions),
            naming ``path`` and the reason; no temporary file is left behind.
    """
    target = Path(path)
    owner = _owner(target)
    temporary = None
    try:
        if owner is not None:
            owner[0].record(owner[1])
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=target.parent)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as error:
        _remove_quietly(temporary)
        raise WriteError(target, error) from None
    except BaseException:
        _remove_quietly(temporary)
        raise
    return target


def _remove_quietly(path: str | None) -> None:
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass


def open_manifest(folder: str | Path) -> None:
    """Record every later write under ``folder`` in this process's manifest of it."""
    _OPEN_RUNS[_real(Path(folder))] = _Manifest(_real(Path(folder)))


def close_manifest(folder: str | Path) -> None:
    """Stop recording writes under ``folder``."""
    _OPEN_RUNS.pop(_real(Path(folder)), None)
