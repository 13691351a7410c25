"""Cores and memory from a container's cgroup limits (a Kubernetes pod), not the node's."""

from __future__ import annotations

from pathlib import Path

from ckpt.backends.core.resources import available_memory, usable_cores

GIB = 1 << 30


def _meminfo(tmp_path: Path, available_kib: int) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       99999999 kB\nMemAvailable:   {available_kib} kB\n")
    return path


def test_cgroup_v2_limits_win_when_lower(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    (cgroup / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: two workers may share them
    (cgroup / "memory.max").write_text(f"{GIB}\n")
    (cgroup / "memory.current").write_text(f"{GIB // 4}\n")
    assert usable_cores(cgroup) == min(2, usable_cores(tmp_path / "none"))
    assert available_memory(cgroup, _meminfo(tmp_path, 64 * 1024 * 1024)) == GIB - GIB // 4
    assert available_memory(cgroup, _meminfo(tmp_path, 1024)) == 1024 * 1024  # the node has less


def test_unlimited_or_absent_cgroups_leave_the_machine_figures(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    (cgroup / "cpu.max").write_text("max 100000\n")
    (cgroup / "memory.max").write_text("max\n")
    assert usable_cores(cgroup) == usable_cores(tmp_path / "none") >= 1
    assert available_memory(cgroup, _meminfo(tmp_path, 2048)) == 2048 * 1024
    assert available_memory(tmp_path / "none", tmp_path / "no-meminfo") is None


def test_cgroup_v1_limits(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg"
    (cgroup / "cpu").mkdir(parents=True)
    (cgroup / "memory").mkdir()
    (cgroup / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (cgroup / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (cgroup / "memory" / "memory.limit_in_bytes").write_text(f"{2 * GIB}\n")
    (cgroup / "memory" / "memory.usage_in_bytes").write_text("0\n")
    assert usable_cores(cgroup) == 1
    assert available_memory(cgroup, _meminfo(tmp_path, 64 * 1024 * 1024)) == 2 * GIB
    (cgroup / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert usable_cores(cgroup) == usable_cores(tmp_path / "none")
