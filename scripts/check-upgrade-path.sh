#!/usr/bin/env bash
# Fails when the crate's version cannot be reached by ALTER EXTENSION ... UPDATE from every
# released version: sql/RELEASED lists the released versions in order, and each step between
# them, and from the last one to the crate's version, needs its hand-written DDL delta
# sql/upgrades/A--B.sql (scripts/compose_upgrades.py adds the routines). Every release needs its
# install script, tests/upgrade/releases/popularity_engine--X.sql.gz.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
mapfile -t released < <(grep -v '^\s*$' sql/RELEASED)
[ ${#released[@]} -gt 0 ] || { echo "upgrade path: sql/RELEASED lists no version" >&2; exit 1; }

chain=("${released[@]}")
[ "${released[-1]}" = "$version" ] || chain+=("$version")
missing=0
for ((i = 1; i < ${#chain[@]}; i++)); do
  delta="sql/upgrades/${chain[i-1]}--${chain[i]}.sql"
  if [ ! -f "$delta" ]; then
    echo "upgrade path: missing $delta (the DDL of ALTER EXTENSION popularity_engine UPDATE from" \
         "${chain[i-1]} to ${chain[i]}; at least a header comment and a '-- @routines' line)" >&2
    missing=1
  fi
done
# The upgrade scripts take their routines from, and tests/upgrade/run.sh updates from, each
# release's own install script: keep them all.
for v in "${released[@]}"; do
  frozen="tests/upgrade/releases/popularity_engine--$v.sql.gz"
  if [ ! -f "$frozen" ]; then
    echo "upgrade path: missing $frozen (the install script of release $v:" \
         "gzip -9n < \$(pg_config --sharedir)/extension/popularity_engine--$v.sql > $frozen)" >&2
    missing=1
  fi
done
[ $missing -eq 0 ] || exit 1
echo "upgrade path: ok (${chain[*]})"
