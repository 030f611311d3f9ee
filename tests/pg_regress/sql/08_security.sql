-- Security: hostile objects in public never run, with public first on the search_path, during
-- CREATE EXTENSION and every entry point; the two roles get exactly their privileges.
DROP EXTENSION IF EXISTS popularity_engine;
SET client_min_messages = warning;

CREATE TABLE public.hijack_log (what text);
CREATE FUNCTION public.log_hijack(what text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO public.hijack_log VALUES (what) $$;
-- functions that shadow built-ins the extension uses
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('clock_timestamp'); RETURN pg_catalog.clock_timestamp(); END $$;
CREATE FUNCTION public.md5(text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('md5'); RETURN pg_catalog.md5($1); END $$;
CREATE FUNCTION public.power(double precision, double precision) RETURNS double precision LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('power'); RETURN pg_catalog.power($1, $2); END $$;
CREATE FUNCTION public.pg_current_snapshot() RETURNS pg_snapshot LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('pg_current_snapshot'); RETURN pg_catalog.pg_current_snapshot(); END $$;
CREATE FUNCTION public.format(text, timestamptz) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('format'); RETURN pg_catalog.format($1, $2); END $$;
CREATE FUNCTION public.coalesce_guard(bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT $1 $$;
-- operators that shadow built-ins
CREATE FUNCTION public.evil_int8eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('= bigint'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.evil_int8eq);
CREATE FUNCTION public.evil_int8pl(bigint, bigint) RETURNS bigint LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('+ bigint'); RETURN $1 OPERATOR(pg_catalog.+) $2; END $$;
CREATE OPERATOR public.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.evil_int8pl);
CREATE FUNCTION public.evil_textcat(text, text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('|| text'); RETURN $1 OPERATOR(pg_catalog.||) $2; END $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_textcat);
-- an implicit cast
CREATE FUNCTION public.evil_int4_text(integer) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN PERFORM public.log_hijack('cast'); RETURN $1::pg_catalog.text; END $$;
CREATE CAST (integer AS text) WITH FUNCTION public.evil_int4_text(integer) AS IMPLICIT;

SET search_path = public, pg_catalog;
CREATE EXTENSION popularity_engine;
SELECT count(*) AS hijacked_during_create FROM public.hijack_log;

-- every entry point, with the hostile search_path still in place
INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory)
SELECT p, concat('c', p % 3), concat('b', p % 2), 10 * p, 5 FROM generate_series(1, 12) AS p;
SELECT popularity_engine.track(1, 1, 'view') > 0, popularity_engine.track(1, 2, 'add_to_cart', 2) > 0,
       popularity_engine.track(1, 2, 'remove_from_cart') > 0, popularity_engine.track(1, 3, 'wishlist') > 0,
       popularity_engine.track(1, 4, 'review', 4) > 0,
       popularity_engine.track(1, 5, 'view', event_id => 'aaaaaaaa-0000-0000-0000-000000000001') > 0;
SELECT popularity_engine.track_batch('[{"user_id": 2, "product_id": 1, "type": "view"},
                                       {"user_id": 2, "product_id": 6, "type": "update_cart_quantity", "value": 3}]');
SELECT popularity_engine.track_order(2, ARRAY[1, 7], ARRAY[1, 2], 'o-1');
SELECT popularity_engine.track_search(2, 'lamp', ARRAY[1, 2]) > 0, popularity_engine.track_search_click(2, 'lamp', 2) > 0;
SELECT count(popularity_engine.track(u, p, 'view')) FROM generate_series(3, 8) AS u, generate_series(1, 6) AS p;
CALL popularity_engine.refresh_popularity();
CALL popularity_engine.refresh_popularity(max_rows => 5);
CALL popularity_engine.refresh_user_preferences();
CALL popularity_engine.refresh_item_similarity();
SELECT popularity_engine.ensure_partitions() >= 0;
CALL popularity_engine.cleanup_interactions();
SELECT count(*) > 0 FROM popularity_engine.popular_products();
SELECT count(*) > 0 FROM popularity_engine.popular_products('trending', interval '1 day', 'c1', 5);
SELECT count(*) > 0 FROM popularity_engine.recommend(3, 5);
SELECT count(*) > 0 FROM popularity_engine.recommend(99, 5);
SELECT count(*) > 0 FROM popularity_engine.rank_products(3, ARRAY[1, 2, 3], ARRAY[0.1, 0.2, 0.3]);
SELECT count(*) >= 0 FROM popularity_engine.similar_products(1);
SELECT popularity_engine.user_profile(1) IS NOT NULL;
SELECT (SELECT count(*) FROM popularity_engine.popularity_report) > 0,
       (SELECT count(*) FROM popularity_engine.trending_products) > 0,
       (SELECT count(*) FROM popularity_engine.daily_interaction_stats) > 0,
       (SELECT count(*) FROM popularity_engine.user_affinity) > 0,
       (SELECT count(*) FROM popularity_engine.search_analytics) > 0,
       (SELECT count(*) FROM popularity_engine.job_health) > 0,
       (SELECT pending_interactions FROM popularity_engine.aggregation_lag()) = 0;
SELECT popularity_engine.forget_user(8) > 0;
SELECT popularity_engine.unschedule_jobs();
SELECT count(*) AS hijacked, string_agg(DISTINCT what, ', ') AS what FROM public.hijack_log;
RESET search_path;

-- roles: the writer may only track, the reader may only query; neither reads the raw log
\set VERBOSITY terse
SET ROLE popularity_engine_writer;
SELECT popularity_engine.track(20, 1, 'view') > 0 AS writer_tracks;
SELECT popularity_engine.track_batch('[{"user_id": 20, "product_id": 2, "type": "click"}]') AS writer_batches;
SELECT count(*) FROM popularity_engine.product_interactions;
SELECT count(*) FROM popularity_engine.user_cart;
SELECT * FROM popularity_engine.popular_products();
SELECT count(*) FROM popularity_engine.popularity_report;
CALL popularity_engine.refresh_popularity();
SELECT popularity_engine.forget_user(1);
RESET ROLE;
SET ROLE popularity_engine_reader;
SELECT count(*) > 0 AS reader_queries FROM popularity_engine.popular_products();
SELECT count(*) > 0 AS reader_recommends FROM popularity_engine.recommend(3, 5);
SELECT count(*) > 0 AS reader_reports FROM popularity_engine.popularity_report;
SELECT count(*) > 0 AS reader_sees_health FROM popularity_engine.job_health;
SELECT popularity_engine.track(21, 1, 'view');
SELECT count(*) FROM popularity_engine.product_interactions;
SELECT count(*) FROM popularity_engine.purchase_history;
SELECT popularity_engine.schedule_jobs();
UPDATE popularity_engine.interaction_weights SET popularity_weight = 100;
RESET ROLE;
-- anyone else: nothing at all
CREATE ROLE pe_someone;
SET ROLE pe_someone;
SELECT * FROM popularity_engine.popular_products();
SELECT popularity_engine.track(22, 1, 'view');
RESET ROLE;
DROP ROLE pe_someone;
\set VERBOSITY default

DROP CAST (integer AS text);
DROP TABLE public.hijack_log CASCADE;
DROP OPERATOR public.= (bigint, bigint);
DROP OPERATOR public.+ (bigint, bigint);
DROP OPERATOR public.|| (text, text);
DROP FUNCTION public.log_hijack(text), public.now(), public.clock_timestamp(), public.md5(text),
    public.power(double precision, double precision), public.pg_current_snapshot(),
    public.format(text, timestamptz), public.coalesce_guard(bigint), public.evil_int8eq(bigint, bigint),
    public.evil_int8pl(bigint, bigint), public.evil_textcat(text, text), public.evil_int4_text(integer);
