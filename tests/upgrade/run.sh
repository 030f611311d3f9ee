#!/usr/bin/env bash
# ALTER EXTENSION popularity_engine UPDATE from every earlier release, checked two ways:
#   1. the updated schema equals a fresh install of the crate's version, object by object
#      (describe_schema.sql: definitions, privileges, comments, indexes, triggers, enums);
#   2. data written before the update is still aggregated exactly once after it.
# First, without a database, scripts/compose_upgrades.py --self-test checks how the upgrade
# scripts are composed. Runs against the cluster scripts/test.sh started (PE_PORT), with the
# current build installed by scripts/install-extension.sh (which also installs the composed
# upgrade scripts); prints "upgrade: N checks passed".
#
# tests/upgrade/releases/popularity_engine--X.sql.gz is the install script of release X as
# `cargo pgrx install` generated it, gzipped. A copy is kept because rebuilding it would need
# X's source tree, its toolchain (Rust, pgrx) and several minutes of compilation, for every
# release, in every test run; gzipped it is about a fifth of its size. The upgrade scripts
# take their routines from it too (scripts/compose_upgrades.py). Each is unzipped into the
# extension directory only while this test runs.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/../.."

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
EXT_DIR=$($PG_CONFIG --sharedir)/extension
OUT=target/upgrade
mkdir -p "$OUT"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

q() { local db=$1; shift; PGOPTIONS="-c client_min_messages=warning" scripts/pgcluster.sh psql -d "$db" -tA "$@"; }
fresh_db() { q postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null; }
fail() { echo "upgrade: FAILED: $*" >&2; exit 1; }

# The old install scripts are put into the extension directory for the test and taken out after;
# a file already there (left by installing an unreleased build under that version) is set
# aside and put back, so that the update starts from what was really released.
installed=()
cleanup() {
  for f in "${installed[@]}"; do
    if [ -f "$OUT/saved/$(basename "$f")" ]; then mv "$OUT/saved/$(basename "$f")" "$f"; else rm -f "$f"; fi
  done
}
trap cleanup EXIT

