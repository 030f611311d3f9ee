#!/usr/bin/env bash
# Offline evaluation of recommend() on a shop's own events, beside two baselines computed in the
# same run on the same training events: most-popular and item-kNN (cosine).
#
#   bash bench/quality.sh EVENTS.csv [CATALOG.csv]
#
# EVENTS.csv: header user_id,product_id,type,occurred_at[,value] (type defaults to order); the
# optional CATALOG.csv: product_id[,category,brand,price,inventory]. bench/quality/validate.py
# documents every field; a bad file is rejected with its line numbers and nothing is loaded.
# Two protocols, each in a scratch database of a throwaway cluster, loaded through track_batch()
# and refreshed like a live shop:
#   loo  leave-last-out: each user's last new product (and what followed it) is held out
#   cut  global time cut: the last QUALITY_HOLDOUT_DAYS days are held out
# Prints one markdown table (HR@10, NDCG@10, recall@10, catalog coverage, recommend() p50/p99
# latency) and writes it to bench/results/quality/<label>.md.
# Environment: QUALITY_LABEL (default: the events file's directory name), QUALITY_HOLDOUT_DAYS
# (7), QUALITY_PROTOCOLS ("loo cut"; only loo for data whose timestamps are made up),
# QUALITY_MAX_USERS (2000 evaluated users per protocol), QUALITY_PORT (28860),
# QUALITY_SKIP_INSTALL=1 to use the extension already installed, QUALITY_SETTINGS to try
# settings (e.g. "popularity_engine.similarity_top_k=50 popularity_engine.weight_popularity=0.1"),
# QUALITY_STAGE=similarity|evaluate to reuse the loaded scratch databases of the previous run and
# redo only the similarity job and the evaluation, or only the evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ $# -gt 2 ]; then sed -n '2,23p' "$0" >&2; exit 2; fi
events=$(realpath "$1")
catalog=${2:+$(realpath "$2")}
[ -f "$events" ] || { echo "quality: $1: no such file" >&2; exit 2; }
[ -z "$catalog" ] || [ -f "$catalog" ] || { echo "quality: $2: no such file" >&2; exit 2; }
label=${QUALITY_LABEL:-$(basename "$(dirname "$events")")}
holdout_days=${QUALITY_HOLDOUT_DAYS:-7}
max_users=${QUALITY_MAX_USERS:-2000}
stage=${QUALITY_STAGE:-all}
settings=""
for setting in ${QUALITY_SETTINGS:-}; do settings+=" -c $setting"; done

export PE_PORT=${QUALITY_PORT:-28860}
export PE_DATA=/tmp/popularity_engine/quality-cluster-$PE_PORT
export PE_DB=pe_quality
PE_CONF=$(cat bench/scratch-cluster.conf)
export PE_CONF
WORK=/tmp/popularity_engine/quality-work-$PE_PORT
mkdir -p "$WORK" && chmod 1777 /tmp/popularity_engine "$WORK"
OUT=bench/results/quality
mkdir -p "$OUT"

echo "==> checking the input" >&2
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
python3 bench/quality/validate.py "$WORK" "$events" ${catalog:+"$catalog"} >&2
chmod 644 "$WORK"/*.tsv

if [ "${QUALITY_SKIP_INSTALL:-0}" != 1 ]; then
  echo "==> installing a release build" >&2
  bash scripts/install-deps.sh >&2
  bash scripts/install-extension.sh --release > "$WORK/install.log" 2>&1 || { cat "$WORK/install.log" >&2; exit 1; }
fi
scripts/pgcluster.sh start >&2
trap 'scripts/pgcluster.sh stop' EXIT

q() { PGOPTIONS="-c client_min_messages=warning$settings" scripts/pgcluster.sh psql -tA "$@"; }
rows=()
for protocol in ${QUALITY_PROTOCOLS:-loo cut}; do
  db=pe_quality_$protocol
  echo "==> $label, protocol $protocol" >&2
  if [ "$stage" = all ]; then
    q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    q -d "$db" -c "CREATE EXTENSION popularity_engine" -c "CREATE SCHEMA q" \
      -c "CREATE TABLE q.events (line bigint, user_id bigint, product_id bigint, type text,
                                 occurred_at timestamptz, value double precision)" \
      -c "CREATE TABLE q.catalog (product_id bigint PRIMARY KEY, category text, brand text,
                                  price numeric, inventory integer)" >/dev/null
    q -d "$db" -c "COPY q.events FROM STDIN" < "$WORK/events.tsv" >/dev/null
    q -d "$db" -c "COPY q.catalog FROM STDIN" < "$WORK/catalog.tsv" >/dev/null
    q -d "$db" -v protocol="$protocol" -v holdout_days="$holdout_days" -v max_users="$max_users" \
      -f bench/quality/split.sql >&2
    q -d "$db" -f bench/quality/train.sql >&2
  elif [ "$stage" = similarity ]; then
    q -d "$db" -c "CALL popularity_engine.refresh_item_similarity()" >/dev/null
  fi
  q -d "$db" -c "DROP TABLE IF EXISTS q.recs, q.shown, q.popular, q.user_items, q.item_users, q.co, q.scores" >/dev/null
  mapfile -t -O "${#rows[@]}" rows < <(q -d "$db" -v label="$label, $protocol" -f bench/quality/evaluate.sql)
done

{
  echo "| data, protocol | method | users | HR@10 | NDCG@10 | recall@10 | coverage | latency p50 / p99 (ms) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT/$label.md"
