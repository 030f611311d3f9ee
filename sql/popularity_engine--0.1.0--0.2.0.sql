-- popularity_engine 0.1.0 -> 0.2.0 (ALTER EXTENSION popularity_engine UPDATE TO '0.2.0')
--
-- Performance fixes found by the benchmarks (bench/PROFILE.md); no table changes.
-- * refresh_popularity_step: a cheap probe skips the aggregation statement when nothing is new;
--   its temporary tables live for the session; catalog attributes are looked up by key instead
--   of hashing the whole catalog.
-- * popular_products with a time window: the top n are chosen before the catalog join.
-- * shared helpers instead of copies: the transaction-boundary cut and the own-transaction
--   snapshot of both refresh steps (step_bound_cte, snapshot_with_running), and the "not yet
--   aggregated" condition of each refresh (pending_rows_clause) used by pending_interactions,
--   aggregation_lag and cleanup_interactions.
-- The definitions below are those of the same objects in sql/*.sql of 0.2.0; tests/upgrade
-- checks that an updated 0.1.0 equals a fresh 0.2.0 install.
\echo Use "ALTER EXTENSION popularity_engine UPDATE TO '0.2.0'" to load this file. \quit

-- The snapshot `snap` with transaction `xid` still running in it. A refresh stores this when it
-- runs inside a transaction that has itself written to the log: those rows are left for the
-- first refresh after that transaction commits (an xid at or past xmax already is).
CREATE FUNCTION popularity_engine.snapshot_with_running(snap pg_snapshot, xid xid8) RETURNS pg_snapshot
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN xid IS NULL OR xid >= pg_snapshot_xmax(snap) THEN snap ELSE
        format('%s:%s:%s', least(pg_snapshot_xmin(snap), xid), pg_snapshot_xmax(snap),
               (SELECT string_agg(x::text, ',' ORDER BY x)
                  FROM (SELECT pg_snapshot_xip(snap) UNION SELECT xid) AS u(x)))::pg_snapshot
    END
$$;
COMMENT ON FUNCTION popularity_engine.snapshot_with_running(pg_snapshot, xid8) IS
  'Internal: the snapshot with transaction xid treated as still running.';

-- The `bound` CTE of a refresh step's reading statement: the first transaction after the one
-- that wrote the max_rows-th unaggregated row (the statement's $1; NULL = no limit), or the
-- snapshot's xmax. Rows of transactions before it are read now, the others by the next step, so
-- that a step never splits a transaction. Expects a `snap` CTE holding pg_current_snapshot().
CREATE FUNCTION popularity_engine.step_bound_cte(unaggregated text, id_floor bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format($cte$bound AS MATERIALIZED (
            SELECT CASE WHEN $1::int8 IS NULL THEN pg_snapshot_xmax((SELECT s FROM snap)) ELSE coalesce(
                (SELECT min(t.writer_xid) FROM popularity_engine.product_interactions t
                  WHERE t.id > %2$s AND (%1$s)
                    AND t.writer_xid > (SELECT t.writer_xid FROM popularity_engine.product_interactions t
                                         WHERE t.id > %2$s AND (%1$s)
                                         ORDER BY t.writer_xid OFFSET greatest($1 - 1, 0) LIMIT 1)),
                pg_snapshot_xmax((SELECT s FROM snap))) END AS b)$cte$, unaggregated, id_floor)
$$;
COMMENT ON FUNCTION popularity_engine.step_bound_cte(text, bigint) IS
  'Internal: SQL text of the CTE that cuts a refresh step at a transaction boundary after about max_rows log rows.';

-- Rows (alias t) of a log that a refresh has not aggregated yet, from its stored state: `log` is
-- product_interactions (refresh_popularity, refresh_user_preferences) or search_interactions
-- (refresh_popularity). Both refreshes share refresh_state's id floors (see rebase_if_restored).
CREATE FUNCTION popularity_engine.pending_rows_clause(consumer text, log text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN consumer = 'refresh_popularity' AND log = 'product_interactions' THEN
            popularity_engine.unaggregated_rows_clause(r.legacy_interaction_id_floor,
                r.aggregated_snapshot, r.legacy_snapshot, NULL)
        WHEN consumer = 'refresh_popularity' AND log = 'search_interactions' THEN
            popularity_engine.unaggregated_rows_clause(r.legacy_search_id_floor,
                r.aggregated_snapshot, r.legacy_snapshot, NULL)
        WHEN consumer = 'refresh_user_preferences' AND log = 'product_interactions' THEN
            popularity_engine.unaggregated_rows_clause(r.legacy_interaction_id_floor,
                p.aggregated_snapshot, p.legacy_snapshot, NULL)
        ELSE 'false' END
      FROM popularity_engine.refresh_state r, popularity_engine.preference_state p
$$;
COMMENT ON FUNCTION popularity_engine.pending_rows_clause(text, text) IS
  'Internal: SQL condition selecting the rows (alias t) of a log (product_interactions or search_interactions) that a refresh (refresh_popularity or refresh_user_preferences) has not aggregated yet; false for a pair that does not exist.';

-- as in a fresh install, where finalize.sql revokes EXECUTE on every function from PUBLIC
REVOKE EXECUTE ON FUNCTION popularity_engine.snapshot_with_running(pg_snapshot, xid8),
                          popularity_engine.step_bound_cte(text, bigint),
                          popularity_engine.pending_rows_clause(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION popularity_engine.unaggregated_anywhere_clause() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('(%s) OR (%s)',
        popularity_engine.pending_rows_clause('refresh_popularity', 'product_interactions'),
        popularity_engine.pending_rows_clause('refresh_user_preferences', 'product_interactions'))
$$;

CREATE OR REPLACE FUNCTION popularity_engine.ensure_partitions(
    since timestamptz DEFAULT NULL, weeks_ahead integer DEFAULT 4)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_week    timestamptz;
    v_name    text;
    v_created integer := 0;
    v_moved   bigint;
    v_moving  boolean;
BEGIN
    IF weeks_ahead IS NULL OR weeks_ahead < 1 OR weeks_ahead > 52 THEN
        RAISE EXCEPTION 'popularity_engine.ensure_partitions: weeks_ahead = % is not allowed: expected 1 to 52', weeks_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_week IN
        SELECT w FROM generate_series(
                   date_trunc('week', coalesce(since, now()), 'UTC'),
                   date_trunc('week', now(), 'UTC') + make_interval(weeks => weeks_ahead),
                   interval '168 hours') AS w
    LOOP
        v_name := 'product_interactions_p' || to_char(v_week AT TIME ZONE 'UTC', 'YYYYMMDD');
        CONTINUE WHEN to_regclass('popularity_engine.' || quote_ident(v_name)) IS NOT NULL;
        -- rows of that week already in the default partition must leave it before the week's
        -- partition can exist; they are moved with writer_xid and ids unchanged, so aggregation
        -- is unaffected
        v_moving := EXISTS (SELECT 1 FROM popularity_engine.product_interactions_default
                             WHERE occurred_at >= v_week AND occurred_at < v_week + interval '168 hours');
        IF v_moving THEN
            LOCK TABLE popularity_engine.product_interactions IN ACCESS EXCLUSIVE MODE;
            CREATE TEMP TABLE pe_moving ON COMMIT DROP AS
                SELECT * FROM popularity_engine.product_interactions_default
                 WHERE occurred_at >= v_week AND occurred_at < v_week + interval '168 hours';
            DELETE FROM popularity_engine.product_interactions_default
             WHERE occurred_at >= v_week AND occurred_at < v_week + interval '168 hours';
        END IF;
        EXECUTE format('CREATE TABLE popularity_engine.%I PARTITION OF popularity_engine.product_interactions
                        FOR VALUES FROM (%L) TO (%L)', v_name, v_week, v_week + interval '168 hours');
        IF v_moving THEN
            INSERT INTO popularity_engine.product_interactions SELECT * FROM pg_temp.pe_moving;
            GET DIAGNOSTICS v_moved = ROW_COUNT;
            DROP TABLE pg_temp.pe_moving;
            RAISE NOTICE 'popularity_engine: moved % rows from the default partition into %', v_moved, v_name;
        END IF;
        PERFORM popularity_engine.index_log_partition(('popularity_engine.' || quote_ident(v_name))::regclass);
        EXECUTE format('COMMENT ON TABLE popularity_engine.%I IS %L', v_name,
                       'Interactions of the week from ' || to_char(v_week AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ' (UTC).');
        v_created := v_created + 1;
    END LOOP;
    RETURN v_created;
END
$fn$;

CREATE OR REPLACE FUNCTION popularity_engine.cleanup_interactions_step(
    retention interval, OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $proc$
#variable_conflict use_variable
DECLARE
    v_keep      interval;
    v_cutoff    timestamptz;
    v_part      record;
    v_pending   bigint;
    v_dropped   integer := 0;
    v_kept      text[] := '{}';
    v_rows      bigint := 0;
    v_n         bigint;
    v_created   integer;
    v_clause    text;
BEGIN
    -- one cleanup at a time (two would race to create the same partitions); a second one waits
    PERFORM pg_advisory_xact_lock(hashtext('popularity_engine.cleanup_interactions'));
    v_keep := coalesce(retention, make_interval(secs => popularity_engine.retention_seconds()));
    IF v_keep < interval '0' THEN
        RAISE EXCEPTION 'popularity_engine.cleanup_interactions: retention % is not allowed: expected a positive interval', v_keep
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- trending reads the raw events of its window: never drop those
    v_keep := greatest(v_keep, make_interval(secs => popularity_engine.trending_window_seconds()) + interval '1 day');
    v_cutoff := now() - v_keep;
    v_created := popularity_engine.ensure_partitions(v_cutoff, 4);
    v_clause := popularity_engine.unaggregated_anywhere_clause();

    -- whole weekly partitions that end before the cutoff, once everything in them is aggregated
    FOR v_part IN
        SELECT c.oid::regclass AS rel, c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'popularity_engine.product_interactions'::regclass
           AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
         ORDER BY 3
    LOOP
        CONTINUE WHEN v_part.upper_bound IS NULL OR v_part.upper_bound > v_cutoff;
        EXECUTE format('SELECT count(*) FROM %s t WHERE %s', v_part.rel, v_clause) INTO v_pending;
        IF v_pending > 0 THEN
            v_kept := v_kept || format('%s (%s rows not aggregated yet)', v_part.relname, v_pending);
            CONTINUE;
        END IF;
        EXECUTE format('SELECT count(*) FROM %s', v_part.rel) INTO v_n;
        EXECUTE format('DROP TABLE %s', v_part.rel);
        v_rows := v_rows + v_n;
        v_dropped := v_dropped + 1;
    END LOOP;

    -- old rows in the default partition, and old searches, once aggregated
    EXECUTE format('DELETE FROM popularity_engine.product_interactions_default t
                     WHERE t.occurred_at < %L AND NOT (%s)', v_cutoff, v_clause);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_rows := v_rows + v_n;
    EXECUTE format('DELETE FROM popularity_engine.search_interactions t WHERE t.occurred_at < %L AND NOT (%s)',
                   v_cutoff, popularity_engine.pending_rows_clause('refresh_popularity', 'search_interactions'));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_rows := v_rows + v_n;
    DELETE FROM popularity_engine.interaction_event_ids WHERE recorded_at < v_cutoff;
    DELETE FROM popularity_engine.popularity_hourly WHERE bucket_hour < v_cutoff;
    DELETE FROM popularity_engine.search_hourly WHERE bucket_hour < v_cutoff;
    DELETE FROM popularity_engine.job_runs WHERE started_at < now() - greatest(v_keep, interval '30 days');

    processed := v_rows;
    more := false;
    note := format('kept %s; dropped %s partitions, %s rows older than %s; created %s partitions%s',
                   v_keep, v_dropped, v_rows, v_cutoff, v_created,
                   CASE WHEN cardinality(v_kept) > 0 THEN '; waiting for a refresh: ' || array_to_string(v_kept, ', ') ELSE '' END);
END
$proc$;

CREATE OR REPLACE FUNCTION popularity_engine.pending_interactions(consumer text) RETURNS bigint
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

CREATE OR REPLACE FUNCTION popularity_engine.refresh_popularity_step(
    as_of timestamptz, max_rows bigint,
    OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $proc$
#variable_conflict use_variable
DECLARE
    v_state     popularity_engine.refresh_state;
    v_snap      pg_snapshot;
    v_own_xid   xid8 := pg_current_xact_id_if_assigned();
    v_new       bigint;
    v_searches  bigint;
    v_h         double precision := popularity_engine.trending_half_life_seconds();
    v_w_secs    double precision := popularity_engine.trending_window_seconds();
    v_window    interval;
    v_sig       text := popularity_engine.weights_signature();
    v_landmark  timestamptz;
    v_full      boolean;
    v_reason    text;
    v_bound     xid8;
    v_waited    timestamptz;
    v_waited_note text := '';
    v_any_rows  boolean;
    v_any_searches boolean;
    v_log_clause text;
    v_search_clause text;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'popularity_engine.refresh_popularity: as_of must be a finite timestamp'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_window := make_interval(secs => v_w_secs);
    PERFORM popularity_engine.rebase_if_restored();

    -- One refresh at a time: a second one waits here, then sees what the first committed.
    SELECT * INTO v_state FROM popularity_engine.refresh_state FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        v_waited := clock_timestamp();
        SELECT * INTO v_state FROM popularity_engine.refresh_state FOR UPDATE;
        v_waited_note := format('waited %s s for a concurrent refresh; ',
                                round(extract(epoch FROM clock_timestamp() - v_waited)::numeric, 3));
    END IF;

    -- Kept for the session (emptied at commit) rather than dropped: statements that use them keep
    -- their plans from one refresh to the next, which is most of a refresh's cost when little is new.
    IF to_regclass('pg_temp.pe_delta') IS NULL THEN
        -- interaction_type as text: a column of the extension's type would make DROP EXTENSION
        -- fail while any session that refreshed is still open.
        CREATE TEMP TABLE pe_delta (
            product_id bigint, interaction_type text,
            event_value double precision, occurred_at timestamptz, counted boolean
        ) ON COMMIT DELETE ROWS;
    END IF;
    IF to_regclass('pg_temp.pe_search_delta') IS NULL THEN
        CREATE TEMP TABLE pe_search_delta (product_id bigint, occurred_at timestamptz)
            ON COMMIT DELETE ROWS;
    END IF;
    DELETE FROM pg_temp.pe_delta;
    DELETE FROM pg_temp.pe_search_delta;

    -- The log rows (alias t) and searches that the stored state has not aggregated yet.
    v_log_clause := popularity_engine.unaggregated_rows_clause(v_state.legacy_interaction_id_floor,
        v_state.aggregated_snapshot, v_state.legacy_snapshot, v_own_xid);
    v_search_clause := popularity_engine.unaggregated_rows_clause(v_state.legacy_search_id_floor,
        v_state.aggregated_snapshot, v_state.legacy_snapshot, v_own_xid);

    -- Nothing new is the common case of a frequent schedule. A cheap probe, whose snapshot is
    -- taken by the same statement that looks, says so; then the stored snapshot simply advances
    -- to it, and the planning and execution of the statement below is saved. (The xids are
    -- written into the probe as literals: as parameters the planner cannot see that they
    -- select almost nothing, and scans every partition.)
    EXECUTE format($sql$
        SELECT pg_current_snapshot(),
               EXISTS (SELECT 1 FROM popularity_engine.product_interactions t
                        WHERE t.product_id IS NOT NULL AND (%1$s)),
               EXISTS (SELECT 1 FROM popularity_engine.search_interactions t WHERE %2$s)$sql$,
        v_log_clause, v_search_clause)
    INTO v_snap, v_any_rows, v_any_searches;

    -- Read both logs and capture the snapshot in ONE statement: exactly what it sees is aggregated.
    -- Rows of this very transaction are left for a refresh after it commits (it may add more).
    -- With max_rows, the step stops at a transaction boundary (xid `bound`): rows written by
    -- transactions at or after it wait for the next step, and the stored snapshot is cut there.
    IF v_any_rows OR v_any_searches THEN
        EXECUTE format($sql$
            WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
            %5$s,
            moved AS (
                INSERT INTO pg_temp.pe_delta
                SELECT t.product_id, t.interaction_type::text, t.event_value, t.occurred_at,
                       NOT (t.interaction_type = 'wishlist' AND t.event_value <> 1)
                  FROM popularity_engine.product_interactions t
                 WHERE t.product_id IS NOT NULL AND (%1$s)
                   AND (t.id <= %3$s OR t.writer_xid < (SELECT b FROM bound))
                RETURNING 1),
            searched AS (
                INSERT INTO pg_temp.pe_search_delta
                SELECT r.product_id, t.occurred_at
                  FROM popularity_engine.search_interactions t
                 CROSS JOIN LATERAL unnest(t.result_product_ids) AS r(product_id)
                 WHERE (%2$s) AND (t.id <= %4$s OR t.writer_xid < (SELECT b FROM bound))
                RETURNING 1)
            SELECT (SELECT s FROM snap), (SELECT b FROM bound),
                   (SELECT count(*) FROM moved), (SELECT count(*) FROM searched)$sql$,
            v_log_clause, v_search_clause,
            v_state.legacy_interaction_id_floor, v_state.legacy_search_id_floor,
            popularity_engine.step_bound_cte(v_log_clause, v_state.legacy_interaction_id_floor))
        USING max_rows
        INTO v_snap, v_bound, v_new, v_searches;
        more := v_bound < pg_snapshot_xmax(v_snap);
        v_snap := popularity_engine.snapshot_cut(v_snap, v_bound);
    ELSE
        v_new := 0;
        v_searches := 0;
        more := false;
    END IF;

    -- The stored snapshot must treat this transaction as still running, so that its rows are
    -- picked up by the first refresh after it commits (an xid at or past xmax already is).
    v_snap := popularity_engine.snapshot_with_running(v_snap, v_own_xid);
    IF v_new + v_searches > 0 THEN
        ANALYZE pg_temp.pe_delta;

        -- Totals per product and type, then hourly buckets.
        INSERT INTO popularity_engine.product_type_totals AS t (product_id, interaction_type, events, value_sum)
        SELECT d.product_id, d.interaction_type::popularity_engine.interaction_type, count(*), sum(d.event_value)
          FROM pg_temp.pe_delta d WHERE d.counted GROUP BY 1, 2
        ON CONFLICT (product_id, interaction_type) DO UPDATE
           SET events = t.events + excluded.events, value_sum = t.value_sum + excluded.value_sum;

        INSERT INTO popularity_engine.popularity_hourly AS h
               (product_id, bucket_hour, interaction_type, events, value_sum, decay_sum)
        SELECT d.product_id, date_trunc('hour', d.occurred_at, 'UTC'),
               d.interaction_type::popularity_engine.interaction_type, count(*),
               sum(d.event_value),
               sum(power(2::float8, extract(epoch FROM d.occurred_at - date_trunc('hour', d.occurred_at, 'UTC')) / v_h))
          FROM pg_temp.pe_delta d WHERE d.counted GROUP BY 1, 2, 3
        ON CONFLICT (bucket_hour, product_id, interaction_type) DO UPDATE
           SET events = h.events + excluded.events, value_sum = h.value_sum + excluded.value_sum,
               decay_sum = h.decay_sum + excluded.decay_sum;

        INSERT INTO popularity_engine.search_hourly AS h (product_id, bucket_hour, appearances)
        SELECT d.product_id, date_trunc('hour', d.occurred_at, 'UTC'), count(*)
          FROM pg_temp.pe_search_delta d GROUP BY 1, 2
        ON CONFLICT (bucket_hour, product_id) DO UPDATE SET appearances = h.appearances + excluded.appearances;
    END IF;

    v_full := v_state.weights_signature IS DISTINCT FROM v_sig;
    v_reason := CASE
        WHEN v_state.as_of IS NULL THEN 'first refresh'
        WHEN as_of < v_state.as_of THEN 'as_of moved backwards'
        WHEN as_of - v_state.as_of > v_window THEN 'as_of jumped by more than the trending window'
        WHEN v_state.trending_half_life IS DISTINCT FROM make_interval(secs => v_h) THEN 'trending_half_life changed'
        WHEN v_state.trending_window IS DISTINCT FROM v_window THEN 'trending_window changed'
        WHEN v_full THEN 'weights changed'
        WHEN extract(epoch FROM as_of - v_state.landmark) / v_h > 60 THEN 'landmark rebase'
    END;
    v_landmark := CASE WHEN v_reason IS NULL THEN v_state.landmark ELSE as_of END;

    -- One upsert per changed product: the new events' counters and score (with the current
    -- weights), their search appearances and, unless trending is rebuilt below, the trending
    -- change: new events inside the window at as_of, plus events aggregated earlier that were in
    -- the future at the previous as_of, minus those that slid out of the window.
    WITH changes AS (
        SELECT d.product_id,
               count(*) FILTER (WHERE d.counted AND w.counter = 'search_click_count') AS search_click_count,
               count(*) FILTER (WHERE d.counted AND w.counter = 'view_count') AS view_count,
               count(*) FILTER (WHERE d.counted AND w.counter = 'click_count') AS click_count,
               count(*) FILTER (WHERE d.counted AND w.counter = 'wishlist_count') AS wishlist_count,
               count(*) FILTER (WHERE d.counted AND w.counter = 'cart_add_count') AS cart_add_count,
               count(*) FILTER (WHERE d.counted AND w.counter = 'order_count') AS order_count,
               count(*) FILTER (WHERE d.counted AND w.counter = 'review_count') AS review_count,
               coalesce(sum(d.event_value) FILTER (WHERE d.counted AND w.counter = 'review_count'), 0) AS rating_sum,
               coalesce(sum(w.popularity_weight) FILTER (WHERE d.counted), 0) AS popularity_score,
               coalesce(sum(w.popularity_weight * power(2::float8, extract(epoch FROM d.occurred_at - v_landmark) / v_h))
                        FILTER (WHERE d.counted AND w.popularity_weight > 0 AND v_reason IS NULL
                                  AND d.occurred_at BETWEEN as_of - v_window AND as_of), 0) AS trend_fwd,
               count(*) FILTER (WHERE d.counted AND w.popularity_weight > 0 AND v_reason IS NULL
                                  AND d.occurred_at BETWEEN as_of - v_window AND as_of) AS trend_events,
               0::bigint AS search_count,
               max(d.occurred_at) AS last_at
          FROM pg_temp.pe_delta d
          JOIN popularity_engine.interaction_weights w ON w.interaction_type::text = d.interaction_type
         GROUP BY d.product_id
        UNION ALL
        SELECT d.product_id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), NULL
          FROM pg_temp.pe_search_delta d GROUP BY 1
        UNION ALL
        SELECT t.product_id, 0, 0, 0, 0, 0, 0, 0, 0, 0,
               sign * w.popularity_weight * power(2::float8, extract(epoch FROM t.occurred_at - v_landmark) / v_h),
               sign, 0, NULL
          FROM popularity_engine.product_interactions t
          JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
         CROSS JOIN LATERAL (SELECT CASE WHEN t.occurred_at > v_state.as_of THEN 1 ELSE -1 END AS sign) AS x
         WHERE v_reason IS NULL
           AND ((t.occurred_at > v_state.as_of AND t.occurred_at <= as_of)
                OR (t.occurred_at >= v_state.as_of - v_window AND t.occurred_at < as_of - v_window))
           AND t.product_id IS NOT NULL AND w.popularity_weight > 0
           AND NOT (t.interaction_type = 'wishlist' AND t.event_value <> 1)
           AND popularity_engine.row_aggregated(t.id, t.writer_xid, v_state.aggregated_snapshot,
                                                v_state.legacy_interaction_id_floor, v_state.legacy_snapshot)
    )
    INSERT INTO popularity_engine.product_stats AS s
           (product_id, search_click_count, view_count, click_count, wishlist_count, cart_add_count,
            order_count, review_count, rating_sum, popularity_score, trend_fwd, trend_events,
            search_count, last_interaction, last_updated, category, brand)
    SELECT c.product_id, sum(c.search_click_count), sum(c.view_count), sum(c.click_count),
           sum(c.wishlist_count), sum(c.cart_add_count), sum(c.order_count), sum(c.review_count),
           sum(c.rating_sum), sum(c.popularity_score), sum(c.trend_fwd), sum(c.trend_events),
           sum(c.search_count), max(c.last_at), now(),
           -- looked up per product through the catalog's key: a join hashed the whole catalog
           (SELECT cat.category FROM popularity_engine.catalog cat WHERE cat.product_id = c.product_id),
           (SELECT cat.brand FROM popularity_engine.catalog cat WHERE cat.product_id = c.product_id)
      FROM changes c
     GROUP BY c.product_id
    ON CONFLICT (product_id) DO UPDATE
       SET search_click_count = s.search_click_count + excluded.search_click_count,
           view_count = s.view_count + excluded.view_count,
           click_count = s.click_count + excluded.click_count,
           wishlist_count = s.wishlist_count + excluded.wishlist_count,
           cart_add_count = s.cart_add_count + excluded.cart_add_count,
           order_count = s.order_count + excluded.order_count,
           review_count = s.review_count + excluded.review_count,
           rating_sum = s.rating_sum + excluded.rating_sum,
           popularity_score = s.popularity_score + excluded.popularity_score,
           trend_events = s.trend_events + excluded.trend_events,
           -- an empty window is exactly zero, whatever rounding the sums accumulated
           trend_fwd = CASE WHEN s.trend_events + excluded.trend_events = 0 THEN 0
                            ELSE s.trend_fwd + excluded.trend_fwd END,
           search_count = s.search_count + excluded.search_count,
           last_interaction = greatest(s.last_interaction, excluded.last_interaction),
           last_updated = now(), category = excluded.category, brand = excluded.brand;

    IF v_full THEN
        -- weights or counters were edited: every product's counters and score from the totals
        UPDATE popularity_engine.product_stats s
           SET search_click_count = r.search_click_count, view_count = r.view_count,
               click_count = r.click_count, wishlist_count = r.wishlist_count,
               cart_add_count = r.cart_add_count, order_count = r.order_count,
               review_count = r.review_count, rating_sum = r.rating_sum,
               popularity_score = r.popularity_score, last_updated = now()
          FROM (SELECT t.product_id,
                       coalesce(sum(t.events) FILTER (WHERE w.counter = 'search_click_count'), 0) AS search_click_count,
                       coalesce(sum(t.events) FILTER (WHERE w.counter = 'view_count'), 0) AS view_count,
                       coalesce(sum(t.events) FILTER (WHERE w.counter = 'click_count'), 0) AS click_count,
                       coalesce(sum(t.events) FILTER (WHERE w.counter = 'wishlist_count'), 0) AS wishlist_count,
                       coalesce(sum(t.events) FILTER (WHERE w.counter = 'cart_add_count'), 0) AS cart_add_count,
                       coalesce(sum(t.events) FILTER (WHERE w.counter = 'order_count'), 0) AS order_count,
                       coalesce(sum(t.events) FILTER (WHERE w.counter = 'review_count'), 0) AS review_count,
                       coalesce(sum(t.value_sum) FILTER (WHERE w.counter = 'review_count'), 0) AS rating_sum,
                       coalesce(sum(t.events * w.popularity_weight), 0) AS popularity_score
                  FROM popularity_engine.product_type_totals t
                  JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
                 GROUP BY t.product_id) r
         WHERE s.product_id = r.product_id;
    END IF;

    IF v_reason IS NOT NULL THEN
        -- trending from scratch over the window at as_of, against the new landmark
        UPDATE popularity_engine.product_stats SET trend_fwd = 0, trend_events = 0
         WHERE trend_events <> 0 OR trend_fwd <> 0;
        INSERT INTO popularity_engine.product_stats AS s (product_id, trend_fwd, trend_events)
        SELECT t.product_id,
               sum(w.popularity_weight * power(2::float8, extract(epoch FROM t.occurred_at - v_landmark) / v_h)),
               count(*)
          FROM popularity_engine.product_interactions t
          JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
         WHERE t.occurred_at BETWEEN as_of - v_window AND as_of
           AND t.product_id IS NOT NULL AND w.popularity_weight > 0
           AND NOT (t.interaction_type = 'wishlist' AND t.event_value <> 1)
           AND popularity_engine.row_aggregated(t.id, t.writer_xid, v_snap,
                                                v_state.legacy_interaction_id_floor, NULL)
         GROUP BY 1
        ON CONFLICT (product_id) DO UPDATE
           SET trend_fwd = excluded.trend_fwd, trend_events = excluded.trend_events;
    END IF;

    IF v_state.trending_half_life IS DISTINCT FROM make_interval(secs => v_h) THEN
        -- decay_sum of the buckets that trending can still reach, recomputed for the new H
        UPDATE popularity_engine.popularity_hourly h
           SET decay_sum = r.decay_sum
          FROM (SELECT t.product_id, date_trunc('hour', t.occurred_at, 'UTC') AS bucket_hour,
                       t.interaction_type,
                       sum(power(2::float8, extract(epoch FROM t.occurred_at
                                                    - date_trunc('hour', t.occurred_at, 'UTC')) / v_h)) AS decay_sum
                  FROM popularity_engine.product_interactions t
                 WHERE t.occurred_at >= date_trunc('hour', as_of - v_window, 'UTC')
                   AND t.product_id IS NOT NULL
                   AND NOT (t.interaction_type = 'wishlist' AND t.event_value <> 1)
                   AND popularity_engine.row_aggregated(t.id, t.writer_xid, v_snap,
                                                        v_state.legacy_interaction_id_floor, NULL)
                 GROUP BY 1, 2, 3) r
         WHERE h.product_id = r.product_id AND h.bucket_hour = r.bucket_hour
           AND h.interaction_type = r.interaction_type;
    END IF;

    UPDATE popularity_engine.refresh_state
       SET aggregated_snapshot = v_snap,
           legacy_snapshot = NULL,
           as_of = refresh_popularity_step.as_of,
           landmark = v_landmark,
           trending_half_life = make_interval(secs => v_h),
           trending_window = v_window,
           weights_signature = v_sig,
           last_refresh = clock_timestamp();

    processed := v_new + v_searches;
    note := format('%s%s interactions and %s search results aggregated; trending %s', v_waited_note,
                   v_new, v_searches, coalesce('rebuilt (' || v_reason || ')', 'updated incrementally'));
END
$proc$;

CREATE OR REPLACE FUNCTION popularity_engine.aggregation_lag(
    OUT pending_interactions bigint, OUT pending_searches bigint,
    OUT last_refresh timestamptz, OUT refreshed_as_of timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_state popularity_engine.refresh_state;
BEGIN
    SELECT * INTO v_state FROM popularity_engine.refresh_state;
    pending_interactions := popularity_engine.pending_interactions('refresh_popularity');
    EXECUTE format('SELECT count(*) FROM popularity_engine.search_interactions t WHERE %s',
                   popularity_engine.pending_rows_clause('refresh_popularity', 'search_interactions'))
       INTO pending_searches;
    last_refresh := v_state.last_refresh;
    refreshed_as_of := v_state.as_of;
END
$fn$;

CREATE OR REPLACE FUNCTION popularity_engine.refresh_user_preferences_step(
    as_of timestamptz, max_rows bigint,
    OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $proc$
#variable_conflict use_variable
DECLARE
    v_state    popularity_engine.preference_state;
    v_floors   popularity_engine.refresh_state;
    v_snap     pg_snapshot;
    v_own_xid  xid8 := pg_current_xact_id_if_assigned();
    v_new      bigint;
    v_h        double precision := popularity_engine.preference_half_life_seconds();
    v_sig      text := popularity_engine.affinity_weights_signature();
    v_landmark timestamptz;
    v_rebuild  text;
    v_bound    xid8;
    v_log_clause text;
    v_waited_note text := '';
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'popularity_engine.refresh_user_preferences: as_of must be a finite timestamp'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM popularity_engine.rebase_if_restored();
    SELECT * INTO v_state FROM popularity_engine.preference_state FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        v_waited_note := clock_timestamp()::text;
        SELECT * INTO v_state FROM popularity_engine.preference_state FOR UPDATE;
        v_waited_note := format('waited %s s for a concurrent refresh; ',
            round(extract(epoch FROM clock_timestamp() - v_waited_note::timestamptz)::numeric, 3));
    END IF;
    SELECT * INTO v_floors FROM popularity_engine.refresh_state;

    CREATE TEMP TABLE pe_user_delta (
        user_id bigint, product_id bigint, occurred_at timestamptz, aw double precision,
        category text, brand text
    ) ON COMMIT DROP;

    v_log_clause := popularity_engine.unaggregated_rows_clause(v_floors.legacy_interaction_id_floor,
        v_state.aggregated_snapshot, v_state.legacy_snapshot, v_own_xid);

    -- New rows and the snapshot, in one statement, cut at a transaction boundary after about
    -- max_rows rows (see refresh_popularity_step).
    EXECUTE format($sql$
        WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
        %3$s,
        moved AS (
            INSERT INTO pg_temp.pe_user_delta
            SELECT t.user_id, t.product_id, t.occurred_at,
                   CASE WHEN t.interaction_type = 'wishlist' AND t.event_value <> 1 THEN 0
                        ELSE w.affinity_weight END,
                   c.category, c.brand
              FROM popularity_engine.product_interactions t
              JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
              LEFT JOIN popularity_engine.catalog c ON c.product_id = t.product_id
             WHERE t.user_id IS NOT NULL AND t.product_id IS NOT NULL AND (%1$s)
               AND (t.id <= %2$s OR t.writer_xid < (SELECT b FROM bound))
            RETURNING 1)
        SELECT (SELECT s FROM snap), (SELECT b FROM bound), (SELECT count(*) FROM moved)$sql$,
        v_log_clause, v_floors.legacy_interaction_id_floor,
        popularity_engine.step_bound_cte(v_log_clause, v_floors.legacy_interaction_id_floor))
    USING max_rows
    INTO v_snap, v_bound, v_new;
    more := v_bound < pg_snapshot_xmax(v_snap);
    v_snap := popularity_engine.snapshot_cut(v_snap, v_bound);
    v_snap := popularity_engine.snapshot_with_running(v_snap, v_own_xid);
    ANALYZE pg_temp.pe_user_delta;

    v_rebuild := CASE
        WHEN v_state.landmark IS NULL THEN NULL  -- first refresh: the delta is everything
        WHEN v_state.half_life IS DISTINCT FROM make_interval(secs => v_h) THEN 'preference_half_life changed'
        WHEN v_state.weights_signature IS DISTINCT FROM v_sig THEN 'affinity weights changed'
    END;
    v_landmark := coalesce(v_state.landmark, as_of);

    IF v_rebuild IS NULL AND extract(epoch FROM as_of - v_landmark) / v_h > 60 THEN
        -- move the landmark before 2^x loses range: a uniform rescale, no rescan
        UPDATE popularity_engine.user_affinity_sums
           SET fwd = fwd * power(2::float8, extract(epoch FROM v_landmark - as_of) / v_h);
        v_landmark := as_of;
    END IF;

    -- Profiles count every interaction with a product, whatever its weight.
    INSERT INTO popularity_engine.user_profiles AS p
           (user_id, interaction_count, first_interaction, last_interaction, updated_at)
    SELECT d.user_id, count(*), min(d.occurred_at), max(d.occurred_at), now()
      FROM pg_temp.pe_user_delta d GROUP BY 1
    ON CONFLICT (user_id) DO UPDATE
       SET interaction_count = p.interaction_count + excluded.interaction_count,
           first_interaction = least(p.first_interaction, excluded.first_interaction),
           last_interaction = greatest(p.last_interaction, excluded.last_interaction),
           updated_at = now();

    IF v_rebuild IS NOT NULL THEN
        -- weights or half-life changed: affinities and item weights from the retained log
        v_landmark := as_of;
        DELETE FROM popularity_engine.user_affinity_sums;
        DELETE FROM popularity_engine.user_item_weights;
        TRUNCATE pg_temp.pe_user_delta;
        INSERT INTO pg_temp.pe_user_delta
        SELECT t.user_id, t.product_id, t.occurred_at,
               CASE WHEN t.interaction_type = 'wishlist' AND t.event_value <> 1 THEN 0
                    ELSE w.affinity_weight END,
               c.category, c.brand
          FROM popularity_engine.product_interactions t
          JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
          LEFT JOIN popularity_engine.catalog c ON c.product_id = t.product_id
         WHERE t.user_id IS NOT NULL AND t.product_id IS NOT NULL
           AND popularity_engine.row_aggregated(t.id, t.writer_xid, v_snap,
                                                v_floors.legacy_interaction_id_floor, NULL);
        ANALYZE pg_temp.pe_user_delta;
    END IF;

    INSERT INTO popularity_engine.user_item_weights AS u (user_id, product_id, weight, events, last_at)
    SELECT d.user_id, d.product_id, sum(d.aw), count(*), max(d.occurred_at)
      FROM pg_temp.pe_user_delta d WHERE d.aw > 0 GROUP BY 1, 2
    ON CONFLICT (user_id, product_id) DO UPDATE
       SET weight = u.weight + excluded.weight, events = u.events + excluded.events,
           last_at = greatest(u.last_at, excluded.last_at);

    INSERT INTO popularity_engine.user_affinity_sums AS a (user_id, dimension, value, fwd, events, updated_at)
    SELECT x.user_id, x.dimension, x.value,
           sum(x.aw * power(2::float8, extract(epoch FROM x.occurred_at - v_landmark) / v_h)), count(*), now()
      FROM (SELECT d.user_id, 'category' AS dimension, d.category AS value, d.aw, d.occurred_at
              FROM pg_temp.pe_user_delta d WHERE d.category IS NOT NULL AND d.aw > 0
            UNION ALL
            SELECT d.user_id, 'brand', d.brand, d.aw, d.occurred_at
              FROM pg_temp.pe_user_delta d WHERE d.brand IS NOT NULL AND d.aw > 0) x
     GROUP BY 1, 2, 3
    ON CONFLICT (user_id, dimension, value) DO UPDATE
       SET fwd = a.fwd + excluded.fwd, events = a.events + excluded.events, updated_at = now();

    UPDATE popularity_engine.preference_state
       SET aggregated_snapshot = v_snap,
           legacy_snapshot = NULL,
           as_of = refresh_user_preferences_step.as_of,
           landmark = v_landmark,
           half_life = make_interval(secs => v_h),
           weights_signature = v_sig,
           last_refresh = clock_timestamp();

    processed := v_new;
    note := format('%s%s interactions aggregated into user preferences%s', v_waited_note, v_new,
                   coalesce('; rebuilt from the log (' || v_rebuild || ')', ''));
END
$proc$;

CREATE OR REPLACE FUNCTION popularity_engine.popular_products(
    mode popularity_engine.popularity_mode DEFAULT 'overall',
    time_window interval DEFAULT NULL,
    category text DEFAULT NULL,
    n integer DEFAULT 20)
RETURNS TABLE (rank integer, product_id bigint, score double precision, product_category text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_variable
DECLARE
    v_counter   text;
    v_score     text;
    v_since     timestamptz;
    v_state     popularity_engine.refresh_state;
BEGIN
    IF mode IS NULL THEN
        RAISE EXCEPTION 'popularity_engine.popular_products: mode is required'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF n IS NULL OR n < 1 OR n > 10000 THEN
        RAISE EXCEPTION 'popularity_engine.popular_products: n = % is not allowed: expected 1 to 10000', n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF time_window IS NOT NULL AND time_window <= interval '0' THEN
        RAISE EXCEPTION 'popularity_engine.popular_products: time_window % is not allowed: expected a positive interval', time_window
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The counter (a product_stats column, and interaction_weights.counter) a mode ranks by.
    v_counter := CASE mode
        WHEN 'most_viewed' THEN 'view_count'
        WHEN 'most_carted' THEN 'cart_add_count'
        WHEN 'most_ordered' THEN 'order_count'
        WHEN 'most_searched' THEN 'search_click_count'
        WHEN 'most_wishlisted' THEN 'wishlist_count'
        WHEN 'top_rated' THEN 'review_count'
    END;

    IF time_window IS NULL THEN
        IF mode = 'trending' THEN
            SELECT * INTO v_state FROM popularity_engine.refresh_state;
            IF v_state.as_of IS NULL THEN
                RETURN;  -- never refreshed: nothing is trending yet
            END IF;
            RETURN QUERY
            SELECT (row_number() OVER (ORDER BY s.trend_fwd DESC, s.product_id))::integer,
                   s.product_id,
                   s.trend_fwd * power(2::float8, extract(epoch FROM v_state.landmark - v_state.as_of)
                                                  / extract(epoch FROM v_state.trending_half_life)),
                   c.category
              FROM popularity_engine.product_stats s
              LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
             WHERE s.trend_fwd > 0 AND s.trend_events > 0
               AND (popular_products.category IS NULL OR c.category = popular_products.category)
             ORDER BY s.trend_fwd DESC, s.product_id
             LIMIT n;
            RETURN;
        END IF;
        v_score := CASE mode
            WHEN 'overall' THEN 's.popularity_score'
            WHEN 'top_rated' THEN '(s.rating_sum / s.review_count)'
            ELSE 's.' || v_counter
        END;
        RETURN QUERY EXECUTE format($q$
            SELECT (row_number() OVER (ORDER BY %1$s DESC, s.product_id))::integer,
                   s.product_id, (%1$s)::float8, c.category
              FROM popularity_engine.product_stats s
              LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
             WHERE %2$s AND ($1 IS NULL OR c.category = $1)
             ORDER BY %1$s DESC, s.product_id
             LIMIT $2$q$,
            v_score,
            CASE mode WHEN 'top_rated' THEN 's.review_count > 0 AND s.rating_sum > 0'
                      ELSE v_score || ' > 0' END)
        USING category, n;
        RETURN;
    END IF;

    -- With a window: sum the hourly buckets from the start of the hour time_window ago.
    v_since := date_trunc('hour', now() - time_window, 'UTC');
    v_score := CASE
        WHEN mode = 'overall' THEN 'sum(h.events * w.popularity_weight)'
        WHEN mode = 'trending' THEN
            'sum(w.popularity_weight * h.decay_sum * power(2::float8, extract(epoch FROM h.bucket_hour - now())
                                                         / popularity_engine.trending_half_life_seconds()))
               FILTER (WHERE h.bucket_hour >= now() - make_interval(secs => popularity_engine.trending_window_seconds()))'
        WHEN mode = 'top_rated' THEN 'sum(h.value_sum) / nullif(sum(h.events), 0)'
        ELSE 'sum(h.events)::float8'
    END;
    -- The top n are chosen before the catalog join: joining every product of the window first
    -- made the planner hash the whole catalog (a 1 M-row scan per call).
    RETURN QUERY EXECUTE format($q$
        SELECT (row_number() OVER (ORDER BY x.score DESC, x.product_id))::integer,
               x.product_id, x.score, c.category
          FROM (SELECT h.product_id, (%1$s)::float8 AS score
                  FROM popularity_engine.popularity_hourly h
                  JOIN popularity_engine.interaction_weights w ON w.interaction_type = h.interaction_type
                 WHERE h.bucket_hour >= $1 AND h.bucket_hour <= now() %2$s %3$s
                 GROUP BY h.product_id
                HAVING (%1$s)::float8 > 0
                 ORDER BY 2 DESC, 1
                 LIMIT $4) x
          LEFT JOIN popularity_engine.catalog c ON c.product_id = x.product_id
         ORDER BY x.score DESC, x.product_id$q$,
        v_score,
        CASE WHEN v_counter IS NULL THEN '' ELSE 'AND w.counter = $2' END,
        CASE WHEN category IS NULL THEN '' ELSE
            'AND EXISTS (SELECT 1 FROM popularity_engine.catalog c
                          WHERE c.product_id = h.product_id AND c.category = $3)' END)
    USING v_since, v_counter, category, n;
END
$fn$;
