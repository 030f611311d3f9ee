-- popularity_engine: refresh_popularity(as_of), the incremental aggregation procedure, as named
-- steps: read the delta, apply the per-type totals and hourly buckets, apply the product
-- counters and trending, rebuild what a settings change invalidated, store the state.
-- How rows are aggregated exactly once: exactly_once.sql.
--
-- trending_score = sum(w x 0.5^(hours_ago / H)) over events with 0 <= hours_ago <= W at as_of.
-- It is kept as a forward-decayed sum per product, trend_fwd = sum(w x decay_factor(t, L, H))
-- against a landmark L, so that time passing changes nothing stored: the product_popularity view
-- multiplies by decay_factor(L, as_of, H). Each refresh only adds the new events, adds old events
-- that were in the future at the previous as_of and now are not, and subtracts the old events
-- that slid out of the window: work proportional to what changed, read through the index on
-- occurred_at. A full rebuild over the window happens on the first refresh, when as_of moves
-- backwards or jumps by more than the window, when H, W or the weights change, and when
-- (as_of - L) exceeds 60 half-lives (before 2^x could lose range).
--
-- The step routines take the state's values as parameters and run with plan_cache_mode =
-- force_custom_plan: planned with the actual snapshot, the unaggregated() condition becomes
-- index conditions on writer_xid instead of a scan of every partition.

-- The delta tables live for the session (emptied at commit) rather than being dropped: the
-- statements that use them keep their plans from one refresh to the next. The type is text: a
-- column of the extension's type would make DROP EXTENSION fail while such a session is open.
CREATE FUNCTION popularity_engine.prepare_popularity_delta() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF to_regclass('pg_temp.pe_delta') IS NULL THEN
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
END
$fn$;
COMMENT ON FUNCTION popularity_engine.prepare_popularity_delta() IS
  'Internal: creates (once per session) and empties the delta tables of refresh_popularity.';

