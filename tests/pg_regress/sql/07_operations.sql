-- Operations: partitions, retention, chunked refreshes, job_runs and job_health, scheduling
-- without pg_cron, views, forget_user, settings.
DROP EXTENSION IF EXISTS popularity_engine;
CREATE EXTENSION popularity_engine;
-- the notices name partitions after today's date
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- weekly partitions: this week and four ahead, then idempotent
SELECT popularity_engine.ensure_partitions();
SELECT popularity_engine.ensure_partitions();
SELECT count(*) AS weekly_partitions FROM pg_inherits
 WHERE inhparent = 'popularity_engine.product_interactions'::regclass;
-- rows land in their week; old ones in the default partition, and move when their week is created
SELECT popularity_engine.track(1, 10, 'view') > 0,
       popularity_engine.track(1, 10, 'view', occurred_at => now() - interval '3 weeks') > 0,
       popularity_engine.track(2, 11, 'click', occurred_at => now() - interval '200 days') > 0;
SELECT tableoid::regclass = 'popularity_engine.product_interactions_default'::regclass AS in_default, count(*)
  FROM popularity_engine.product_interactions GROUP BY 1 ORDER BY 1;
SELECT popularity_engine.ensure_partitions(now() - interval '3 weeks');
SELECT tableoid::regclass = 'popularity_engine.product_interactions_default'::regclass AS in_default, count(*)
  FROM popularity_engine.product_interactions GROUP BY 1 ORDER BY 1;

-- a refresh works through a backlog in transactions of about max_rows rows
-- 25 interactions in 25 transactions
DO $$
BEGIN
    FOR k IN 1..25 LOOP
        PERFORM popularity_engine.track(3, 20 + k, 'view');
        COMMIT;
    END LOOP;
END $$;
CALL popularity_engine.refresh_popularity(max_rows => 10);
SELECT status, rows_processed, message ~ '^28 rows in 3 transactions' AS in_three_transactions
  FROM popularity_engine.job_runs WHERE job = 'refresh_popularity' ORDER BY id DESC LIMIT 1;
SELECT sum(view_count + click_count) AS counted FROM popularity_engine.product_popularity;
CALL popularity_engine.refresh_user_preferences(max_rows => 7);
SELECT status, rows_processed FROM popularity_engine.job_runs WHERE job = 'refresh_user_preferences';

-- retention: nothing not yet aggregated is dropped; aggregates keep their totals
SELECT popularity_engine.track(4, 12, 'view', occurred_at => now() - interval '150 days') > 0;
CALL popularity_engine.cleanup_interactions();
SELECT count(*) AS old_rows_left FROM popularity_engine.product_interactions WHERE occurred_at < now() - interval '100 days';
SELECT message ~ 'dropped 0 partitions, 1 rows' AS dropped_one_aggregated_row
  FROM popularity_engine.job_runs WHERE job = 'cleanup_interactions' ORDER BY id DESC LIMIT 1;
CALL popularity_engine.refresh_popularity();
CALL popularity_engine.refresh_user_preferences();
CALL popularity_engine.cleanup_interactions(interval '10 days');
SELECT count(*) AS rows_left FROM popularity_engine.product_interactions WHERE occurred_at < now() - interval '11 days';
SELECT product_id, view_count, click_count FROM popularity_engine.product_popularity
 WHERE product_id IN (10, 11, 12) ORDER BY 1;
