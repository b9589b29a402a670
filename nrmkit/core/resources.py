"""Memory available to a run, and the check of a workflow's estimate against it.

A run whose estimated peak (:meth:`nrmkit.core.base.Workflow.memory_terms`) exceeds the
memory it may use is refused before anything is allocated, naming the option of the largest
allocation; ``--memory-limit GIB`` replaces the detected amount (a larger value overrides the
check, e.g. where swap is wanted; ``inf`` turns it off).

Detected amount: on the CPU, the smallest of ``MemAvailable`` (``/proc/meminfo``; the
physical memory where that is unknown) and the control-group limit of this process minus its
usage (what SLURM's ``--mem`` sets: a node's free memory says nothing about a job's share);
on CUDA, the free memory of the device.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from nrmkit.core.errors import ConfigError

GIB = 1024.0**3
#: cgroup files: (limit, usage) for cgroup v2 and v1.
_CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                  "/sys/fs/cgroup/memory/memory.usage_in_bytes"))
#: a cgroup v1 "limit" this large means none.
_NO_CGROUP_LIMIT = 2**60


def format_bytes(nbytes: float) -> str:
    """``"3.7 GiB"``, ``"512.0 MiB"``, ``"2.0 TiB"``, ``"12 KiB"``, ``"0 bytes"``."""
    for unit, size in (("TiB", 1024.0**4), ("GiB", GIB), ("MiB", 1024.0**2)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    if nbytes >= 1024.0:
        return f"{nbytes / 1024.0:.0f} KiB"
    return f"{nbytes:.0f} byte" + ("" if round(nbytes) == 1 else "s")


def _meminfo_available() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024.0
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_available() -> float | None:
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text == "max" or not text.isdigit() or int(text) >= _NO_CGROUP_LIMIT:
            return None
        try:
            usage = float(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            usage = 0.0
        return max(float(text) - usage, 0.0)
    return None


def available_memory(device: str = "cpu") -> float | None:
    """Bytes a new allocation on ``device`` may take now (None when it cannot be told)."""
    if str(device).startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info()
        return float(free)
    amounts = [amount for amount in (_meminfo_available(), _cgroup_available())
               if amount is not None]
    return min(amounts) if amounts else None


def check_memory(terms: Iterable, *, limit_gib: float | None, device: str = "cpu") -> float:
    """Refuse a run whose terms add up to more than the limit; return the estimate [bytes].

    Args:
        terms: :class:`~nrmkit.core.base.MemoryTerm` of the run.
        limit_gib: ``--memory-limit`` in GiB; None = :func:`available_memory`.

    Raises:
        ConfigError: naming the option of the largest term, the estimate and the limit.
    """
    terms = [term for term in terms if term.nbytes > 0]
    total = float(sum(term.nbytes for term in terms))
    if not terms:
        return total
    limit = limit_gib * GIB if limit_gib is not None else available_memory(device)
    if limit is None or total <= limit:
        return total
    largest = max(terms, key=lambda term: term.nbytes)
    source = "--memory-limit" if limit_gib is not None else f"available on {device}"
    raise ConfigError(largest.option, f"the run needs about {format_bytes(total)} of memory "
                      f"({largest.what}: {format_bytes(largest.nbytes)}), more than the "
                      f"{format_bytes(limit)} {source}; a larger --memory-limit GIB overrides "
                      "this check")
