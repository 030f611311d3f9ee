#!/usr/bin/env bash
# Runs once, when the container initialises its data directory.
set -euo pipefail
db="${POSTGRES_DB:-postgres}"
cron_db=$(psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$db" -tAc "SHOW cron.database_name")
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$db" -c "CREATE EXTENSION IF NOT EXISTS popularity_engine"
if [ "$cron_db" = "$db" ]; then
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$db" <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_cron;
DO $$
BEGIN
  IF to_regprocedure('popularity_engine.schedule_jobs()') IS NOT NULL THEN
    PERFORM popularity_engine.schedule_jobs();
  END IF;
END $$;
SQL
fi
