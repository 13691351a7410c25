"""Start-up cost of the ``ckpt`` console script: ``--help``, ``CMD --help``, ``--version``.

    /work/venv/bin/python bench/bench_startup.py [--repeat 15] [--old /tmp/ckpt-old] [--json]

Each round runs every variant once as a new process (stdout and stderr to /dev/null), in an
order that alternates from round to round (forward, then backward), and records its wall time
and the CPU seconds (user + system) the child used, from ``os.wait4``. Reports medians.

``--old DIR`` adds the same commands run from a frozen copy of the code, for a before/after in
one run: ``mkdir -p DIR/ckpt && git archive REV cli backends formats | tar -x -C DIR/ckpt``;
the copy is put first on ``PYTHONPATH``, so the installed console script imports it instead.
``python -c pass`` (the interpreter alone, same venv) is the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "agent.db")
COMMANDS: dict[str, list[str]] = {
    "ckpt --help": [CKPT, "--help"],
    "ckpt list --help": [CKPT, "list", "--help"],
    "ckpt --version": [CKPT, "--version"],
    "ckpt list (29-checkpoint store)": [CKPT, "list", "sqlite:///" + EXAMPLE],
}


def run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def user_env() -> dict[str, str]:
    """This environment as a user's shell has it: .pyc files written (the warm-up writes them, as
    an install does) and stdout buffered. PYTHONPATH given to this script pins the "new" code."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")}


def variants(old: str | None) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = user_env()
    found: dict[str, tuple[list[str], dict[str, str]]] = {"python -c pass": ([sys.executable, "-c", "pass"], env)}
    for name, command in COMMANDS.items():
        found[name] = (command, env)
        if old:
            found[f"{name} [old]"] = (command, {**env, "PYTHONPATH": old})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--old", help="directory holding a frozen ckpt/ package to compare against")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    chosen = variants(args.old)
    order = list(chosen)
    for command, env in chosen.values():  # warm-up: .pyc files and the page cache
        run(command, env)
    wall: dict[str, list[float]] = {k: [] for k in order}
    cpu: dict[str, list[float]] = {k: [] for k in order}
    load_before = os.getloadavg()
    for round_number in range(args.repeat):
        for name in order if round_number % 2 == 0 else reversed(order):
            seconds, cpu_seconds = run(*chosen[name])
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    result = {
        "repeat": args.repeat,
        "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "median_wall_s": {k: round(statistics.median(v), 3) for k, v in wall.items()},
        "median_cpu_s": {k: round(statistics.median(v), 3) for k, v in cpu.items()},
        "min_wall_s": {k: round(min(v), 3) for k, v in wall.items()},
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.repeat} rounds; load average before {load_before}, after {os.getloadavg()}")
    print(f"  {'variant':<42} {'wall median':>11} {'wall min':>9} {'CPU median':>11}")
    for name in order:
        print(
            f"  {name:<42} {statistics.median(wall[name]):9.3f} s {min(wall[name]):7.3f} s"
            f" {statistics.median(cpu[name]):9.3f} s"
        )


if __name__ == "__main__":
    main()
