#!/usr/bin/env bash
# Runs every test layer of popularity_engine:
#   0. the lint gate: rustfmt, clippy (warnings are errors), shellcheck, size limits (check_sizes.py)
#   1. Rust unit tests and #[pg_test] tests (cargo pgrx test, in a pgrx-managed cluster)
#   2. pg_regress files under tests/pg_regress against a live cluster, then scripts/check-docs.sh
#   3. isolation specs under tests/isolation (Debian's pg_isolation_regress)
#   4. ALTER EXTENSION UPDATE from every earlier release (tests/upgrade/run.sh)
#   5. the pgrx-test/ integration tests over libpq (concurrency, soak, pg_cron)
# Usage: scripts/test.sh [lint|unit|regress|isolation|upgrade|integration]...   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGXS=$($PG_CONFIG --pkglibdir)/pgxs
WORK=/tmp/popularity_engine
mkdir -p target
export PE_PORT=${PE_TEST_PORT:-28816}
export PE_DATA=$WORK/test-cluster-$PE_PORT
export PE_DB=pe_test
export PE_CONF="max_locks_per_transaction = 256"

layers=("$@")
[ ${#layers[@]} -gt 0 ] || layers=(lint unit regress isolation upgrade integration)
wants() { [[ " ${layers[*]} " == *" $1 "* ]]; }

LOG=target/test.log
: > "$LOG"
# Runs a test command, keeping its output in $LOG for the closing summary.
logged() { "$@" 2>&1 | tee -a "$LOG"; }

bash scripts/install-deps.sh
mkdir -p "$WORK" && chmod 1777 "$WORK"

if wants lint; then
  echo "==> lint: cargo fmt --check, cargo clippy -D warnings, shellcheck, size limits"
  cargo fmt --all --check
  cargo clippy --all-targets -- -D warnings
  shellcheck scripts/*.sh bench/*.sh tests/upgrade/*.sh .ci/run
  python3 scripts/check_sizes.py
  echo "lint: 4 checks passed" | tee -a "$LOG"
fi

if wants unit; then
  echo "==> upgrade path"
  bash scripts/check-upgrade-path.sh
  echo "==> unit tests: cargo pgrx test"
  rm -rf "$WORK/pgrx-test-data"
  logged cargo pgrx test pg15 --runas postgres --pgdata "$WORK/pgrx-test-data"
fi

if wants regress || wants isolation || wants upgrade || wants integration; then
  echo "==> installing the extension into PostgreSQL 15"
  bash scripts/install-extension.sh >target/test-install.log 2>&1 \
    || { cat target/test-install.log; exit 1; }
  scripts/pgcluster.sh destroy
  scripts/pgcluster.sh start
  trap 'scripts/pgcluster.sh stop' EXIT
fi

fresh_db() {
  PGOPTIONS="-c client_min_messages=warning" scripts/pgcluster.sh psql -d postgres \
    -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
}

if wants regress; then
  echo "==> pg_regress: tests/pg_regress"
  fresh_db pe_regress
  mkdir -p target/pg_regress && chmod 777 target/pg_regress
  mapfile -t tests < <(cd tests/pg_regress/sql && printf '%s\n' ./*.sql | sed 's|^\./||; s/\.sql$//' | sort)
  if ! logged "$PGXS/src/test/regress/pg_regress" --use-existing --host=127.0.0.1 --port="$PE_PORT" \
      --user=postgres --dbname=pe_regress --inputdir=tests/pg_regress \
      --outputdir=target/pg_regress "${tests[@]}"; then
    head -200 target/pg_regress/regression.diffs 2>/dev/null
    exit 1
  fi
  echo "==> the SQL reference in docs/ against the installed extension"
  logged bash scripts/check-docs.sh pe_regress
fi

if wants isolation; then
  echo "==> isolation: tests/isolation"
  fresh_db pe_isolation
  mkdir -p target/isolation && chmod 777 target/isolation
  mapfile -t specs < <(cd tests/isolation/specs && printf '%s\n' ./*.spec | sed 's|^\./||; s/\.spec$//' | sort)
  if ! logged "$PGXS/src/test/isolation/pg_isolation_regress" --use-existing --host=127.0.0.1 \
      --port="$PE_PORT" --user=postgres --dbname=pe_isolation --inputdir=tests/isolation \
      --outputdir=target/isolation "${specs[@]}"; then
    head -200 target/isolation/regression.diffs 2>/dev/null
    exit 1
  fi
fi

if wants upgrade; then
  echo "==> upgrade: tests/upgrade"
  logged bash tests/upgrade/run.sh
fi

if wants integration; then
  echo "==> integration: pgrx-test over libpq"
  PE_TEST_URL="host=127.0.0.1 port=$PE_PORT user=postgres dbname=$PE_DB" \
  PE_TEST_DATA="$PE_DATA" \
    logged cargo test -p pgrx-test --release -- --test-threads=1 --nocapture
fi

# One closing line over every layer (only reached when all of them passed).
rust_tests=$({ grep -aoE "test result: ok\. [0-9]+ passed" "$LOG" || true; } | awk '{s += $4} END {print s + 0}')
sql_tests=$({ grep -aoE "All [0-9]+ tests passed" "$LOG" || true; } | awk '{s += $2} END {print s + 0}')
doc_checks=$({ grep -aoE "docs: [0-9]+ routines and [0-9]+ views checked" "$LOG" || true; } | awk 'END {print NR}')
upgrade_tests=$({ grep -aoE "upgrade: [0-9]+ checks passed" "$LOG" || true; } | awk '{s += $2} END {print s + 0}')
lint_checks=$({ grep -aoE "lint: [0-9]+ checks passed" "$LOG" || true; } | awk '{s += $2} END {print s + 0}')
echo "summary: $((rust_tests + sql_tests + upgrade_tests + lint_checks + doc_checks)) passed, 0 failed" | tee target/test-summary.txt
