-- popularity_engine: how the maintenance procedures run. Each job is a "step" function that does
-- one transaction's worth of work and says whether more is left; run_job calls steps until done,
-- committing between them when it may, and records every run and every error in job_runs.
--
-- run_job (and the public procedures that call it) have no SECURITY DEFINER and no SET clause
-- because PostgreSQL forbids COMMIT in procedures with either. So they run with the caller's
-- search_path: every function and operator they use is schema-qualified.

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

-- step_call is a call returning (processed bigint, more boolean, note text), in which $1 stands
-- for the row budget of one transaction (NULL when the run cannot commit between steps).
CREATE PROCEDURE popularity_engine.run_job(job text, step_call text, max_rows bigint)
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
            EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) step_call INTO v_step
              USING CASE WHEN v_commit THEN max_rows END;
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
        PERFORM popularity_engine.record_job_run(job, v_started, 'error', v_processed,
            v_state OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) v_message);
        IF v_commit THEN
            COMMIT;  -- keep the error row, then fail the call (pg_cron records the failure too)
        END IF;
        PERFORM popularity_engine.raise_job_error(job, v_state, v_message, v_detail, v_hint);
    END IF;
    PERFORM popularity_engine.record_job_run(job, v_started, 'success', v_processed,
        popularity_engine.step_summary(v_steps, v_processed, v_first, v_step.note));
END
$proc$;
COMMENT ON PROCEDURE popularity_engine.run_job(text, text, bigint) IS
  'Internal: runs a job''s step function until it is done, committing between steps when the call may, and records the run (or its error, before raising it again) in job_runs.';
