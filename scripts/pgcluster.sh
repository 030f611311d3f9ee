#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster with pg_cron preloaded, owned by the `postgres` OS user and
# listening on 127.0.0.1 only. Used by the demo, the tests and the benchmarks.
#
#   scripts/pgcluster.sh start|stop|restart|destroy|status|psql [args]
#
# Environment: PE_PORT (default 28815), PE_DATA (default /tmp/popularity_engine/cluster-$PE_PORT),
# PE_DB (the database pg_cron runs in, default popularity_demo), PE_CONF (extra postgresql.conf lines).
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
PORT=${PE_PORT:-28815}
DATA=${PE_DATA:-/tmp/popularity_engine/cluster-$PORT}
DB=${PE_DB:-popularity_demo}

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi
}

psql_cmd() {
  as_postgres env PGOPTIONS="${PGOPTIONS:-}" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"
}

running() {
  [ -f "$DATA/postmaster.pid" ] && as_postgres "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
  mkdir -p "$(dirname "$DATA")"
  chmod 1777 "$(dirname "$DATA")" 2>/dev/null || true
  as_postgres mkdir -p "$DATA"
  as_postgres "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_postgres tee -a "$DATA/postgresql.conf" >/dev/null <<CONF
# popularity_engine throwaway cluster
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DATA'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$DB'
cron.use_background_workers = on
max_connections = 200
max_prepared_transactions = 10
fsync = ${PE_FSYNC:-on}
log_min_messages = warning
${PE_CONF:-}
CONF
}

case "${1:-}" in
  start)
    [ -f "$DATA/PG_VERSION" ] || init_cluster
    if ! running; then
      as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null
    fi
    if ! psql_cmd -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
      psql_cmd -d postgres -c "CREATE DATABASE $DB"
    fi
    ;;
  stop)
    if running; then as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi
    ;;
  restart)
    "$0" stop
    "$0" start
    ;;
  destroy)
    "$0" stop
    rm -rf "$DATA"
    ;;
  status)
    running && echo "running on 127.0.0.1:$PORT, data in $DATA" || echo "not running"
    ;;
  psql)
    shift
    psql_cmd "$@"
    ;;
  *)
    echo "usage: $0 start|stop|restart|destroy|status|psql [args]" >&2
    exit 2
    ;;
esac
