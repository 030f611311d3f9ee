#!/usr/bin/env bash
# The demo: installs what is missing, builds and installs the extension, starts a throwaway
# PostgreSQL 15 cluster (pg_cron preloaded) on 127.0.0.1:28815, loads a sample shop through the
# tracking functions and prints what the extension knows. A second run reuses the cluster and
# the data and takes seconds. PE_DEMO_RESET=1 reloads from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."

export PE_PORT=${PE_PORT:-28815}
export PE_DB=popularity_demo
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
psql_demo() { scripts/pgcluster.sh psql -d "$PE_DB" "$@"; }

bash scripts/install-deps.sh
echo "==> building and installing popularity_engine (release)"
mkdir -p target
bash scripts/install-extension.sh --release >target/demo-install.log 2>&1 \
  || { cat target/demo-install.log; exit 1; }
echo "==> starting the demo cluster on 127.0.0.1:$PE_PORT"
scripts/pgcluster.sh start

# Reload when asked, or when the installed extension script changed since the data was loaded.
script_sum=$(cat "$($PG_CONFIG --sharedir)"/extension/popularity_engine--*.sql scripts/demo/*.sql \
             | md5sum | cut -c1-32)
loaded_sum=
if psql_demo -tAc "SELECT to_regclass('public.demo_state') IS NOT NULL" | grep -q t; then
  loaded_sum=$(psql_demo -tAc "SELECT script_sum FROM public.demo_state" || true)
fi
if [ "${PE_DEMO_RESET:-0}" = 1 ] || [ "$loaded_sum" != "$script_sum" ]; then
  echo "==> loading the sample shop"
  psql_demo -c "DROP EXTENSION IF EXISTS popularity_engine CASCADE" \
            -c "DROP TABLE IF EXISTS public.demo_state" \
            -c "CREATE EXTENSION popularity_engine"
  psql_demo -f scripts/demo/sample_data.sql
  psql_demo -c "CREATE TABLE public.demo_state AS SELECT '$script_sum'::text AS script_sum, now() AS loaded_at"
else
  echo "==> reusing the sample shop loaded at $(psql_demo -tAc 'SELECT loaded_at FROM public.demo_state')"
fi

psql_demo -c "CALL popularity_engine.refresh_popularity()" \
          -c "CALL popularity_engine.refresh_user_preferences()" \
          -c "CALL popularity_engine.refresh_item_similarity()"
psql_demo -f scripts/demo/report.sql

# One line of recommendation quality (bench/quality.sh, leave-last-out) on a small generated shop
# with structure (tastes, baskets, sessions), where a figure means something; the random sample
# shop above has none to find. Computed once per build and data, then reused.
quality_file=target/demo-quality-$script_sum.txt
if [ ! -s "$quality_file" ]; then
  echo "==> measuring recommendation quality on a generated 1,000-user shop (some seconds)"
  python3 bench/generate_shop.py target/demo-shop --users 1000 --products 800 >/dev/null
  QUALITY_SKIP_INSTALL=1 QUALITY_PROTOCOLS=loo QUALITY_PORT=28864 QUALITY_LABEL=demo-shop \
    bash bench/quality.sh target/demo-shop/events.csv target/demo-shop/catalog.csv 2>/dev/null \
    | awk -F' *[|] *' '$3 == "recommend()" {r = $5; rn = $6; u = $4} $3 == "item-kNN" {k = $5; kn = $6}
        END {printf "quality: recommend() HR@10 %s, NDCG@10 %s vs item-kNN %s, %s (%s users, leave-last-out; bench/quality.sh)\n", r, rn, k, kn, u}' \
    > "$quality_file"
fi
cat "$quality_file"

cat <<MSG

Connect to the demo database:
    psql -h 127.0.0.1 -p $PE_PORT -U postgres $PE_DB        (or: make psql)
Stop it with 'bash scripts/pgcluster.sh stop', delete it with 'make clean-demo'.
MSG
