"""The cores and memory this process may use: the machine's, or its container's when less.

In a Kubernetes pod ``os.cpu_count()`` and ``/proc/meminfo`` describe the node, not the pod: a
pod limited to 2 CPUs and 1 GiB on a 64-core node would start 64 workers and be OOM-killed. The
pod's limits are in its cgroup (v2: ``cpu.max``, ``memory.max``; v1: ``cpu.cfs_quota_us``,
``memory.limit_in_bytes``), read here and taken when lower.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def usable_cores(cgroup: Path = CGROUP) -> int:
    """CPUs this process may run on: affinity, then the cgroup's CPU quota (rounded up)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cpu_quota(cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota is not None else max(1, cores)


def available_memory(cgroup: Path = CGROUP, meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes available without swapping: ``MemAvailable``, or what the cgroup's limit leaves when less."""
    free = _mem_available(meminfo)
    left = _cgroup_memory_left(cgroup)
    known = [n for n in (free, left) if n is not None]
    return min(known) if known else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cpu_quota(cgroup: Path) -> float | None:
    text = _read(cgroup / "cpu.max")  # v2: "<quota> <period>" or "max <period>"
    if text is not None:
        quota, _, period = text.partition(" ")
        if quota != "max" and quota.isdigit() and period.isdigit() and int(period) > 0:
            return int(quota) / int(period)
        return None
    quota_text, period_text = _read(cgroup / "cpu" / "cpu.cfs_quota_us"), _read(cgroup / "cpu" / "cpu.cfs_period_us")
    try:
        quota_v1, period_v1 = int(quota_text or ""), int(period_text or "")
    except ValueError:
        return None
    return quota_v1 / period_v1 if quota_v1 > 0 and period_v1 > 0 else None


def _cgroup_memory_left(cgroup: Path) -> int | None:
    limit_text, used_text = _read(cgroup / "memory.max"), _read(cgroup / "memory.current")
    if limit_text is None:  # v1
        limit_text, used_text = (
            _read(cgroup / "memory" / "memory.limit_in_bytes"),
            _read(cgroup / "memory" / "memory.usage_in_bytes"),
        )
    if limit_text is None or not limit_text.isdigit():
        return None  # "max", or no cgroup
    limit = int(limit_text)
    if limit >= 1 << 60:  # v1 writes "no limit" as a huge number
        return None
    used = int(used_text) if used_text is not None and used_text.isdigit() else 0
    return max(0, limit - used)


def _mem_available(meminfo: Path) -> int | None:
    text = _read(meminfo)
    for line in (text or "").splitlines():
        if line.startswith("MemAvailable:"):
            try:
                return int(line.split()[1]) * 1024
            except (ValueError, IndexError):
                return None
    return None
