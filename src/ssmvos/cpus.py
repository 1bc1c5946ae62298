"""How many CPUs this process may use (its affinity mask, not the machine's count)."""
from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where there is none), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1
