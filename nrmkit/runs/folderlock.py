"""An exclusive, advisory lock on a run folder, released on any exit of its holder.

The lock is ``fcntl.flock`` on ``<folder>/.nrmkit/lock``: the kernel releases it when the
holding process ends, however it ends (``kill -9`` included), so a lock left by a dead process
is never in the way. The holder writes who it is into the file (host, pid, role, workflow,
start time) so that a refused process can name it.

Some file systems (certain NFS, Lustre or FUSE mounts) and platforms without ``fcntl`` do not
support ``flock``; there the lock is a file created with ``O_EXCL`` (``lock.pid``) holding the
same record. A process that finds one checks whether its holder still runs — same host, pid
alive, same start time — and removes a stale one; a holder on another host cannot be checked,
and the message says which file to delete if that run is known to be dead.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ModuleNotFoundError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

#: errno values of a file system that does not support ``flock``.
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
#: seconds between two attempts while waiting for a briefly held lock.
_POLL_SECONDS = 0.2


class LockHeld(Exception):
    """The lock is held by another process.

    Attributes:
        holder: the record the holder wrote (``host``, ``pid``, ``role``, ``workflow``,
            ``since``), empty if it could not be read.
        path: the lock file.
    """

    def __init__(self, holder: dict[str, Any], path: Path):
        self.holder = holder
        self.path = path
        super().__init__(describe_holder(holder))


def describe_holder(holder: dict[str, Any]) -> str:
    """``"an nrmkit run (train_rd_model, pid 4242 on node17, since 2026-12-01T10:00:00)"``."""
    if not holder:
        return "another nrmkit process"
    role = holder.get("role", "run")
    what = {"run": "an nrmkit run", "array task": "an nrmkit array task",
            "collect": "nrmkit collect"}.get(role, f"an nrmkit {role}")
    details = [str(holder["workflow"])] if holder.get("workflow") else []
    details.append(f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}")
    if holder.get("since"):
        details.append(f"since {holder['since']}")
    return f"{what} ({', '.join(details)})"


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), to tell a live holder
    from a new process that reuses its pid; None where ``/proc`` does not tell."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = text[text.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the holder of a ``lock.pid`` file still runs (True when it cannot be told)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        pid = int(holder["pid"])
        os.kill(pid, 0)
    except (KeyError, TypeError, ValueError):
        return False                       # an unreadable record: nobody can be holding it
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                               # alive, owned by another user
    start = holder.get("start")
    return start is None or _process_start(pid) in (None, start)


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


class FolderLock:
    """The lock of one run folder (see the module docstring).

    Args:
        folder: the run folder; the lock lives in ``folder/.nrmkit/``, which must exist.
        role: ``"run"``, ``"array task"`` or ``"collect"`` (written for the messages).
        workflow: the workflow name (written for the messages).
    """

    def __init__(self, folder: str | Path, *, role: str = "run", workflow: str | None = None):
        self.directory = Path(folder) / ".nrmkit"
        self.role = role
        self.workflow = workflow
        self._descriptor: int | None = None
        self._pid_file: Path | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None or self._pid_file is not None

    def record(self) -> dict[str, Any]:
        pid = os.getpid()
        return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid),
                "role": self.role, "workflow": self.workflow,
                "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}

    def acquire(self, *, wait_for: tuple[str, ...] = (), timeout: float = 0.0) -> None:
        """Take the lock, or raise :class:`LockHeld` naming its holder.

        A holder whose role is in ``wait_for`` holds the lock only briefly (array tasks and
        ``collect`` writing their shared files): then retry for up to ``timeout`` seconds.
        Raises ``OSError`` when the lock file cannot be created at all.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._try_acquire()
                return
            except LockHeld as held:
                if (held.holder.get("role") not in wait_for
                        or time.monotonic() >= deadline):
                    raise
            time.sleep(_POLL_SECONDS)

    def _try_acquire(self) -> None:
        if fcntl is not None:
            path = self.directory / "lock"
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                raise LockHeld(_read_record(path), path) from None
            except OSError as error:
                os.close(descriptor)
                if error.errno not in _NO_FLOCK:
                    raise
            else:
                os.ftruncate(descriptor, 0)
                os.write(descriptor, json.dumps(self.record()).encode())
                self._descriptor = descriptor
                return
        self._acquire_pid_file()

    def _acquire_pid_file(self) -> None:
        path = self.directory / "lock.pid"
        for _ in range(2):                      # a second attempt after removing a stale file
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                holder = _read_record(path)
                if _alive(holder):
                    raise LockHeld(holder, path) from None
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(self.record(), handle)
            self._pid_file = path
            return
        raise LockHeld(_read_record(path), path)

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        if self._descriptor is not None:
            descriptor, self._descriptor = self._descriptor, None
            os.close(descriptor)               # closing the descriptor releases the flock
        if self._pid_file is not None:
            path, self._pid_file = self._pid_file, None
            if _read_record(path).get("pid") == os.getpid():
                path.unlink(missing_ok=True)
