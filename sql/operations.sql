-- popularity_engine: reporting views, roles, and pg_cron scheduling.

-- Reporting views ------------------------------------------------------------------------------

CREATE VIEW popularity_engine.popularity_report AS
SELECT p.product_id, c.category, c.brand, c.price, c.inventory, c.is_active,
       p.view_count, p.click_count, p.search_count, p.search_click_count, p.wishlist_count,
       p.cart_add_count, p.order_count, p.review_count, p.rating_avg,
       p.popularity_score, p.trending_score,
       rank() OVER (ORDER BY p.popularity_score DESC) AS popularity_rank,
       CASE WHEN p.view_count > 0 THEN p.order_count::float8 / p.view_count END AS view_to_order_rate,
       p.last_interaction, p.last_updated
  FROM popularity_engine.product_popularity p
  LEFT JOIN popularity_engine.catalog c ON c.product_id = p.product_id;
COMMENT ON VIEW popularity_engine.popularity_report IS
  'One row per product with counters, scores, catalog attributes, its popularity rank and view-to-order rate.';

CREATE VIEW popularity_engine.trending_products AS
SELECT t.rank, t.product_id, t.score AS trending_score, c.category, c.brand,
       p.view_count, p.cart_add_count, p.order_count
  FROM popularity_engine.popular_products('trending'::popularity_engine.popularity_mode, NULL::interval, NULL::text, 100) t
  LEFT JOIN popularity_engine.catalog c ON c.product_id = t.product_id
  LEFT JOIN popularity_engine.product_popularity p ON p.product_id = t.product_id;
COMMENT ON VIEW popularity_engine.trending_products IS
  'The 100 most trending products (trending_score at the last refresh), with their catalog attributes and counters.';

CREATE VIEW popularity_engine.daily_interaction_stats AS
SELECT (h.bucket_hour AT TIME ZONE 'UTC')::date AS day, h.interaction_type,
       sum(h.events) AS events, count(DISTINCT h.product_id) AS products
  FROM popularity_engine.popularity_hourly h
 GROUP BY 1, 2;
COMMENT ON VIEW popularity_engine.daily_interaction_stats IS
  'Aggregated interactions with a product per UTC day and type (wishlist: adds only), from the hourly buckets kept by refresh_popularity, and how many distinct products they touched.';

CREATE VIEW popularity_engine.user_affinity AS
SELECT u.user_id, u.dimension, u.value, u.affinity, u.events,
       rank() OVER (PARTITION BY u.user_id, u.dimension ORDER BY u.affinity DESC, u.value) AS rank,
       u.affinity / nullif(max(u.affinity) OVER (PARTITION BY u.user_id, u.dimension), 0) AS relative_affinity
  FROM popularity_engine.user_preferences u;
COMMENT ON VIEW popularity_engine.user_affinity IS
  'Per user: category and brand affinities ranked within the user, and relative to the user''s strongest one (what recommend() uses).';

CREATE VIEW popularity_engine.search_analytics AS
WITH searches AS (
    SELECT lower(s.query) AS query, count(*) AS searches, count(DISTINCT s.user_id) AS users,
           avg(cardinality(s.result_product_ids)) AS avg_results,
           count(*) FILTER (WHERE cardinality(s.result_product_ids) = 0) AS zero_result_searches,
           max(s.occurred_at) AS last_searched
      FROM popularity_engine.search_interactions s GROUP BY 1),
clicks AS (
    SELECT lower(i.metadata ->> 'search_query') AS query, count(*) AS clicks
      FROM popularity_engine.product_interactions i
     WHERE i.interaction_type = 'search_click' AND i.metadata ? 'search_query'
     GROUP BY 1)
SELECT s.query, s.searches, s.users, s.avg_results, s.zero_result_searches,
       coalesce(c.clicks, 0) AS clicks,
       coalesce(c.clicks, 0)::float8 / s.searches AS click_through_rate, s.last_searched
  FROM searches s LEFT JOIN clicks c USING (query);
COMMENT ON VIEW popularity_engine.search_analytics IS
  'Per search query (case-insensitive) within the retained log: searches, users, average and zero result counts, clicks from search and click-through rate.';

CREATE FUNCTION popularity_engine.pending_interactions(consumer text) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_count bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM popularity_engine.product_interactions t WHERE t.product_id IS NOT NULL AND (%s)',
                   popularity_engine.pending_rows_clause(consumer, 'product_interactions'))
       INTO v_count;
    RETURN v_count;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.pending_interactions(text) IS
  'Committed interactions with a product that the named refresh (refresh_popularity or refresh_user_preferences) has not aggregated yet.';

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
  FROM (VALUES ('refresh_popularity'), ('refresh_user_preferences'), ('refresh_item_similarity'),
               ('cleanup_interactions')) AS j(job)
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
            'DELETE FROM cron.job_run_details WHERE end_time < now() - interval ''7 days''')
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
  'Registers (or updates) the pg_cron jobs: refresh_popularity every 30 minutes, refresh_user_preferences every 5, refresh_item_similarity daily, cleanup_interactions hourly, and a daily cleanup of cron.job_run_details. Schedules can be overridden. Without pg_cron in this database it raises an error whose hint has the exact cron.schedule_in_database() calls to run where pg_cron lives.';

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

-- Roles ----------------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'popularity_engine_writer') THEN
        CREATE ROLE popularity_engine_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'popularity_engine_reader') THEN
        CREATE ROLE popularity_engine_reader NOLOGIN;
    END IF;
END $$;

