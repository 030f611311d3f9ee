#!/usr/bin/env bash
# Builds and installs popularity_engine into the system PostgreSQL 15 with its upgrade scripts.
# `cargo pgrx install` generates the install script of the crate's version; the upgrade scripts
# popularity_engine--A--B.sql are composed from it, from the released install scripts and from
# the hand-written deltas in sql/upgrades/ (scripts/compose_upgrades.py), into the same
# extension directory. Arguments go to cargo pgrx install, e.g. --release.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

# Checked before the build, so that a missing python3 does not waste a compilation.
if ! command -v python3 >/dev/null; then
  echo "==> installing python3 (scripts/compose_upgrades.py)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 >/dev/null
fi

cargo pgrx install "$@" --pg-config "$PG_CONFIG"
python3 scripts/compose_upgrades.py "$("$PG_CONFIG" --sharedir)/extension"
