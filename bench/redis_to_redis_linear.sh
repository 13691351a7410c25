#!/usr/bin/env bash
# Redis → Redis linearity (issue #24): `ckpt migrate` of two stores of one source Valkey into a freshly
# restarted second Valkey (empty each run: FLUSHALL and FT.DROPINDEX … DD of 500k documents are slow or
# crash it), alternating, ROUNDS rounds. Prints wall time, user CPU and peak RSS (/usr/bin/time), and the
# CPU both servers spent (from /proc, centiseconds).
#
#   flock -o /tmp/ckpt-bench.lock bash bench/redis_to_redis_linear.sh SMALL_PREFIX LARGE_PREFIX [ROUNDS]
# (-o: the restarted server must not inherit the lock, or it holds it for as long as it runs)
#
# The stores are loaded first under their prefixes, e.g. (10x the data needs ~20 GB of two servers'
# memory; 5x fits this machine):
#   ckpt migrate sqlite:///bench/data/100k.db 'redis://127.0.0.1:56429?checkpoint_prefix=src&checkpoint_write_prefix=src_write' --jobs 2
#   ckpt migrate sqlite:///bench/data/1m.db 'redis://127.0.0.1:56429?checkpoint_prefix=h500&checkpoint_write_prefix=h500_write' --shard 0/2 --jobs 2
# Servers (started by scripts/services.sh): the source on 56429 (CKPT_SERVICES_DIR=/tmp/ckpt-bench),
# the target on 56430 (CKPT_SERVICES_DIR=/tmp/ckpt-bench2). Run with PYTHONPATH set to a frozen tree.
set -euo pipefail
cd "$(dirname "$0")/.."
small=$1 large=$2 rounds=${3:-2}
source_pid=/tmp/ckpt-bench/redis/redis.pid target_pid=/tmp/ckpt-bench2/redis/redis.pid
cpu() { awk '{print $14 + $15}' "/proc/$(cat "$1")/stat"; }
restart_target() {
  kill -9 "$(cat "$target_pid" 2>/dev/null)" 2>/dev/null || true
  sleep 0.5
  rm -f "$target_pid"
  CKPT_SERVICES_DIR=/tmp/ckpt-bench2 REDIS_PORT=56430 bash scripts/services.sh start redis >/dev/null 2>&1
}
for ((round = 1; round <= rounds; round++)); do
  for prefix in "$small" "$large"; do
    restart_target
    t0=$(cpu "$target_pid") s0=$(cpu "$source_pid") load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f "%e s wall, %U s user, %M KB" -o /tmp/ckpt-linear.time .venv/bin/ckpt migrate \
      "redis://127.0.0.1:56429?checkpoint_prefix=$prefix&checkpoint_write_prefix=${prefix}_write" \
      "redis://127.0.0.1:56430?checkpoint_prefix=t&checkpoint_write_prefix=t_write" -o json >/tmp/ckpt-linear.json
    written=$(python3 -c 'import json; print(json.load(open("/tmp/ckpt-linear.json"))["checkpoints_written"])')
    echo "round $round $prefix (load $load): $(cat /tmp/ckpt-linear.time); target CPU $(($(cpu "$target_pid") - t0)) cs," \
      "source CPU $(($(cpu "$source_pid") - s0)) cs; $written checkpoints written"
  done
done
restart_target
