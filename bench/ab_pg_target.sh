#!/bin/bash
# A/B of two ckpt trees migrating one source into PostgreSQL (issue #24), alternating, a fresh
# schema each run (dropped after): wall time, the client's user CPU, and PostgreSQL's CPU (the
# postmaster's children, from /proc). Build each tree once from a commit:
#   mkdir -p /tmp/ab-a/ckpt && git archive REV cli backends formats savers | tar -x -C /tmp/ab-a/ckpt \
#     && cp /tmp/ab-a/ckpt/backends/public.py /tmp/ab-a/ckpt/__init__.py
# Usage (from the repository root, the benchmark's PostgreSQL up):
#   flock -o /tmp/ckpt-bench.lock bash bench/ab_pg_target.sh SOURCE_URL ROUNDS /tmp/ab-a /tmp/ab-b [ckpt migrate flags]
# PG (default postgresql://postgres@127.0.0.1:55442/postgres) and PGDATA (default
# /tmp/ckpt-bench/pg/data, for the postmaster's pid) may be set.
set -euo pipefail
src=$1 rounds=$2 tree_a=$3 tree_b=$4
shift 4
pg=${PG:-postgresql://postgres@127.0.0.1:55442/postgres}
postmaster=$(head -1 "${PGDATA:-/tmp/ckpt-bench/pg/data}/postmaster.pid")
python=$(pwd)/.venv/bin/python
times=$(mktemp)
trap 'rm -f "$times"' EXIT

cpu_of() {  # CPU seconds of a process and its waited-for children
  "$python" -c "import os,sys; f=open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')',1)[1].split(); \
print(sum(int(x) for x in f[11:15]) / os.sysconf('SC_CLK_TCK'))" "$1"
}

for round in $(seq 1 "$rounds"); do
  for tree in "$tree_a" "$tree_b"; do
    schema="ab_$(basename "$tree" | tr -c 'a-z0-9\n' '_')_$round"
    psql "$pg" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" 2>/dev/null
    psql "$pg" -qc "CREATE SCHEMA $schema"
    before=$(cpu_of "$postmaster")
    /usr/bin/time -o "$times" -f "%e %U" env PYTHONPATH="$tree" "$python" -m ckpt.cli migrate "$src" \
      "$pg?schema=$schema" "$@" >/dev/null 2>/dev/null
    after=$(cpu_of "$postmaster")
    read -r wall user <"$times"
    echo "round $round $(basename "$tree"): wall ${wall} s, user ${user} s," \
      "PostgreSQL CPU $("$python" -c "print(round($after - $before, 2))") s, load $(cut -d' ' -f1 /proc/loadavg)"
    psql "$pg" -qc "DROP SCHEMA $schema CASCADE" 2>/dev/null
  done
done
