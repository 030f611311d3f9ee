-- popularity_engine: the jobs: how the maintenance procedures run, their history (job_runs,
-- job_health) and their pg_cron schedule. Each job is a "step" function that does one
-- transaction's worth of work and says whether more is left; run_job calls steps until done,
-- committing between them when it may, and records every run and every error in job_runs.
--
-- run_job (and the public procedures that call it) have no SECURITY DEFINER and no SET clause
-- because PostgreSQL forbids COMMIT in procedures with either. So they run with the caller's
-- search_path: every function and operator they use is schema-qualified.

CREATE TABLE popularity_engine.job_runs (
    id             bigserial PRIMARY KEY,
    job            text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    status         text NOT NULL CHECK (status IN ('running', 'success', 'error', 'skipped')),
    rows_processed bigint,
    message        text
);
CREATE INDEX job_runs_job_time ON popularity_engine.job_runs (job, started_at DESC);
COMMENT ON TABLE popularity_engine.job_runs IS
  'One row per run of a refresh or maintenance procedure: when, how it ended, how many rows it processed, and what it said.';
COMMENT ON SEQUENCE popularity_engine.job_runs_id_seq IS 'Ids of job_runs rows.';

SELECT pg_catalog.pg_extension_config_dump('popularity_engine.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.job_runs_id_seq', '');

CREATE TYPE popularity_engine.job AS ENUM (
    'refresh_popularity', 'refresh_user_preferences', 'refresh_item_similarity', 'cleanup_interactions');
COMMENT ON TYPE popularity_engine.job IS
  'The maintenance jobs run_job knows; job_runs.job holds their names.';

CREATE FUNCTION popularity_engine.record_job_run(
    job text, started_at timestamptz, status text, rows_processed bigint, message text)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO popularity_engine.job_runs (job, started_at, finished_at, status, rows_processed, message)
    VALUES (job, started_at, clock_timestamp(), status, rows_processed, message)
$$;
COMMENT ON FUNCTION popularity_engine.record_job_run(text, timestamptz, text, bigint, text) IS
  'Internal: appends one row to job_runs.';

CREATE FUNCTION popularity_engine.step_summary(
    steps integer, processed bigint, first_note text, last_note text)
RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN steps <= 1 THEN coalesce(last_note, '')
                ELSE format('%s rows in %s transactions; first: %s; last: %s', processed, steps, first_note, last_note) END
$$;
COMMENT ON FUNCTION popularity_engine.step_summary(integer, bigint, text, text) IS
  'Internal: the job_runs message of a run made of several steps.';

