-- popularity_engine: refresh_popularity(as_of), the incremental aggregation procedure.
-- See the head of popularity.sql for how rows are aggregated exactly once.
--
-- trending_score = sum(w x 0.5^(hours_ago / H)) over events with 0 <= hours_ago <= W at as_of.
-- It is kept as a forward-decayed sum per product, trend_fwd = sum(w x 2^((t - L) / H)) against a
-- landmark L, so that time passing changes nothing stored: the product_popularity view
-- multiplies by 2^((L - as_of) / H). Each refresh only adds the new events, adds old events that
-- were in the future at the previous as_of and now are not, and subtracts the old events that
-- slid out of the window: work proportional to what changed, read through the index on
-- occurred_at. A full rebuild over the window happens on the first refresh, when as_of moves
-- backwards or jumps by more than the window, when H, W or the weights change, and when
-- (as_of - L) exceeds 60 half-lives (before 2^x could lose range).

-- One transaction's worth of refresh_popularity: at most about max_rows new log rows (whole
-- writing transactions; NULL = everything). `more` says whether rows are left for another step.
CREATE FUNCTION popularity_engine.refresh_popularity_step(
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
COMMENT ON FUNCTION popularity_engine.refresh_popularity_step(timestamptz, bigint) IS
  'Internal: one transaction of refresh_popularity (at most about max_rows new rows, whole transactions).';

CREATE PROCEDURE popularity_engine.refresh_popularity(
    as_of timestamptz DEFAULT now(), max_rows bigint DEFAULT 1000000)
LANGUAGE plpgsql AS $proc$
BEGIN
    CALL popularity_engine.run_job('refresh_popularity',
        pg_catalog.format('popularity_engine.refresh_popularity_step(%L::pg_catalog.timestamptz, $1)', as_of), max_rows);
END
$proc$;
COMMENT ON PROCEDURE popularity_engine.refresh_popularity(timestamptz, bigint) IS
  'Aggregates every committed interaction and search exactly once into product_popularity (counters, popularity_score, trending_score at as_of) and the hourly buckets. Incremental, idempotent, safe to run concurrently with writers and with itself (a second run waits, and says so in job_runs). Called on its own (as pg_cron does), it works through a backlog in transactions of about max_rows rows that commit one by one; inside a transaction block it does everything in that transaction. Logs every run, and every error, to job_runs.';


CREATE FUNCTION popularity_engine.aggregation_lag(
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
COMMENT ON FUNCTION popularity_engine.aggregation_lag() IS
  'How far product_popularity is behind the log: committed interactions (with a product) and searches that refresh_popularity has not aggregated yet, and when it last ran. Read-only; cost grows with the backlog, not the history.';