python3 scripts/compose_upgrades.py --self-test || fail "scripts/compose_upgrades.py --self-test"
# The installed upgrade scripts must be those composed from the current sql/upgrades/.
rm -rf "$OUT/composed" "$OUT/saved" && mkdir -p "$OUT/composed" "$OUT/saved"
python3 scripts/compose_upgrades.py "$EXT_DIR" --out "$OUT/composed" >/dev/null
for f in "$OUT"/composed/*.sql; do
  cmp -s "$f" "$EXT_DIR/$(basename "$f")" \
    || fail "$EXT_DIR/$(basename "$f") is missing or stale: install with scripts/install-extension.sh"
done

# The same activity in every database: interactions of several types, searches, refreshes.
activity() {
  q "$1" >/dev/null <<'SQL'
SELECT popularity_engine.track(1 + g % 7, 1 + g % 13,
         (ARRAY['view', 'click', 'add_to_cart', 'order', 'wishlist_add', 'search_click'])[1 + g % 6]::popularity_engine.interaction_type)
  FROM generate_series(1, 300) g;
SELECT popularity_engine.track_search(1 + g % 7, 'query ' || g % 5, ARRAY[1 + g % 13, 2 + g % 11]::bigint[])
  FROM generate_series(1, 40) g;
CALL popularity_engine.refresh_popularity();
CALL popularity_engine.refresh_user_preferences();
SQL
}

# Every counter equals a recount of the log, and nothing is left unaggregated.
check_exact() {
  local mismatches
  mismatches=$(q "$1" <<'SQL'
SELECT count(*) FROM (
  SELECT w.counter, count(*) AS logged
    FROM popularity_engine.product_interactions i
    JOIN popularity_engine.interaction_weights w USING (interaction_type)
   WHERE i.product_id IS NOT NULL AND w.counter IS NOT NULL
     AND NOT (i.interaction_type = 'wishlist' AND i.event_value <> 1)
   GROUP BY 1) l
  JOIN (SELECT sum(view_count) AS view_count, sum(click_count) AS click_count,
               sum(cart_add_count) AS cart_add_count, sum(order_count) AS order_count,
               sum(wishlist_count) AS wishlist_count, sum(search_click_count) AS search_click_count,
               sum(review_count) AS review_count
          FROM popularity_engine.product_popularity) p ON true
 WHERE l.logged IS DISTINCT FROM (to_jsonb(p) ->> l.counter)::bigint
UNION ALL
SELECT pending_interactions + pending_searches FROM popularity_engine.aggregation_lag()
SQL
)
  [ "$(echo "$mismatches" | awk '{s += $1} END {print s + 0}')" = 0 ] || fail "$1: counters differ from the log or rows are pending ($mismatches)"
}

checks=0
fresh_db pe_upgrade_fresh
q pe_upgrade_fresh -c "CREATE EXTENSION popularity_engine" >/dev/null
q pe_upgrade_fresh -f tests/upgrade/describe_schema.sql > "$OUT/fresh-$version.txt"
[ -s "$OUT/fresh-$version.txt" ] || fail "the schema description of a fresh install is empty"

for frozen in tests/upgrade/releases/popularity_engine--*.sql.gz; do
  old=$(basename "$frozen" .sql.gz); old=${old#popularity_engine--}
  [ "$old" != "$version" ] || continue
  db=pe_upgrade_${old//./_}
  echo "upgrade: $old -> $version"
  target="$EXT_DIR/popularity_engine--$old.sql"
  if [ -f "$target" ]; then cp -p "$target" "$OUT/saved/"; fi
  installed+=("$target")
  gzip -dc "$frozen" > "$target"
  fresh_db "$db"
  q "$db" -c "CREATE EXTENSION popularity_engine VERSION '$old'" >/dev/null
  activity "$db"
  q "$db" -c "SELECT popularity_engine.track(3, 5, 'view')" >/dev/null   # left pending across the update
  q "$db" -c "ALTER EXTENSION popularity_engine UPDATE" >/dev/null
  [ "$(q "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'popularity_engine'")" = "$version" ] \
    || fail "$db is not at $version after ALTER EXTENSION UPDATE"

  q "$db" -f tests/upgrade/describe_schema.sql > "$OUT/updated-$old.txt"
  if ! diff -u "$OUT/fresh-$version.txt" "$OUT/updated-$old.txt" > "$OUT/$old.diff"; then
    head -c 6000 "$OUT/$old.diff"
    fail "$old updated to $version differs from a fresh $version install (full diff: $OUT/$old.diff)"
  fi
  checks=$((checks + 1))

  # the stored states keep their meaning across the update: the first refreshes have no reason
  # to rebuild (the weights' signatures changed form in 0.3.0)
  q "$db" -c "CALL popularity_engine.refresh_popularity()" -c "CALL popularity_engine.refresh_user_preferences()" >/dev/null
  note=$(q "$db" -c "SELECT message FROM popularity_engine.job_runs WHERE job = 'refresh_popularity' ORDER BY id DESC LIMIT 1")
  [[ "$note" == *"trending updated incrementally"* ]] || fail "$db: the first refresh after the update rebuilt trending: $note"
  note=$(q "$db" -c "SELECT message FROM popularity_engine.job_runs WHERE job = 'refresh_user_preferences' ORDER BY id DESC LIMIT 1")
  [[ "$note" != *"rebuilt"* ]] || fail "$db: the first preference refresh after the update rebuilt: $note"
  checks=$((checks + 1))

  activity "$db"
  check_exact "$db"
  checks=$((checks + 1))
done
activity pe_upgrade_fresh
check_exact pe_upgrade_fresh
checks=$((checks + 1))
echo "upgrade: $checks checks passed"