CREATE FUNCTION popularity_engine.raise_job_error(
    job text, sqlstate text, message text, detail text, hint text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message,
        DETAIL = coalesce(detail, ''), HINT = coalesce(hint, ''),
        SCHEMA = 'popularity_engine', TABLE = 'job_runs';
END $$;
COMMENT ON FUNCTION popularity_engine.raise_job_error(text, text, text, text, text) IS
  'Internal: raises a job''s error again, with its original SQLSTATE, after it was recorded.';

-- One step of a job. A SQL-standard body: the step functions are resolved, with their
-- signatures, when the extension is installed (a wrong name fails CREATE EXTENSION, not a cron
-- run), and DROP FUNCTION of a step fails while this depends on it. Only the branch of `job`
-- runs: the others are cut off by their constant condition.
CREATE FUNCTION popularity_engine.run_step(
    job popularity_engine.job, as_of timestamptz, max_rows bigint, retention interval,
    OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT s.processed, s.more, s.note FROM popularity_engine.refresh_popularity_step(as_of, max_rows) s
     WHERE job = 'refresh_popularity'
    UNION ALL
    SELECT s.processed, s.more, s.note FROM popularity_engine.refresh_user_preferences_step(as_of, max_rows) s
     WHERE job = 'refresh_user_preferences'
    UNION ALL
    SELECT s.processed, s.more, s.note FROM popularity_engine.refresh_item_similarity_step() s
     WHERE job = 'refresh_item_similarity'
    UNION ALL
    SELECT s.processed, s.more, s.note FROM popularity_engine.cleanup_interactions_step(retention) s
     WHERE job = 'cleanup_interactions';
END;
COMMENT ON FUNCTION popularity_engine.run_step(popularity_engine.job, timestamptz, bigint, interval) IS
  'Internal: one step of a job (the arguments a job does not use are ignored).';

-- max_rows is the row budget of one transaction; it is not passed on (NULL: no limit) when the
-- run cannot commit between steps.
CREATE PROCEDURE popularity_engine.run_job(
    job popularity_engine.job, as_of timestamptz, max_rows bigint, retention interval)
LANGUAGE plpgsql AS $proc$
DECLARE
    v_started   timestamptz := pg_catalog.clock_timestamp();
    v_commit    boolean := popularity_engine.may_commit();
    v_step      record;
    v_steps     integer := 0;
    v_processed bigint := 0;
    v_first     text;
    v_state     text;
    v_message   text;
    v_detail    text;
    v_hint      text;
BEGIN
    LOOP
        BEGIN
            SELECT * INTO v_step FROM popularity_engine.run_step(job, as_of,
                CASE WHEN v_commit THEN max_rows END, retention);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                    v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
        END;
        EXIT WHEN v_state IS NOT NULL;
        v_steps := v_steps OPERATOR(pg_catalog.+) 1;
        v_processed := v_processed OPERATOR(pg_catalog.+) v_step.processed;
        v_first := coalesce(v_first, v_step.note);
        EXIT WHEN NOT v_step.more;
        COMMIT;
    END LOOP;
    IF v_state IS NOT NULL THEN
        PERFORM popularity_engine.record_job_run(job::pg_catalog.text, v_started, 'error', v_processed,
            v_state OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) v_message);
        IF v_commit THEN
            COMMIT;  -- keep the error row, then fail the call (pg_cron records the failure too)
        END IF;
        PERFORM popularity_engine.raise_job_error(job::pg_catalog.text, v_state, v_message, v_detail, v_hint);
    END IF;
    PERFORM popularity_engine.record_job_run(job::pg_catalog.text, v_started, 'success', v_processed,
        popularity_engine.step_summary(v_steps, v_processed, v_first, v_step.note));
END
$proc$;
COMMENT ON PROCEDURE popularity_engine.run_job(popularity_engine.job, timestamptz, bigint, interval) IS
  'Internal: runs a job''s steps until it is done, committing between steps when the call may, and records the run (or its error, before raising it again) in job_runs.';

CREATE VIEW popularity_engine.job_health AS
SELECT j.job,
       ok.finished_at AS last_success, ok.rows_processed AS last_success_rows,
       round(extract(epoch FROM ok.finished_at - ok.started_at)::numeric, 3) AS last_success_seconds,
       bad.finished_at AS last_error, bad.message AS last_error_message,
       last.status AS last_status,
       (SELECT count(*) FROM popularity_engine.job_runs r
         WHERE r.job = j.job AND r.started_at > now() - interval '24 hours') AS runs_last_24h,
       CASE WHEN j.job IN ('refresh_popularity', 'refresh_user_preferences')
            THEN popularity_engine.pending_interactions(j.job) END AS pending_interactions
  FROM unnest(enum_range(NULL::popularity_engine.job)::text[]) AS j(job)
  LEFT JOIN LATERAL (SELECT * FROM popularity_engine.job_runs r WHERE r.job = j.job AND r.status = 'success'
                      ORDER BY r.id DESC LIMIT 1) ok ON true
  LEFT JOIN LATERAL (SELECT * FROM popularity_engine.job_runs r WHERE r.job = j.job AND r.status = 'error'
                      ORDER BY r.id DESC LIMIT 1) bad ON true
  LEFT JOIN LATERAL (SELECT * FROM popularity_engine.job_runs r WHERE r.job = j.job
                      ORDER BY r.id DESC LIMIT 1) last ON true;
COMMENT ON VIEW popularity_engine.job_health IS
  'Per job: last success (when, rows, seconds), last error (when, message), last status, runs in the last 24 hours, and for the two refreshes how many committed interactions they have not aggregated yet.';

-- Scheduling with pg_cron ----------------------------------------------------------------------

CREATE FUNCTION popularity_engine.job_definitions(
    refresh_popularity_schedule text, refresh_user_preferences_schedule text,
    refresh_item_similarity_schedule text, cleanup_interactions_schedule text,
    cron_history_schedule text)
RETURNS TABLE (job_name text, schedule text, command text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    VALUES ('popularity_engine.refresh_popularity', refresh_popularity_schedule,
            'CALL popularity_engine.refresh_popularity()'),
           ('popularity_engine.refresh_user_preferences', refresh_user_preferences_schedule,
            'CALL popularity_engine.refresh_user_preferences()'),
           ('popularity_engine.refresh_item_similarity', refresh_item_similarity_schedule,
            'CALL popularity_engine.refresh_item_similarity()'),
           ('popularity_engine.cleanup_interactions', cleanup_interactions_schedule,
            'CALL popularity_engine.cleanup_interactions()'),
           ('popularity_engine.cron_history_cleanup', cron_history_schedule,
            'DELETE FROM cron.job_run_details WHERE end_time < now() - interval ''7 days'' AND jobid IN (SELECT jobid FROM cron.job WHERE jobname LIKE ''popularity\_engine.%'')')
$$;
COMMENT ON FUNCTION popularity_engine.job_definitions(text, text, text, text, text) IS
  'Internal: the pg_cron jobs of the extension with their schedules and commands.';

CREATE FUNCTION popularity_engine.schedule_jobs(
    refresh_popularity_schedule text DEFAULT '*/30 * * * *',
    refresh_user_preferences_schedule text DEFAULT '*/5 * * * *',
    refresh_item_similarity_schedule text DEFAULT '17 3 * * *',
    cleanup_interactions_schedule text DEFAULT '7 * * * *',
    cron_history_schedule text DEFAULT '43 4 * * *')
RETURNS TABLE (job_name text, schedule text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_variable
DECLARE
    v_job     record;
    v_cron_db text := current_setting('cron.database_name', true);
    v_calls   text;
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        SELECT string_agg(format('SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                                 d.job_name, d.schedule, d.command, current_database()), E'\n'
                          ORDER BY d.job_name)
          INTO v_calls
          FROM popularity_engine.job_definitions(refresh_popularity_schedule, refresh_user_preferences_schedule,
                   refresh_item_similarity_schedule, cleanup_interactions_schedule, cron_history_schedule) d
         WHERE d.job_name <> 'popularity_engine.cron_history_cleanup';
        RAISE EXCEPTION 'popularity_engine.schedule_jobs: pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN v_cron_db IS NULL
                                THEN 'pg_cron is not loaded: add it to shared_preload_libraries and restart.'
                                ELSE format('pg_cron runs in database "%s" (cron.database_name).', v_cron_db) END,
                  HINT = format(E'Either CREATE EXTENSION pg_cron here (if cron.database_name is this database), or run in database "%s":\n%s',
                                coalesce(v_cron_db, 'postgres'), v_calls);
    END IF;
    FOR v_job IN
        SELECT * FROM popularity_engine.job_definitions(refresh_popularity_schedule, refresh_user_preferences_schedule,
                          refresh_item_similarity_schedule, cleanup_interactions_schedule, cron_history_schedule)
    LOOP
        IF v_job.schedule IS NULL OR btrim(v_job.schedule) = '' THEN
            RAISE EXCEPTION 'popularity_engine.schedule_jobs: the schedule of % is empty', v_job.job_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- cron.schedule upserts by name, so calling schedule_jobs again only updates schedules
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING v_job.job_name, v_job.schedule, v_job.command;
        job_name := v_job.job_name;
        schedule := v_job.schedule;
        RETURN NEXT;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.schedule_jobs(text, text, text, text, text) IS
  'Registers (or updates) the pg_cron jobs: refresh_popularity every 30 minutes, refresh_user_preferences every 5, refresh_item_similarity daily, cleanup_interactions hourly, and a daily cleanup of the extension''s own jobs'' rows in cron.job_run_details (older than 7 days; other jobs'' history is left alone). Schedules can be overridden. Without pg_cron in this database it raises an error whose hint has the exact cron.schedule_in_database() calls to run where pg_cron lives.';

CREATE FUNCTION popularity_engine.unschedule_jobs() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_count integer;
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RETURN 0;
    END IF;
    EXECUTE $q$SELECT count(cron.unschedule(jobid))::integer FROM cron.job
                WHERE jobname LIKE 'popularity\_engine.%' AND database = current_database()$q$
       INTO v_count;
    RETURN v_count;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.unschedule_jobs() IS
  'Removes the extension''s pg_cron jobs for this database; returns how many. DROP EXTENSION calls it.';

-- DROP EXTENSION (or DROP SCHEMA ... CASCADE) takes the cron jobs with it, in the same transaction.
CREATE FUNCTION popularity_engine.unschedule_on_drop() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF current_query() ~* 'popularity_engine' AND to_regprocedure('popularity_engine.unschedule_jobs()') IS NOT NULL THEN
        PERFORM popularity_engine.unschedule_jobs();
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.unschedule_on_drop() IS
  'Event trigger: unschedules the extension''s pg_cron jobs when the extension or its schema is dropped.';
CREATE EVENT TRIGGER popularity_engine_unschedule_on_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION popularity_engine.unschedule_on_drop();
COMMENT ON EVENT TRIGGER popularity_engine_unschedule_on_drop IS
  'Removes the extension''s pg_cron jobs before DROP EXTENSION popularity_engine.';
