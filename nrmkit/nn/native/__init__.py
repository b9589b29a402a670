"""Compiled kernels, built from their C source on first use and cached.

The source ships with the package (``tanh_ons.c``); the first call of :func:`library`
compiles it with the system's C compiler (``$CC``, else ``cc``; about a second) into the
cache directory ``$NRMKIT_CACHE_DIR`` (default ``$XDG_CACHE_HOME/nrmkit`` or
``~/.cache/nrmkit``), under a name that hashes the source, the compiler and its flags, so
that a changed source or compiler builds afresh. The file is written under a temporary name
and renamed into place, so concurrent processes (array tasks of one sweep) never load a
half-written library. The kernels come in two instruction sets, AVX-512 (F and DQ) and
AVX2 with FMA, each only in functions marked for its target; the library asks the processor
which it runs (``nrm_cpu_isa``) and uses the wider, so one cached build serves the mixed
nodes of a cluster.

Where anything is missing (no compiler, another architecture, neither instruction set)
:func:`library` returns None and :func:`unavailable_reason` says why; the callers then run
the same computation through PyTorch operations. ``NRMKIT_NATIVE=0`` turns the compiled
kernels off, ``NRMKIT_NATIVE=avx2`` keeps them to AVX2.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import subprocess
import tempfile
from functools import cache
from pathlib import Path

#: environment variable: ``0`` turns the compiled kernels off, ``avx2`` keeps them to AVX2.
NATIVE_ENV = "NRMKIT_NATIVE"
#: the instruction sets of the kernels, by the number ``nrm_cpu_isa`` gives them.
INSTRUCTION_SETS = {2: "AVX-512", 1: "AVX2"}
#: environment variable of the cache directory.
CACHE_ENV = "NRMKIT_CACHE_DIR"
SOURCE = Path(__file__).with_name("tanh_ons.c")
FLAGS = ("-O3", "-std=c11", "-fPIC", "-shared", "-pthread")
LIBRARIES = ("-lm",)
#: seconds a compilation may take.
COMPILE_TIMEOUT = 120


#: values of ``NRMKIT_NATIVE`` that turn the kernels off (any case).
OFF = ("0", "off", "false", "no")


def enabled() -> bool:
    """Whether ``NRMKIT_NATIVE`` allows compiled kernels (anything but :data:`OFF`)."""
    return os.environ.get(NATIVE_ENV, "1").strip().lower() not in OFF


def instruction_set() -> int:
    """The instruction set the kernels use (a key of :data:`INSTRUCTION_SETS`), 0 where
    they are unavailable: the widest the processor runs, AVX2 with ``NRMKIT_NATIVE=avx2``."""
    if library() is None:
        return 0
    widest = _load()[3]
    return min(widest, 1) if os.environ.get(NATIVE_ENV, "").strip().lower() == "avx2" \
        else widest


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or None where they cannot be used (:func:`unavailable_reason`)."""
    if not enabled():
        return None
    return _load()[0]


def unavailable_reason() -> str | None:
    """None where :func:`library` gives the kernels; else why not, in a few words."""
    if not enabled():
        return f"turned off by {NATIVE_ENV}={os.environ[NATIVE_ENV].strip()}"
    return _load()[1]


def describe() -> str:
    """One line for a run's config: the kernels in use, or why PyTorch operations run."""
    reason = unavailable_reason()
    if reason is None:
        return f"compiled tanh_ons ({INSTRUCTION_SETS[instruction_set()]}), {_load()[2]}"
    return f"PyTorch operations ({reason})"


def compiler() -> list[str]:
    """The C compiler's command: ``$CC`` split like a shell would, else ``cc``."""
    return shlex.split(os.environ.get("CC", "").strip() or "cc")


def cache_dir() -> Path:
    """``$NRMKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/nrmkit``, else ``~/.cache/nrmkit``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "nrmkit"


@cache
def _load() -> tuple[ctypes.CDLL | None, str | None, str, int]:
    """``(library, reason it is unavailable, where it was loaded from, the widest
    instruction set the processor runs)``, once per process."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None, f"needs an x86-64 processor, not {platform.machine()}", "", 0
    command = compiler()
    key = hashlib.sha256(SOURCE.read_bytes() + repr((command, FLAGS, LIBRARIES,
                                                     _compiler_version(command))).encode())
    name = f"tanh_ons-{key.hexdigest()[:16]}.so"
    try:
        lib, where = _opened(name, command)
    except (OSError, subprocess.SubprocessError, RuntimeError) as error:
        return None, str(error).splitlines()[0] if str(error) else type(error).__name__, "", 0
    widest = lib.nrm_cpu_isa()
    if widest not in INSTRUCTION_SETS:
        return None, "the processor runs neither AVX-512F/DQ nor AVX2 with FMA", "", 0
    _declare(lib)
    return lib, None, where, widest


def _compiler_version(command: list[str]) -> str:
    try:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.splitlines()[0] if done.stdout else ""


def _opened(name: str, command: list[str]) -> tuple[ctypes.CDLL, str]:
    """``(library, where it came from)``: the cached build ``name`` where it and its
    directory are this user's own (:func:`_trusted`), compiled into the cache first if it is
    absent; otherwise compiled into a private temporary directory, removed once loaded."""
    directory = cache_dir()
    path = directory / name
    if not path.exists():
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if _trusted(directory):
                handle, partial = tempfile.mkstemp(dir=directory, prefix=".", suffix=".so")
                os.close(handle)
                try:
                    _compile(command, Path(partial))
                    os.chmod(partial, 0o755)
                    os.replace(partial, path)
                finally:
                    Path(partial).unlink(missing_ok=True)
        except OSError:
            pass  # an unwritable cache: the private build below
    if _trusted(directory) and _trusted(path):
        return ctypes.CDLL(str(path)), str(path)
    with tempfile.TemporaryDirectory(prefix="nrmkit-", ignore_cleanup_errors=True) as private:
        path = Path(private) / name
        _compile(command, path)
        return ctypes.CDLL(str(path)), "a private build for this process"


def _trusted(path: Path) -> bool:
    """Whether ``path`` exists, belongs to this user and nobody else can write it (a
    directory: no write bit for others; a file: none for the group or others either)."""
    try:
        status = path.stat()
    except OSError:
        return False
    if not hasattr(os, "getuid"):
        return True
    forbidden = 0o002 if path.is_dir() else 0o022
    return status.st_uid == os.getuid() and not status.st_mode & forbidden


def _compile(command: list[str], output: Path) -> None:
    done = subprocess.run([*command, *FLAGS, "-o", str(output), str(SOURCE), *LIBRARIES],
                          capture_output=True, text=True, timeout=COMPILE_TIMEOUT,
                          check=False)
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise RuntimeError(f"compiling {SOURCE.name} failed: {detail}")


def _declare(lib: ctypes.CDLL) -> None:
    pointer, integer = ctypes.c_void_p, ctypes.c_int
    lib.nrm_pack.argtypes = [pointer, integer, integer, pointer]
    lib.nrm_pack.restype = None
    lib.nrm_packed_size.argtypes = [integer, integer]
    lib.nrm_packed_size.restype = ctypes.c_int64
    lib.nrm_tanh.argtypes = [pointer, pointer, ctypes.c_int64, integer]
    lib.nrm_tanh.restype = integer
    lib.nrm_tanh_run.argtypes = [pointer, integer, integer, pointer, ctypes.c_float, pointer,
                                 pointer, integer, integer, pointer, integer, integer]
    lib.nrm_tanh_run.restype = integer
