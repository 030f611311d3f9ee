#!/usr/bin/env bash
# The incremental refresh_popularity, measured many times: a 200,000-event shop (bench/generate.sql),
# then REPEAT rounds of "2,000 new events, refresh" and "nothing new, refresh", reporting the
# median and the 90th percentile of each. Meant for before/after comparisons of a change to the
# refresh: run it once per build, back to back (bench/run.sh measures each stage only once).
#
#   bash bench/refresh_repeat.sh [--no-install] [REPEAT]      (default 15 rounds)
#
# --no-install measures the extension already installed (e.g. an older build installed by hand).
set -euo pipefail
cd "$(dirname "$0")/.."

install=1
if [ "${1:-}" = --no-install ]; then install=0; shift; fi
REPEAT=${1:-15}
export PE_PORT=${BENCH_PORT:-28852}
export PE_DATA=/tmp/popularity_engine/refresh-repeat-$PE_PORT
export PE_DB=pe_refresh
PE_CONF=$(cat bench/scratch-cluster.conf)
export PE_CONF

if [ $install = 1 ]; then
  bash scripts/install-extension.sh --release > /tmp/popularity_engine-refresh-install.log 2>&1 \
    || { cat /tmp/popularity_engine-refresh-install.log; exit 1; }
fi
scripts/pgcluster.sh destroy
scripts/pgcluster.sh start
trap 'scripts/pgcluster.sh stop' EXIT
q() { PGOPTIONS="-c client_min_messages=warning" scripts/pgcluster.sh psql -d "$PE_DB" -tA "$@"; }
q -c "CREATE EXTENSION popularity_engine" -f bench/helpers.sql >/dev/null
q -v products=20000 -v users=5000 -v events=200000 -v days=90 -v seed=0.5 -f bench/generate.sql >/dev/null
q -c "CALL popularity_engine.refresh_popularity(max_rows => NULL)" -c "VACUUM ANALYZE" >/dev/null

# one refresh's duration in ms, as job_runs recorded it
last_ms() {
  q -c "SELECT round(extract(epoch FROM finished_at - started_at) * 1000, 2)
          FROM popularity_engine.job_runs WHERE job = 'refresh_popularity' ORDER BY id DESC LIMIT 1"
}
incremental=() nothing=()
for _ in $(seq "$REPEAT"); do
  q -c "CALL bench.add_events(2000, 20000, 5000)" >/dev/null
  q -c "CALL popularity_engine.refresh_popularity(max_rows => NULL)" >/dev/null
  incremental+=("$(last_ms)")
  q -c "CALL popularity_engine.refresh_popularity()" >/dev/null
  nothing+=("$(last_ms)")
done
stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {printf "median %.1f ms, p90 %.1f ms", v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)]}'; }
version=$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'popularity_engine'")
echo "popularity_engine $version, $REPEAT rounds over 200,000 events:"
echo "  2,000 new events: $(stats "${incremental[@]}")"
echo "  nothing new:      $(stats "${nothing[@]}")"