-- the weeks left: none that ended before the cutoff, every one from the cutoff's week to four
-- ahead (how many depends on the weekday: the cutoff may fall in the week before last), in UTC
-- weeks of 168 hours whatever the session's time zone; times from the cleanup's own run
SELECT count(*) FILTER (WHERE w.starts + interval '168 hours' <= r.cutoff) AS weeks_ended_before_cutoff,
       array_agg(w.starts ORDER BY w.starts)
         = ARRAY(SELECT generate_series(date_trunc('week', r.cutoff, 'UTC'),
                                        date_trunc('week', r.started_at, 'UTC') + interval '672 hours',
                                        interval '168 hours')) AS every_week_from_the_cutoffs
  FROM (SELECT j.started_at, j.started_at - interval '10 days' AS cutoff FROM popularity_engine.job_runs j
         WHERE j.job = 'cleanup_interactions' ORDER BY j.id DESC LIMIT 1) r,
       pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
       LATERAL (SELECT to_date(substr(c.relname, 23), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC' AS starts) w
 WHERE i.inhparent = 'popularity_engine.product_interactions'::regclass
   AND c.relname ~ '^product_interactions_p[0-9]{8}$'
 GROUP BY r.started_at, r.cutoff;
SELECT pg_temp.try($$CALL popularity_engine.cleanup_interactions(interval '-1 day')$$);

-- job_health: last success, last error, pending interactions
SELECT popularity_engine.track(5, 13, 'view') > 0;
SELECT job, last_success IS NOT NULL AS succeeded, last_error IS NOT NULL AS failed, last_status,
       pending_interactions
  FROM popularity_engine.job_health ORDER BY job;
-- a failing run called on its own keeps its error row (inside a transaction block it cannot)
\set VERBOSITY terse
CALL popularity_engine.refresh_popularity('infinity');
SELECT job, last_status, last_error_message FROM popularity_engine.job_health WHERE job = 'refresh_popularity';

-- scheduling: this database has no pg_cron, so the error says what to run where
\set VERBOSITY default
SELECT * FROM popularity_engine.schedule_jobs(refresh_popularity_schedule => '*/10 * * * *');
\set VERBOSITY terse
SELECT popularity_engine.unschedule_jobs();

-- every reporting view answers
CALL popularity_engine.refresh_popularity();
SELECT count(*) > 0 AS ok FROM popularity_engine.popularity_report;
SELECT count(*) > 0 AS ok FROM popularity_engine.trending_products;
SELECT count(*) > 0 AS ok FROM popularity_engine.daily_interaction_stats;
SELECT count(*) >= 0 AS ok FROM popularity_engine.user_affinity;
SELECT popularity_engine.track_search(6, 'Lamp', ARRAY[10, 11]) > 0,
       popularity_engine.track_search(7, 'lamp', '{}') > 0,
       popularity_engine.track_search_click(6, 'lamp', 11) > 0;
SELECT query, searches, users, zero_result_searches, clicks, click_through_rate FROM popularity_engine.search_analytics;

-- forget_user erases the user; product totals stay
CALL popularity_engine.refresh_popularity();
CALL popularity_engine.refresh_user_preferences();
SELECT popularity_engine.track(8, 30, 'add_to_cart') > 0, popularity_engine.track(8, 30, 'purchase') > 0,
       popularity_engine.track(8, 31, 'wishlist') > 0, popularity_engine.track_search(8, 'x', ARRAY[30]) > 0;
CALL popularity_engine.refresh_popularity();
CALL popularity_engine.refresh_user_preferences();
SELECT popularity_engine.forget_user(8) AS rows_removed;
SELECT (SELECT count(*) FROM popularity_engine.product_interactions WHERE user_id = 8)
     + (SELECT count(*) FROM popularity_engine.search_interactions WHERE user_id = 8)
     + (SELECT count(*) FROM popularity_engine.user_cart WHERE user_id = 8)
     + (SELECT count(*) FROM popularity_engine.user_wishlist WHERE user_id = 8)
     + (SELECT count(*) FROM popularity_engine.purchase_history WHERE user_id = 8)
     + (SELECT count(*) FROM popularity_engine.user_profiles WHERE user_id = 8)
     + (SELECT count(*) FROM popularity_engine.user_item_weights WHERE user_id = 8)
     + (SELECT count(*) FROM popularity_engine.user_preference_sums WHERE user_id = 8) AS rows_left;
SELECT product_id, cart_add_count, order_count, round(trending_score::numeric, 3) AS trending_score
  FROM popularity_engine.product_popularity
 WHERE product_id = 30;
CALL popularity_engine.refresh_popularity();
SELECT product_id, cart_add_count, order_count, round(trending_score::numeric, 3) AS trending_score
  FROM popularity_engine.product_popularity
 WHERE product_id = 30;
SELECT pg_temp.try($$SELECT popularity_engine.forget_user(0)$$);

-- settings have units and ranges
SHOW popularity_engine.trending_half_life;
SET popularity_engine.trending_half_life = '48h';
SHOW popularity_engine.trending_half_life;
SELECT pg_temp.try($$SET popularity_engine.trending_half_life = '10s'$$);
SELECT pg_temp.try($$SET popularity_engine.weight_personalization = 2$$);
SELECT pg_temp.try($$SET popularity_engine.max_per_category = 0$$);
SELECT pg_temp.try($$SET popularity_engine.retention = '2 hours'$$);
RESET popularity_engine.trending_half_life;
SELECT name, setting, unit, min_val, max_val FROM pg_settings WHERE name LIKE 'popularity_engine.%' ORDER BY 1;
