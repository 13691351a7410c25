"""Peak RSS and wall time of ``ckpt export`` as the store grows (is memory flat?).

    /work/venv/bin/python bench/bench_export_memory.py bench/data/100k.db bench/data/1m.db \
        [--repeat 3] [--out-dir /tmp] [--json]

For every store and both targets (``.jsonl.gz`` and plain ``.jsonl``) it runs
``ckpt export sqlite:///STORE OUT`` as a subprocess ``--repeat`` times and reads that
child's own peak RSS from ``os.wait4`` (``ru_maxrss``, per child, not cumulative). The
output file is deleted after each run. Reports medians and the RSS ratio of the largest
store to the smallest (flat = ~1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")


def run_once(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process; raises if it fails."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {err.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out-dir", default="/tmp")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    baseline = run_once([CKPT, "--version"])[1]
    results: list[dict[str, object]] = []
    for store in args.stores:
        url = "sqlite:///" + os.path.abspath(store)
        for suffix in (".jsonl.gz", ".jsonl"):
            out = os.path.join(args.out_dir, f"ckpt-bench-export{suffix}")
            walls: list[float] = []
            rss: list[float] = []
            size = 0
            for _ in range(args.repeat):
                wall, peak = run_once([CKPT, "export", url, out])
                size = os.path.getsize(out)
                os.remove(out)
                walls.append(wall)
                rss.append(peak)
            row = {
                "store": store,
                "store_mib": round(os.path.getsize(store) / 2**20),
                "target": suffix,
                "output_mib": round(size / 2**20),
                "median_wall_s": round(statistics.median(walls), 1),
                "median_peak_rss_mib": round(statistics.median(rss), 1),
                "runs_wall_s": [round(w, 1) for w in walls],
                "runs_peak_rss_mib": [round(r, 1) for r in rss],
            }
            results.append(row)
            if not args.json:
                print(
                    f"{store} -> {suffix:<9} wall {row['median_wall_s']:>7} s  "
                    f"peak RSS {row['median_peak_rss_mib']:>6} MiB"
                    f"  (runs: {row['runs_peak_rss_mib']} MiB, output {row['output_mib']} MiB)",
                    flush=True,
                )
    ratios = {}
    for suffix in (".jsonl.gz", ".jsonl"):
        peaks = [float(r["median_peak_rss_mib"]) for r in results if r["target"] == suffix]  # type: ignore[arg-type]
        ratios[suffix] = round(peaks[-1] / peaks[0], 2)
    if args.json:
        print(json.dumps({"baseline_rss_mib": baseline, "results": results, "rss_ratio_last_over_first": ratios}))
    else:
        print(f"baseline (ckpt --version) peak RSS {baseline:.1f} MiB; peak RSS last/first store: {ratios}")


if __name__ == "__main__":
    main()
