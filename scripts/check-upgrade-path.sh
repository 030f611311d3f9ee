#!/usr/bin/env bash
# Fails when the crate's version cannot be reached by ALTER EXTENSION ... UPDATE from every
# released version: sql/RELEASED lists the released versions in order, and each step between
# them, and from the last one to the crate's version, needs sql/popularity_engine--A--B.sql.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
mapfile -t released < <(grep -v '^\s*$' sql/RELEASED)
[ ${#released[@]} -gt 0 ] || { echo "upgrade path: sql/RELEASED lists no version" >&2; exit 1; }

chain=("${released[@]}")
[ "${released[-1]}" = "$version" ] || chain+=("$version")
missing=0
for ((i = 1; i < ${#chain[@]}; i++)); do
  script="sql/popularity_engine--${chain[i-1]}--${chain[i]}.sql"
  if [ ! -f "$script" ]; then
    echo "upgrade path: missing $script (ALTER EXTENSION popularity_engine UPDATE from ${chain[i-1]} to ${chain[i]})" >&2
    missing=1
  fi
done
# tests/upgrade/run.sh updates from each release's own install script: keep them all.
for v in "${released[@]}"; do
  if [ ! -f "tests/upgrade/popularity_engine--$v.sql" ]; then
    echo "upgrade path: missing tests/upgrade/popularity_engine--$v.sql (the install script of release $v)" >&2
    missing=1
  fi
done
[ $missing -eq 0 ] || exit 1
echo "upgrade path: ok (${chain[*]})"
