"""Run folders: where a workflow leaves ``config.json``, ``results.json``, arrays, figures.

What a run folder guarantees (the README's "Run folders"):

* **A marker only nrmkit writes.** ``.nrmkit/run.json`` names the workflow and the format
  version. Every file nrmkit writes into a run folder is first recorded in a manifest of the
  writing process, ``.nrmkit/written/<host>-<pid>-<random>.txt`` (one file per process, so
  that array tasks on many nodes never write to the same file).
* **``--overwrite`` removes only what nrmkit wrote, for a run of the same workflow.** A
  non-empty folder without the marker, one holding any file that no manifest lists, or the
  run of another workflow (a trained model, say) is refused — naming the file or the
  workflow — and nothing in it is deleted. Sub-folders left empty are removed.
* **One run at a time.** A run holds the folder's lock (:mod:`nrmkit.runs.folderlock`) from
  start to end; array tasks and ``nrmkit collect`` hold it only while they write the shared
  files (marker, ``config.json``, ``results.json``). A second run exits naming the holder.
* **Atomic writes with the process umask.** A temporary file in the same folder, fsync, then
  ``os.replace``: a reader or a killed job sees the old file or the new one, never half, and
  files get the permissions of any other file the user creates (0644 under umask 022). An
  operating-system error becomes a :class:`~nrmkit.core.errors.WriteError` naming the path.
* **Nothing half-written after a failure.** :meth:`RunDir.discard` removes what the run wrote,
  its marker, and the folders it created (empty parents of a default folder included).
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nrmkit import __version__
from nrmkit.core.errors import ConfigError, DataError, WriteError
from nrmkit.core.files import (
    MANIFESTS,
    MARKER_DIR,
    TEMPORARY_PREFIX,
    atomic_write_bytes,
    close_manifest,
    open_manifest,
)
from nrmkit.runs.folderlock import FolderLock, LockHeld

#: Runs without ``--output-dir`` go to ``$NRMKIT_RUNS_DIR/<workflow>/<timestamp>``
#: (default ``./data/runs``, also where the variable is set but empty).
DEFAULT_RUNS_DIR = Path("data") / "runs"
MARKER_FILE = "run.json"
#: version of the run-folder layout written into the marker.
RUN_FORMAT = 1
#: how a run folder is opened (see :meth:`RunDir.open`).
OPEN_MODES = ("new", "overwrite", "resume", "array-task", "collect")
#: the lock roles that hold it only briefly, and how long others wait for them [s].
BRIEF_HOLDERS = ("array task", "collect")
BRIEF_WAIT_SECONDS = 120.0


def claim_default_folder(workflow: str) -> tuple[Path, list[Path]]:
    """Create a fresh timestamped folder for ``workflow`` under the default runs directory,
    ``<root>/<workflow>/<YYYYmmdd-HHMMSS>[-k]``; returns it and the folders created
    (outermost first). The folder is claimed by an exclusive ``mkdir``, so runs started in
    the same second (an array job) each get their own."""
    root = Path(os.environ.get("NRMKIT_RUNS_DIR", "").strip() or DEFAULT_RUNS_DIR)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    parents = _make_folders(root / workflow)
    suffix = 1
    while True:
        candidate = root / workflow / (stamp if suffix == 1 else f"{stamp}-{suffix}")
        try:
            candidate.mkdir()
        except FileExistsError:
            suffix += 1
            continue
        except OSError as error:
            raise WriteError(candidate, error, action="create") from None
        return candidate, [*parents, candidate]


# ----------------------------------------------------------------------------- inventory

@dataclass
class _Inventory:
    """What a run folder holds, outside its own ``.nrmkit/``.

    Attributes:
        owned: files recorded in a manifest (or temporary files of atomic writes).
        foreign: every other file, link or special file.
        folders: every sub-folder, deepest first.
        nested_markers: ``.nrmkit/`` folders of run folders inside this one.
    """

    owned: list[Path] = field(default_factory=list)
    foreign: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    nested_markers: list[Path] = field(default_factory=list)


def _manifest_entries(run: Path) -> tuple[set[Path], set[Path]]:
    """``(files, trees)`` the manifests of ``run`` list (a line ending in ``/`` is a folder
    whose whole content another program wrote for nrmkit, e.g. submitit's job files)."""
    files: set[Path] = set()
    trees: set[Path] = set()
    for manifest in (run / MARKER_DIR / MANIFESTS).glob("*.txt"):
        try:
            lines = manifest.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue                      # unreadable: its files count as foreign (safe side)
        for line in lines:
            parts = [part for part in line.split("/") if part]
            if not parts or line.startswith("/") or ".." in parts:
                continue
            (trees if line.endswith("/") else files).add(run.joinpath(*parts))
    return files, trees


def _inventory(root: Path) -> _Inventory:
    """Sort everything under ``root`` into nrmkit's files and foreign ones (links are never
    followed: a link is an entry of its own)."""
    inventory = _Inventory()
    runs, files = [root], []
    for current, dirnames, filenames in os.walk(root):
        here = Path(current)
        if MARKER_DIR in dirnames and (here == root
                                       or (here / MARKER_DIR / MARKER_FILE).is_file()):
            dirnames.remove(MARKER_DIR)          # the marker folder is nrmkit's own
            if here != root:
                runs.append(here)
                inventory.nested_markers.append(here / MARKER_DIR)
        for name in list(dirnames):
            if (here / name).is_symlink():
                dirnames.remove(name)
                filenames.append(name)
        inventory.folders.extend(here / name for name in dirnames)
        files.extend(here / name for name in filenames)
    recorded: set[Path] = set()
    trees: set[Path] = set()
    for run in runs:
        run_files, run_trees = _manifest_entries(run)
        recorded |= run_files
        trees |= run_trees
    for path in files:
        mine = (path in recorded or path.name.startswith(TEMPORARY_PREFIX)
                or any(tree in path.parents for tree in trees))
        (inventory.owned if mine else inventory.foreign).append(path)
    inventory.folders.sort(key=lambda path: len(path.parts), reverse=True)
    return inventory


def _delete_owned(inventory: _Inventory) -> None:
    """Delete nrmkit's files, the marker folders of nested runs and the folders left empty."""
    for path in inventory.owned:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise WriteError(path, error, action="delete") from None
    for marker in inventory.nested_markers:
        shutil.rmtree(marker, ignore_errors=True)
    for folder in inventory.folders:
        try:
            folder.rmdir()
        except OSError:
            pass                                 # it still holds something foreign


def _named(paths: list[Path], root: Path, limit: int = 3) -> str:
    names = [path.relative_to(root).as_posix() for path in sorted(paths)[:limit]]
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(names) + more


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of the run folder ``folder`` (``{"format", "workflow", …}``), or None if it
    has none.

    Raises:
        DataError: the marker exists but is not one nrmkit wrote (corrupt JSON, missing
            keys) or comes from a newer nrmkit.
    """
    path = Path(folder) / MARKER_DIR / MARKER_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is corrupt ({type(error).__name__}); it marks an nrmkit run "
                        "folder — restore it or move the folder's files elsewhere") from None
    if (not isinstance(record, dict) or not isinstance(record.get("workflow"), str)
            or not isinstance(record.get("format"), int)):
        raise DataError(f"{path} is not an nrmkit run marker")
    if record["format"] > RUN_FORMAT:
        raise DataError(f"{path}: the run folder was made by a newer nrmkit (format "
                        f"{record['format']}); upgrade nrmkit to use it")
    return record


def _make_folders(target: Path) -> list[Path]:
    """Create ``target`` and its missing parents; return those created, outermost first."""
    missing, current = [], target
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(target, error, action="create") from None
    return missing[::-1]


# ----------------------------------------------------------------------------- run folders

class RunDir:
    """A run folder with atomic writers.

    Open one for a run with :meth:`open` (marker, lock, checks); a job process that writes
    parts into a folder opened by its parent uses :meth:`attach`. ``RunDir(path)`` alone is
    a writer into ``path`` without checks (a sub-folder of an open run folder).
    """

    def __init__(self, path: str | Path, *, mode: str = "attached",
                 created_folders: list[Path] | None = None):
        self.path = Path(path)
        self.mode = mode
        self.created_folders = list(created_folders or [])
        self.previous: dict[str, Any] | None = None
        self.lock: FolderLock | None = None
        self.written: list[Path] = []

    @property
    def created(self) -> bool:
        """Whether this run created the folder."""
        return bool(self.created_folders)

    @classmethod
    def open(cls, path: str | Path | None, *, workflow: str | None, mode: str = "new",
             option: str = "--output-dir") -> RunDir:
        """Open ``path`` (or a fresh default folder) for a run, holding its lock.

        Modes: ``new`` (the folder must be empty or absent), ``overwrite`` (a previous nrmkit
        run is cleared first: only files nrmkit wrote; anything else is refused), ``resume``
        (a run of ``workflow`` must be there), ``array-task`` (empty, or a run of
        ``workflow`` — other tasks' — is there), ``collect`` (any nrmkit run). The marker
        found is in :attr:`previous`.

        Raises:
            ConfigError: naming ``option``: an empty path, a file, a non-empty folder in
                ``new`` mode, foreign files for ``overwrite``/``array-task``, no run to
                resume or collect, or a folder locked by another process (named).
            WriteError: the folder cannot be created or locked.
            DataError: a corrupt marker.
        """
        if mode not in OPEN_MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if path is not None and not str(path).strip():
            raise ConfigError(option, "is empty: give a folder (`.` for the current one)")
        if workflow is None and path is None:
            raise ValueError("a default run folder needs a workflow name")
        if path is None:
            target, created = claim_default_folder(workflow)
            return cls._locked(target, created, workflow, mode, option)
        target = Path(path)
        if target.exists() and not target.is_dir():
            raise ConfigError(option, f"{target} exists and is not a folder")
        if mode in ("resume", "collect") and read_marker(target) is None:
            what = f"{workflow} run" if workflow else "nrmkit run"
            raise ConfigError("--resume" if mode == "resume" else option,
                              f"there is no {what} in {target}")
        cls._refuse_foreign(target, mode, option)     # before anything is created in it
        return cls._locked(target, _make_folders(target), workflow, mode, option)

    @classmethod
    def _locked(cls, target: Path, created: list[Path], workflow: str | None, mode: str,
                option: str) -> RunDir:
        """Take the lock of the existing folder ``target`` and prepare it (see :meth:`open`)."""
        run = cls(target, mode=mode, created_folders=created)
        marker_folder = target / MARKER_DIR
        had_marker_folder = marker_folder.is_dir()
        role = {"array-task": "array task", "collect": "collect"}.get(mode, "run")
        try:
            try:
                marker_folder.mkdir(exist_ok=True)
                lock = FolderLock(target, role=role, workflow=workflow)
                lock.acquire(wait_for=BRIEF_HOLDERS if role in BRIEF_HOLDERS else (),
                             timeout=BRIEF_WAIT_SECONDS)
            except OSError as error:
                raise WriteError(marker_folder, error, action="lock") from None
            run.lock = lock
            run._prepare(workflow, option)
        except LockHeld as held:                  # the marker folder is the holder's
            raise ConfigError(option, f"{target} is in use by {held} (lock "
                                      f"{held.path}); wait until it ends, or choose another "
                                      "folder") from None
        except BaseException:
            run._undo_creation(had_marker_folder)  # still under the lock
            run.unlock()
            raise
        open_manifest(target)
        return run

    @staticmethod
    def _refuse_foreign(target: Path, mode: str, option: str) -> None:
        """Refuse a non-empty folder that is no run folder, without writing into it."""
        if mode not in ("new", "overwrite", "array-task") or not target.is_dir():
            return
        entries = [entry for entry in target.iterdir() if entry.name != MARKER_DIR]
        if not entries:
            return
        if mode == "new":
            raise ConfigError(option, f"{target} is not empty (--overwrite replaces a previous "
                                      "nrmkit run in it, --resume continues one)")
        if read_marker(target) is None:
            raise ConfigError(option, f"{target} is not empty and is not an nrmkit run folder "
                                      f"(no {MARKER_DIR}/{MARKER_FILE}); refusing to touch "
                                      f"its files ({_named(entries, target)})")

    def _prepare(self, workflow: str | None, option: str) -> None:
        """Under the lock: check what the folder holds for this mode; clear it for
        ``overwrite``; write the marker of a new run."""
        target, mode = self.path, self.mode
        self._refuse_foreign(target, mode, option)     # again: it may have changed
        marker = read_marker(target)
        if marker is not None and workflow is not None \
                and mode in ("resume", "array-task", "overwrite") \
                and marker["workflow"] != workflow:
            hint = (f"; --overwrite replaces only a {workflow} run (choose another folder)"
                    if mode == "overwrite" else "")
            raise ConfigError(option, f"{target} holds a {marker['workflow']} run, not a "
                                      f"{workflow} run{hint}")
        self.previous = marker
        if mode == "overwrite":
            inventory = _inventory(target)
            if inventory.foreign:
                raise ConfigError(option, f"{target} holds {_named(inventory.foreign, target)}, "
                                          "which nrmkit did not write; refusing to delete "
                                          "anything (move it away, or choose another folder)")
            _delete_owned(inventory)
        if mode in ("new", "overwrite") or (mode == "array-task" and marker is None):
            shutil.rmtree(target / MARKER_DIR / MANIFESTS, ignore_errors=True)
            atomic_write_bytes(target / MARKER_DIR / MARKER_FILE, (json.dumps({
                "format": RUN_FORMAT, "workflow": workflow, "nrmkit": __version__,
                "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            }, indent=2) + "\n").encode())

    def _undo_creation(self, had_marker_folder: bool) -> None:
        """Remove the marker folder and the folders :meth:`open` created (a refused open)."""
        if not had_marker_folder:
            shutil.rmtree(self.path / MARKER_DIR, ignore_errors=True)
        self._remove_created_folders()

    def _remove_created_folders(self) -> None:
        for folder in reversed(self.created_folders):
            try:
                folder.rmdir()
            except OSError:
                break                            # not empty: keep it and its parents

    @classmethod
    def attach(cls, path: str | Path) -> RunDir:
        """The run folder ``path``, opened by another process (a job's parent): writes are
        recorded in this process's manifest; no lock is taken.

        Raises:
            DataError: ``path`` is no nrmkit run folder.
        """
        target = Path(path)
        if read_marker(target) is None:
            raise DataError(f"{target} is not an nrmkit run folder")
        open_manifest(target)
        return cls(target)

    def unlock(self) -> None:
        """Give the folder's lock back (array tasks, once the shared files are written)."""
        if self.lock is not None:
            self.lock.release()

    def close(self) -> None:
        """End the run: release the lock, stop recording writes."""
        self.unlock()
        close_manifest(self.path)

    def discard(self) -> None:
        """Remove what the run wrote (after a failure): nrmkit's files, the folders left
        empty, the marker when nothing else remains, and the folders :meth:`open` created."""
        if not self.path.is_dir():
            return
        inventory = _inventory(self.path)
        try:
            _delete_owned(inventory)
        except WriteError:
            pass                                  # e.g. a read-only folder: nothing to do
        if not any(entry.name != MARKER_DIR for entry in self.path.iterdir()):
            shutil.rmtree(self.path / MARKER_DIR, ignore_errors=True)
        self._remove_created_folders()

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
        """Save a matplotlib figure as ``figures/<stem>.png`` and ``.pdf``; close it if pyplot
        made it (figures of :mod:`nrmkit.plotting` belong to no pyplot state)."""
        paths = []
        try:
            for fmt in formats:
                buffer = io.BytesIO()
                figure.savefig(buffer, format=fmt, dpi=200 if fmt == "png" else None,
                               bbox_inches="tight")
                paths.append(self._atomic_write_bytes(f"figures/{stem}.{fmt}",
                                                      buffer.getvalue()))
        finally:
            pyplot = sys.modules.get("matplotlib.pyplot")
            if pyplot is not None:
                pyplot.close(figure)
        return paths


def read_run_record(folder: str | Path) -> dict[str, Any]:
    """``config.json`` of the run folder ``folder``, checked to be one nrmkit wrote.

    Raises:
        DataError: missing, unreadable, not JSON, or without ``workflow`` and ``options``.
    """
    path = Path(folder) / "config.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} is missing; the run folder is incomplete") from None
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else type(error).__name__
        raise DataError(f"{path} is corrupt ({reason}); it is not the record nrmkit "
                        "wrote") from None
    if (not isinstance(record, dict) or not isinstance(record.get("workflow"), str)
            or not isinstance(record.get("options"), dict)):
        raise DataError(f"{path} is not an nrmkit run record (no workflow and options)")
    return record


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
