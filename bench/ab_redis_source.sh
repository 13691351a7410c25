#!/bin/bash
# Side by side: ckpt trees migrating the benchmark's Redis store `src` into PostgreSQL (a fresh
# schema each run) or into a new SQLite file, interleaved round by round (issue #24). Per run: wall
# time, the client's CPU (user + system, its workers included), the Redis server's CPU and
# PostgreSQL's (the postmaster's waited-for children), all from /proc and /usr/bin/time.
# Build each tree once from a commit:
#   mkdir -p /tmp/ab-a/ckpt && git archive REV cli backends formats savers | tar -x -C /tmp/ab-a/ckpt \
#     && cp /tmp/ab-a/ckpt/backends/public.py /tmp/ab-a/ckpt/__init__.py
# Usage (from the repository root, the benchmark's servers up, `src` loaded: bench/README.md):
#   flock -o /tmp/ckpt-bench.lock bash bench/ab_redis_source.sh ROUNDS pg|sqlite TREE... [-- ckpt migrate flags]
# e.g. bash bench/ab_redis_source.sh 5 pg /tmp/ab-a /tmp/ab-b -- --jobs 2
# SRC, PG, PGDATA and REDIS_PID may be set (defaults: the benchmark's servers of bench/README.md).
set -euo pipefail
rounds=$1 kind=$2
shift 2
trees=()
while [[ $# -gt 0 && $1 != "--" ]]; do trees+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
src=${SRC:-redis://127.0.0.1:56429?checkpoint_prefix=src&checkpoint_write_prefix=src_write}
pg=${PG:-postgresql://postgres@127.0.0.1:55442/postgres}
postmaster=$(head -1 "${PGDATA:-/tmp/ckpt-bench/pg/data}/postmaster.pid")
redis_pid=${REDIS_PID:-$(cat /tmp/ckpt-bench/redis/redis.pid)}
python=$(pwd)/.venv/bin/python
times=$(mktemp)
file=$(mktemp -u --suffix=.db)
trap 'rm -f "$times" "$file" "$file"-wal "$file"-shm' EXIT

cpu_of() {  # CPU seconds of a process and its waited-for children
  "$python" -c "import os,sys; f=open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')',1)[1].split(); \
print(sum(int(x) for x in f[11:15]) / os.sysconf('SC_CLK_TCK'))" "$1"
}

for round in $(seq 1 "$rounds"); do
  for tree in "${trees[@]}"; do
    if [[ $kind == pg ]]; then
      schema="ab_$(basename "$tree" | tr -c 'a-z0-9\n' '_')_$round"
      psql "$pg" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" 2>/dev/null
      psql "$pg" -qc "CREATE SCHEMA $schema"
      target="$pg?schema=$schema"
    else
      rm -f "$file" "$file"-wal "$file"-shm
      target="sqlite:///$file"
    fi
    redis_before=$(cpu_of "$redis_pid") pg_before=$(cpu_of "$postmaster")
    /usr/bin/time -o "$times" -f "%e %U %S" env PYTHONPATH="$tree" "$python" -m ckpt.cli migrate "$src" \
      "$target" "$@" >/dev/null 2>/dev/null
    redis_after=$(cpu_of "$redis_pid") pg_after=$(cpu_of "$postmaster")
    read -r wall user sys <"$times"
    echo "round $round $(basename "$tree"): wall ${wall} s, client CPU $("$python" -c "print(round($user + $sys, 2))") s," \
      "Redis CPU $("$python" -c "print(round($redis_after - $redis_before, 2))") s," \
      "PostgreSQL CPU $("$python" -c "print(round($pg_after - $pg_before, 2))") s, load $(cut -d' ' -f1 /proc/loadavg)"
    [[ $kind == pg ]] && psql "$pg" -qc "DROP SCHEMA $schema CASCADE" 2>/dev/null
  done
done