-- Whether either log has rows the state has not aggregated, and the snapshot it looked in
-- (when nothing is pending, the stored snapshot may simply advance to it). Nothing new is the
-- common case of a frequent schedule: the id marks usually say so without opening the log
-- (logs_unchanged_since), else a probe much cheaper to plan and run than the reading statement.
-- When ids were drawn since the marks, rows are pending (or rolled back): the probe is skipped.
-- STABLE: every statement runs in the caller's snapshot.
CREATE FUNCTION popularity_engine.popularity_pending(
    state popularity_engine.refresh_state, own_xid xid8, OUT snap pg_snapshot, OUT pending boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $fn$
DECLARE
    v_logs record;
BEGIN
    SELECT * INTO v_logs
      FROM popularity_engine.logs_unchanged_since(state.aggregated_snapshot, state.interaction_id_mark,
                                                  state.search_id_mark);
    IF (v_logs.unchanged AND state.legacy_snapshot IS NULL) OR v_logs.drawn THEN
        snap := v_logs.snap;
        pending := v_logs.drawn;
        RETURN;
    END IF;
    SELECT pg_current_snapshot(),
           EXISTS (SELECT 1 FROM popularity_engine.product_interactions t
                    WHERE t.product_id IS NOT NULL AND t.writer_xid IS DISTINCT FROM own_xid
                      AND popularity_engine.unaggregated(t.id, t.writer_xid, state.legacy_interaction_id_floor,
                                                         state.aggregated_snapshot, state.legacy_snapshot))
        OR EXISTS (SELECT 1 FROM popularity_engine.search_interactions t
                    WHERE t.writer_xid IS DISTINCT FROM own_xid
                      AND popularity_engine.unaggregated(t.id, t.writer_xid, state.legacy_search_id_floor,
                                                         state.aggregated_snapshot, state.legacy_snapshot))
      INTO snap, pending;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.popularity_pending(popularity_engine.refresh_state, xid8) IS
  'Internal: whether the interaction or search log holds rows that refresh_popularity has not aggregated (own_xid''s rows aside), with the snapshot of the statement that looked.';

-- Copies the rows of both logs that the state has not aggregated (own transaction aside, only
-- transactions before `bound` when given) into the delta tables, and returns the snapshot of
-- that same statement: exactly what it saw is aggregated.
CREATE FUNCTION popularity_engine.read_popularity_delta(
    state popularity_engine.refresh_state, own_xid xid8, bound xid8,
    OUT snap pg_snapshot, OUT interactions bigint, OUT searches bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $fn$
BEGIN
    WITH taken AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
    moved AS (
        INSERT INTO pg_temp.pe_delta
        SELECT t.product_id, t.interaction_type::text, t.event_value, t.occurred_at,
               popularity_engine.counts_for_popularity(t.interaction_type, t.event_value)
          FROM popularity_engine.product_interactions t
         WHERE t.product_id IS NOT NULL AND t.writer_xid IS DISTINCT FROM own_xid
           AND popularity_engine.unaggregated(t.id, t.writer_xid, state.legacy_interaction_id_floor,
                                              state.aggregated_snapshot, state.legacy_snapshot)
           AND (bound IS NULL OR t.id <= state.legacy_interaction_id_floor OR t.writer_xid < bound)
        RETURNING 1),
    searched AS (
        INSERT INTO pg_temp.pe_search_delta
        SELECT r.product_id, t.occurred_at
          FROM popularity_engine.search_interactions t
         CROSS JOIN LATERAL unnest(t.result_product_ids) AS r(product_id)
         WHERE t.writer_xid IS DISTINCT FROM own_xid
           AND popularity_engine.unaggregated(t.id, t.writer_xid, state.legacy_search_id_floor,
                                              state.aggregated_snapshot, state.legacy_snapshot)
           AND (bound IS NULL OR t.id <= state.legacy_search_id_floor OR t.writer_xid < bound)
        RETURNING 1)
    SELECT (SELECT s FROM taken), (SELECT count(*) FROM moved), (SELECT count(*) FROM searched)
      INTO snap, interactions, searches;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.read_popularity_delta(popularity_engine.refresh_state, xid8, xid8) IS
  'Internal: copies the unaggregated rows of both logs into the delta tables and returns the snapshot of the statement that read them.';

-- All-time events per product and type, then hourly buckets, from the delta.
CREATE FUNCTION popularity_engine.apply_popularity_totals(half_life_seconds double precision) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    INSERT INTO popularity_engine.product_type_totals AS t (product_id, interaction_type, events, value_sum)
    SELECT d.product_id, d.interaction_type::popularity_engine.interaction_type, count(*), sum(d.event_value)
      FROM pg_temp.pe_delta d WHERE d.counted GROUP BY 1, 2
    ON CONFLICT (product_id, interaction_type) DO UPDATE
       SET events = t.events + excluded.events, value_sum = t.value_sum + excluded.value_sum;

    INSERT INTO popularity_engine.popularity_hourly AS h
           (product_id, bucket_hour, interaction_type, events, value_sum, decay_sum)
    SELECT d.product_id, date_trunc('hour', d.occurred_at, 'UTC'),
           d.interaction_type::popularity_engine.interaction_type, count(*), sum(d.event_value),
           sum(popularity_engine.decay_factor(d.occurred_at, date_trunc('hour', d.occurred_at, 'UTC'),
                                              half_life_seconds))
      FROM pg_temp.pe_delta d WHERE d.counted GROUP BY 1, 2, 3
    ON CONFLICT (bucket_hour, product_id, interaction_type) DO UPDATE
       SET events = h.events + excluded.events, value_sum = h.value_sum + excluded.value_sum,
           decay_sum = h.decay_sum + excluded.decay_sum;

    INSERT INTO popularity_engine.search_hourly AS h (product_id, bucket_hour, appearances)
    SELECT d.product_id, date_trunc('hour', d.occurred_at, 'UTC'), count(*)
      FROM pg_temp.pe_search_delta d GROUP BY 1, 2
    ON CONFLICT (bucket_hour, product_id) DO UPDATE SET appearances = h.appearances + excluded.appearances;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.apply_popularity_totals(double precision) IS
  'Internal: adds the delta to product_type_totals, popularity_hourly and search_hourly.';

-- Why trending must be rebuilt from the window rather than updated incrementally (NULL: it
-- need not be).
CREATE FUNCTION popularity_engine.trending_rebuild_reason(
    state popularity_engine.refresh_state, new_as_of timestamptz, half_life_seconds double precision,
    window_seconds double precision, signature text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT CASE
        WHEN state.as_of IS NULL THEN 'first refresh'
        WHEN new_as_of < state.as_of THEN 'as_of moved backwards'
        WHEN new_as_of - state.as_of > make_interval(secs => window_seconds)
            THEN 'as_of jumped by more than the trending window'
        WHEN state.trending_half_life IS DISTINCT FROM make_interval(secs => half_life_seconds)
            THEN 'trending_half_life changed'
        WHEN state.trending_window IS DISTINCT FROM make_interval(secs => window_seconds)
            THEN 'trending_window changed'
        WHEN state.weights_signature IS DISTINCT FROM signature THEN 'weights changed'
        WHEN extract(epoch FROM new_as_of - state.landmark) / half_life_seconds > 60 THEN 'landmark rebase'
    END
$fn$;
COMMENT ON FUNCTION popularity_engine.trending_rebuild_reason(popularity_engine.refresh_state, timestamptz, double precision, double precision, text) IS
  'Internal: why refresh_popularity must rebuild trending from the window (NULL when an incremental update is exact).';

-- A product's counters and popularity_score, as one value.
CREATE TYPE popularity_engine.product_counters AS (
    search_click_count bigint, view_count bigint, click_count bigint, wishlist_count bigint,
    cart_add_count bigint, order_count bigint, review_count bigint,
    rating_sum double precision, popularity_score double precision);
COMMENT ON TYPE popularity_engine.product_counters IS
  'Internal: the counters and popularity_score of product_popularity, as one value.';

-- What `events` interactions of a type (its interaction_weights.counter and popularity_weight,
-- the sum of their event_value) add to a product's counters: the one place that maps a counter
-- name to a product_stats column. Summed field by field over the new events (incremental) or
-- over product_type_totals (recount). Inlined, so a field of it is a single CASE.
CREATE FUNCTION popularity_engine.counter_delta(
    counter text, events bigint, value_sum double precision, weight double precision)
RETURNS popularity_engine.product_counters LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT ROW(CASE WHEN counter OPERATOR(pg_catalog.=) 'search_click_count' THEN events ELSE 0 END,
               CASE WHEN counter OPERATOR(pg_catalog.=) 'view_count' THEN events ELSE 0 END,
               CASE WHEN counter OPERATOR(pg_catalog.=) 'click_count' THEN events ELSE 0 END,
               CASE WHEN counter OPERATOR(pg_catalog.=) 'wishlist_count' THEN events ELSE 0 END,
               CASE WHEN counter OPERATOR(pg_catalog.=) 'cart_add_count' THEN events ELSE 0 END,
               CASE WHEN counter OPERATOR(pg_catalog.=) 'order_count' THEN events ELSE 0 END,
               CASE WHEN counter OPERATOR(pg_catalog.=) 'review_count' THEN events ELSE 0 END,
               CASE WHEN counter OPERATOR(pg_catalog.=) 'review_count' THEN value_sum ELSE 0 END,
               events OPERATOR(pg_catalog.*) weight)::popularity_engine.product_counters
$fn$;
COMMENT ON FUNCTION popularity_engine.counter_delta(text, bigint, double precision, double precision) IS
  'Internal: what events interactions of a type add to a product''s counters and popularity_score.';

-- The trending change from time passing alone, per product: events aggregated earlier that were
-- in the future at the previous as_of and now are not (+), and those that slid out of the
-- window (-). Read through the index on occurred_at: work proportional to the time that passed.
-- The bounds are computed before the query and it is planned for them (force_custom_plan):
-- as constants they prune the log's partitions while planning, so that only the one or two
-- partitions that hold them are opened (timestamptz - interval in the query would leave the
-- pruning to run time, after every partition and index was opened and planned).
CREATE FUNCTION popularity_engine.trending_slide(
    state popularity_engine.refresh_state, new_as_of timestamptz, landmark timestamptz,
    half_life_seconds double precision, window_seconds double precision)
RETURNS TABLE (product_id bigint, trend_fwd double precision, trend_events bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $fn$
#variable_conflict use_column
DECLARE
    v_left_from timestamptz := state.as_of - make_interval(secs => window_seconds);
    v_left_to   timestamptz := new_as_of - make_interval(secs => window_seconds);
BEGIN
    RETURN QUERY
    SELECT t.product_id,
           sum(x.sign * w.popularity_weight * popularity_engine.decay_factor(t.occurred_at, landmark, half_life_seconds)),
           sum(x.sign)
      FROM popularity_engine.product_interactions t
      JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
     CROSS JOIN LATERAL (SELECT CASE WHEN t.occurred_at > state.as_of THEN 1 ELSE -1 END AS sign) AS x
     WHERE ((t.occurred_at > state.as_of AND t.occurred_at <= new_as_of)
            OR (t.occurred_at >= v_left_from AND t.occurred_at < v_left_to))
       AND t.product_id IS NOT NULL AND w.popularity_weight > 0
       AND popularity_engine.counts_for_popularity(t.interaction_type, t.event_value)
       AND popularity_engine.row_aggregated(t.id, t.writer_xid, state.legacy_interaction_id_floor,
                                            state.aggregated_snapshot, state.legacy_snapshot)
     GROUP BY t.product_id;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.trending_slide(popularity_engine.refresh_state, timestamptz, timestamptz, double precision, double precision) IS
  'Internal: per product, the change of the forward-decayed trending sum between the stored as_of and new_as_of that comes from the window moving.';

-- A product's trending sum after a change: an empty window is exactly zero, whatever rounding
-- the sums accumulated.
CREATE FUNCTION popularity_engine.trend_total(events bigint, fwd double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN events OPERATOR(pg_catalog.=) 0 THEN 0::pg_catalog.float8 ELSE fwd END
$fn$;
COMMENT ON FUNCTION popularity_engine.trend_total(bigint, double precision) IS
  'Internal: the trending sum fwd of a product with `events` events in the window (0 when there are none).';

-- Nothing new to read: only the window moved.
CREATE FUNCTION popularity_engine.apply_trending_slide(
    state popularity_engine.refresh_state, new_as_of timestamptz, landmark timestamptz,
    half_life_seconds double precision, window_seconds double precision) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $fn$
    UPDATE popularity_engine.product_stats s
       SET trend_events = s.trend_events + l.trend_events,
           trend_fwd = popularity_engine.trend_total(s.trend_events + l.trend_events, s.trend_fwd + l.trend_fwd),
           last_updated = now()
      FROM popularity_engine.trending_slide(state, new_as_of, landmark, half_life_seconds, window_seconds) l
     WHERE s.product_id = l.product_id
$fn$;
COMMENT ON FUNCTION popularity_engine.apply_trending_slide(popularity_engine.refresh_state, timestamptz, timestamptz, double precision, double precision) IS
  'Internal: applies the trending change of a moving window to product_stats when a refresh has no new rows.';

-- One upsert per changed product: the new events' counters and score (with the current
-- weights), its new search appearances and, when trending is updated incrementally, the
-- trending change: new events inside the window at as_of, plus events aggregated earlier that
-- were in the future at the previous as_of, minus those that slid out of the window.
CREATE FUNCTION popularity_engine.apply_product_stats(
    state popularity_engine.refresh_state, new_as_of timestamptz, landmark timestamptz,
    half_life_seconds double precision, window_seconds double precision, incremental boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_window interval := make_interval(secs => window_seconds);
BEGIN
    WITH changes AS (
        SELECT d.product_id,
               coalesce(sum(w.popularity_weight * popularity_engine.decay_factor(d.occurred_at, landmark, half_life_seconds))
                        FILTER (WHERE d.counted AND w.popularity_weight > 0 AND incremental
                                  AND d.occurred_at BETWEEN new_as_of - v_window AND new_as_of), 0) AS trend_fwd,
               count(*) FILTER (WHERE d.counted AND w.popularity_weight > 0 AND incremental
                                  AND d.occurred_at BETWEEN new_as_of - v_window AND new_as_of) AS trend_events,
               0::bigint AS search_count, max(d.occurred_at) AS last_at,
               sum((popularity_engine.counter_delta(w.counter, 1, d.event_value, w.popularity_weight)).search_click_count) FILTER (WHERE d.counted) AS search_click_count,
               sum((popularity_engine.counter_delta(w.counter, 1, d.event_value, w.popularity_weight)).view_count) FILTER (WHERE d.counted) AS view_count,
               sum((popularity_engine.counter_delta(w.counter, 1, d.event_value, w.popularity_weight)).click_count) FILTER (WHERE d.counted) AS click_count,
               sum((popularity_engine.counter_delta(w.counter, 1, d.event_value, w.popularity_weight)).wishlist_count) FILTER (WHERE d.counted) AS wishlist_count,
               sum((popularity_engine.counter_delta(w.counter, 1, d.event_value, w.popularity_weight)).cart_add_count) FILTER (WHERE d.counted) AS cart_add_count,
               sum((popularity_engine.counter_delta(w.counter, 1, d.event_value, w.popularity_weight)).order_count) FILTER (WHERE d.counted) AS order_count,
               sum((popularity_engine.counter_delta(w.counter, 1, d.event_value, w.popularity_weight)).review_count) FILTER (WHERE d.counted) AS review_count,
               sum((popularity_engine.counter_delta(w.counter, 1, d.event_value, w.popularity_weight)).rating_sum) FILTER (WHERE d.counted) AS rating_sum,
               sum((popularity_engine.counter_delta(w.counter, 1, d.event_value, w.popularity_weight)).popularity_score) FILTER (WHERE d.counted) AS popularity_score
          FROM pg_temp.pe_delta d
          JOIN popularity_engine.interaction_weights w ON w.interaction_type::text = d.interaction_type
         GROUP BY d.product_id
        UNION ALL
        SELECT d.product_id, 0, 0, count(*), NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0 FROM pg_temp.pe_search_delta d GROUP BY 1
        UNION ALL
        SELECT l.product_id, l.trend_fwd, l.trend_events, 0, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0
          FROM popularity_engine.trending_slide(state, new_as_of, landmark, half_life_seconds, window_seconds) l
         WHERE incremental
    ),
    per_product AS (
        SELECT c.product_id, sum(c.trend_fwd) AS trend_fwd, sum(c.trend_events) AS trend_events,
               sum(c.search_count) AS search_count, max(c.last_at) AS last_at,
               coalesce(sum(c.search_click_count), 0) AS search_click_count,
               coalesce(sum(c.view_count), 0) AS view_count, coalesce(sum(c.click_count), 0) AS click_count,
               coalesce(sum(c.wishlist_count), 0) AS wishlist_count,
               coalesce(sum(c.cart_add_count), 0) AS cart_add_count,
               coalesce(sum(c.order_count), 0) AS order_count, coalesce(sum(c.review_count), 0) AS review_count,
               coalesce(sum(c.rating_sum), 0) AS rating_sum, coalesce(sum(c.popularity_score), 0) AS popularity_score
          FROM changes c GROUP BY c.product_id)
    INSERT INTO popularity_engine.product_stats AS s
           (product_id, search_click_count, view_count, click_count, wishlist_count, cart_add_count,
            order_count, review_count, rating_sum, popularity_score, trend_fwd, trend_events,
            search_count, last_interaction, last_updated, category, brand)
    SELECT p.product_id, p.search_click_count, p.view_count, p.click_count, p.wishlist_count,
           p.cart_add_count, p.order_count, p.review_count, p.rating_sum, p.popularity_score,
           p.trend_fwd, p.trend_events, p.search_count, p.last_at, now(),
           -- looked up per product through the catalog's key: a join hashed the whole catalog
           (SELECT cat.category FROM popularity_engine.catalog cat WHERE cat.product_id = p.product_id),
           (SELECT cat.brand FROM popularity_engine.catalog cat WHERE cat.product_id = p.product_id)
      FROM per_product p
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
           trend_fwd = popularity_engine.trend_total(s.trend_events + excluded.trend_events,
                                                     s.trend_fwd + excluded.trend_fwd),
           search_count = s.search_count + excluded.search_count,
           last_interaction = greatest(s.last_interaction, excluded.last_interaction),
           last_updated = now(), category = excluded.category, brand = excluded.brand;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.apply_product_stats(popularity_engine.refresh_state, timestamptz, timestamptz, double precision, double precision, boolean) IS
  'Internal: upserts product_stats for every product the delta (or the trending window''s slide) touched.';

-- Weights changed: every product's counters and score again from the totals.
CREATE FUNCTION popularity_engine.recount_all_products() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $fn$
    UPDATE popularity_engine.product_stats s
       SET (search_click_count, view_count, click_count, wishlist_count, cart_add_count,
            order_count, review_count, rating_sum, popularity_score, last_updated)
         = (k.search_click_count, k.view_count, k.click_count, k.wishlist_count, k.cart_add_count,
            k.order_count, k.review_count, k.rating_sum, k.popularity_score, now())
      FROM (SELECT t.product_id,
                   sum((popularity_engine.counter_delta(w.counter, t.events, t.value_sum, w.popularity_weight)).search_click_count) AS search_click_count,
                   sum((popularity_engine.counter_delta(w.counter, t.events, t.value_sum, w.popularity_weight)).view_count) AS view_count,
                   sum((popularity_engine.counter_delta(w.counter, t.events, t.value_sum, w.popularity_weight)).click_count) AS click_count,
                   sum((popularity_engine.counter_delta(w.counter, t.events, t.value_sum, w.popularity_weight)).wishlist_count) AS wishlist_count,
                   sum((popularity_engine.counter_delta(w.counter, t.events, t.value_sum, w.popularity_weight)).cart_add_count) AS cart_add_count,
                   sum((popularity_engine.counter_delta(w.counter, t.events, t.value_sum, w.popularity_weight)).order_count) AS order_count,
                   sum((popularity_engine.counter_delta(w.counter, t.events, t.value_sum, w.popularity_weight)).review_count) AS review_count,
                   sum((popularity_engine.counter_delta(w.counter, t.events, t.value_sum, w.popularity_weight)).rating_sum) AS rating_sum,
                   sum((popularity_engine.counter_delta(w.counter, t.events, t.value_sum, w.popularity_weight)).popularity_score) AS popularity_score
              FROM popularity_engine.product_type_totals t
              JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
             GROUP BY t.product_id) k
     WHERE s.product_id = k.product_id
$fn$;
COMMENT ON FUNCTION popularity_engine.recount_all_products() IS
  'Internal: recomputes every product''s counters and popularity_score from product_type_totals (after a weight edit).';

-- Trending from scratch over the window at as_of, against a new landmark, from the rows
-- aggregated as of snap.
CREATE FUNCTION popularity_engine.rebuild_trending(
    snap pg_snapshot, id_floor bigint, new_as_of timestamptz,
    half_life_seconds double precision, window_seconds double precision) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $fn$
BEGIN
    UPDATE popularity_engine.product_stats SET trend_fwd = 0, trend_events = 0
     WHERE trend_events <> 0 OR trend_fwd <> 0;
    INSERT INTO popularity_engine.product_stats AS s (product_id, trend_fwd, trend_events)
    SELECT t.product_id,
           sum(w.popularity_weight * popularity_engine.decay_factor(t.occurred_at, new_as_of, half_life_seconds)),
           count(*)
      FROM popularity_engine.product_interactions t
      JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
     WHERE t.occurred_at BETWEEN new_as_of - make_interval(secs => window_seconds) AND new_as_of
       AND t.product_id IS NOT NULL AND w.popularity_weight > 0
       AND popularity_engine.counts_for_popularity(t.interaction_type, t.event_value)
       AND popularity_engine.row_aggregated(t.id, t.writer_xid, id_floor, snap, NULL)
     GROUP BY 1
    ON CONFLICT (product_id) DO UPDATE
       SET trend_fwd = excluded.trend_fwd, trend_events = excluded.trend_events;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.rebuild_trending(pg_snapshot, bigint, timestamptz, double precision, double precision) IS
  'Internal: recomputes every product''s trending sum over the window at as_of, with as_of as the new landmark.';

-- The trending half-life changed: decay_sum of the buckets trending can still reach, for the new one.
CREATE FUNCTION popularity_engine.redecay_hourly(
    snap pg_snapshot, id_floor bigint, since timestamptz, half_life_seconds double precision) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $fn$
BEGIN
    UPDATE popularity_engine.popularity_hourly h
       SET decay_sum = r.decay_sum
      FROM (SELECT t.product_id, date_trunc('hour', t.occurred_at, 'UTC') AS bucket_hour, t.interaction_type,
                   sum(popularity_engine.decay_factor(t.occurred_at, date_trunc('hour', t.occurred_at, 'UTC'),
                                                      half_life_seconds)) AS decay_sum
              FROM popularity_engine.product_interactions t
             WHERE t.occurred_at >= date_trunc('hour', since, 'UTC') AND t.product_id IS NOT NULL
               AND popularity_engine.counts_for_popularity(t.interaction_type, t.event_value)
               AND popularity_engine.row_aggregated(t.id, t.writer_xid, id_floor, snap, NULL)
             GROUP BY 1, 2, 3) r
     WHERE h.product_id = r.product_id AND h.bucket_hour = r.bucket_hour
       AND h.interaction_type = r.interaction_type;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.redecay_hourly(pg_snapshot, bigint, timestamptz, double precision) IS
  'Internal: recomputes popularity_hourly.decay_sum for the buckets since `since` after a trending_half_life change.';

-- Locks the one row of a refresh's state table: a second refresh waits here, then sees what
-- the first committed. Returns '' or a note saying how long it waited.
CREATE FUNCTION popularity_engine.lock_state_row(state_table regclass) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_locked  boolean;
    v_started timestamptz;
BEGIN
    EXECUTE format('SELECT true FROM %s FOR UPDATE SKIP LOCKED', state_table) INTO v_locked;
    IF v_locked THEN
        RETURN '';
    END IF;
    v_started := clock_timestamp();
    EXECUTE format('SELECT true FROM %s FOR UPDATE', state_table);
    RETURN format('waited %s s for a concurrent refresh; ',
                  round(extract(epoch FROM clock_timestamp() - v_started)::numeric, 3));
END
$fn$;
COMMENT ON FUNCTION popularity_engine.lock_state_row(regclass) IS
  'Internal: locks the row of a refresh state table (waiting for a concurrent refresh if needed); returns a note when it waited.';

CREATE FUNCTION popularity_engine.check_as_of(caller text, as_of timestamptz) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'popularity_engine.%: as_of must be a finite timestamp', caller
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN as_of;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.check_as_of(text, timestamptz) IS
  'Internal: as_of when it is a finite timestamp, else an invalid_parameter_value error naming the caller.';

-- One transaction's worth of refresh_popularity: at most about max_rows new log rows (whole
-- writing transactions; NULL = everything). `more` says whether rows are left for another step.
CREATE FUNCTION popularity_engine.refresh_popularity_step(
    as_of timestamptz, max_rows bigint,
    OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $proc$
#variable_conflict use_variable
DECLARE
    v_state    popularity_engine.refresh_state;
    v_own_xid  xid8 := pg_current_xact_id_if_assigned();
    v_h        double precision := popularity_engine.trending_half_life_seconds();
    v_w        double precision := popularity_engine.trending_window_seconds();
    v_sig      text := popularity_engine.weights_signature();
    v_bound    xid8;
    v_snap     pg_snapshot;
    v_pending  boolean;
    v_new      bigint := 0;
    v_searches bigint := 0;
    v_reason   text;
    v_landmark timestamptz;
    v_waited   text;
    v_marks    record;
BEGIN
    PERFORM popularity_engine.check_as_of('refresh_popularity', as_of);
    PERFORM popularity_engine.rebase_if_restored();
    v_waited := popularity_engine.lock_state_row('popularity_engine.refresh_state');
    -- before any statement whose snapshot may be stored (see logs_unchanged_since)
    SELECT * INTO v_marks FROM popularity_engine.log_id_marks();
    SELECT * INTO v_state FROM popularity_engine.refresh_state;

    SELECT * INTO v_snap, v_pending FROM popularity_engine.popularity_pending(v_state, v_own_xid);
    IF v_pending THEN
        PERFORM popularity_engine.prepare_popularity_delta();
        v_bound := popularity_engine.step_bound(v_state.legacy_interaction_id_floor,
                                                v_state.aggregated_snapshot, v_own_xid, max_rows);
        SELECT * INTO v_snap, v_new, v_searches
          FROM popularity_engine.read_popularity_delta(v_state, v_own_xid, v_bound);
    END IF;
    more := v_bound IS NOT NULL AND v_bound < pg_snapshot_xmax(v_snap);
    IF v_new + v_searches > 0 THEN
        ANALYZE pg_temp.pe_delta;
        PERFORM popularity_engine.apply_popularity_totals(v_h);
    END IF;

    v_reason := popularity_engine.trending_rebuild_reason(v_state, as_of, v_h, v_w, v_sig);
    v_landmark := CASE WHEN v_reason IS NULL THEN v_state.landmark ELSE as_of END;
    IF v_new + v_searches > 0 THEN
        PERFORM popularity_engine.apply_product_stats(v_state, as_of, v_landmark, v_h, v_w, v_reason IS NULL);
    ELSIF v_reason IS NULL THEN
        PERFORM popularity_engine.apply_trending_slide(v_state, as_of, v_landmark, v_h, v_w);
    END IF;
    IF v_state.weights_signature IS DISTINCT FROM v_sig THEN
        PERFORM popularity_engine.recount_all_products();
    END IF;

    v_snap := popularity_engine.stored_snapshot(v_snap, v_bound, v_own_xid);
    IF v_reason IS NOT NULL THEN
        PERFORM popularity_engine.rebuild_trending(v_snap, v_state.legacy_interaction_id_floor, as_of, v_h, v_w);
    END IF;
    IF v_state.trending_half_life IS DISTINCT FROM make_interval(secs => v_h) THEN
        PERFORM popularity_engine.redecay_hourly(v_snap, v_state.legacy_interaction_id_floor,
                                                 as_of - make_interval(secs => v_w), v_h);
    END IF;
    IF v_new > 0 OR popularity_engine.window_lists_stale(v_state, as_of, v_sig, v_h) THEN
        PERFORM popularity_engine.maintain_window_lists(v_state, as_of, v_sig, v_h, v_new > 0);
    END IF;

    UPDATE popularity_engine.refresh_state
       SET aggregated_snapshot = v_snap, legacy_snapshot = NULL,
           as_of = refresh_popularity_step.as_of, landmark = v_landmark,
           trending_half_life = make_interval(secs => v_h), trending_window = make_interval(secs => v_w),
           weights_signature = v_sig, last_refresh = clock_timestamp(),
           -- the marks, when they describe the stored snapshot (NULL: unknown)
           (interaction_id_mark, search_id_mark) = (SELECT v_marks.interactions, v_marks.searches
                WHERE popularity_engine.marks_fit_snapshot(v_snap, v_marks.next_xid, v_bound, v_own_xid));

    processed := v_new + v_searches;
    note := format('%s%s interactions and %s search results aggregated; trending %s', v_waited,
                   v_new, v_searches,
                   coalesce('rebuilt (' || v_reason || ')', 'updated incrementally'));
END
$proc$;
COMMENT ON FUNCTION popularity_engine.refresh_popularity_step(timestamptz, bigint) IS
  'Internal: one transaction of refresh_popularity (at most about max_rows new rows, whole transactions).';

CREATE PROCEDURE popularity_engine.refresh_popularity(
    as_of timestamptz DEFAULT now(), max_rows bigint DEFAULT 1000000)
LANGUAGE plpgsql AS $proc$
BEGIN
    CALL popularity_engine.run_job('refresh_popularity', as_of, max_rows, NULL);
END
$proc$;
COMMENT ON PROCEDURE popularity_engine.refresh_popularity(timestamptz, bigint) IS
  'Aggregates every committed interaction and search exactly once into product_popularity (counters, popularity_score, trending_score at as_of) and the hourly buckets. Incremental, idempotent, safe to run concurrently with writers and with itself (a second run waits, and says so in job_runs). Called on its own (as pg_cron does), it works through a backlog in transactions of about max_rows rows that commit one by one; inside a transaction block it does everything in that transaction. Logs every run, and every error, to job_runs.';

-- Committed rows of a log that a refresh has not aggregated yet.
CREATE FUNCTION popularity_engine.pending_interactions(consumer text) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $fn$
DECLARE
    v_floor  bigint := (SELECT legacy_interaction_id_floor FROM popularity_engine.refresh_state);
    v_snap   pg_snapshot;
    v_legacy pg_snapshot;
BEGIN
    CASE consumer
        WHEN 'refresh_popularity' THEN
            SELECT aggregated_snapshot, legacy_snapshot INTO v_snap, v_legacy FROM popularity_engine.refresh_state;
        WHEN 'refresh_user_preferences' THEN
            SELECT aggregated_snapshot, legacy_snapshot INTO v_snap, v_legacy FROM popularity_engine.preference_state;
        ELSE
            RAISE EXCEPTION 'popularity_engine.pending_interactions: unknown consumer "%": expected refresh_popularity or refresh_user_preferences', consumer
                USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    RETURN (SELECT count(*) FROM popularity_engine.product_interactions t
             WHERE t.product_id IS NOT NULL
               AND popularity_engine.unaggregated(t.id, t.writer_xid, v_floor, v_snap, v_legacy));
END
$fn$;
COMMENT ON FUNCTION popularity_engine.pending_interactions(text) IS
  'Committed interactions with a product that the named refresh (refresh_popularity or refresh_user_preferences) has not aggregated yet.';

CREATE FUNCTION popularity_engine.aggregation_lag(
    OUT pending_interactions bigint, OUT pending_searches bigint,
    OUT last_refresh timestamptz, OUT refreshed_as_of timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $fn$
DECLARE
    v_state popularity_engine.refresh_state;
BEGIN
    SELECT * INTO v_state FROM popularity_engine.refresh_state;
    pending_interactions := popularity_engine.pending_interactions('refresh_popularity');
    pending_searches := (SELECT count(*) FROM popularity_engine.search_interactions t
                          WHERE popularity_engine.unaggregated(t.id, t.writer_xid, v_state.legacy_search_id_floor,
                                                               v_state.aggregated_snapshot, v_state.legacy_snapshot));
    last_refresh := v_state.last_refresh;
    refreshed_as_of := v_state.as_of;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.aggregation_lag() IS
  'How far product_popularity is behind the log: committed interactions (with a product) and searches that refresh_popularity has not aggregated yet, and when it last ran. Read-only; cost grows with the backlog, not the history.';
