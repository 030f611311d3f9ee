-- popularity_engine: popular_products(mode, time_window, category, n), answered from the
-- aggregates kept by refresh_popularity: all time from product_stats (one index per mode); within
-- a window from the window lists (window_lists.sql, span_lists.sql) or, for top_rated, the review
-- hours (rating_hours.sql), and from the hourly buckets when those cannot answer.

CREATE TYPE popularity_engine.popularity_mode AS ENUM (
    'trending', 'most_viewed', 'most_carted', 'most_ordered', 'most_searched', 'overall',
    'most_wishlisted', 'top_rated');
COMMENT ON TYPE popularity_engine.popularity_mode IS
  'What popular_products ranks by: trending (trending_score), most_viewed (view_count), most_carted (cart_add_count), most_ordered (order_count), most_searched (search_click_count, clicks from search), overall (popularity_score), most_wishlisted (wishlist_count), top_rated (rating_avg).';

-- The interaction_weights.counter (and product_stats column) a mode counts; NULL for overall
-- and trending, which weigh every counted type.
-- No SET clause: the planner inlines it into the statements that rank buckets.
CREATE FUNCTION popularity_engine.mode_counter(mode popularity_engine.popularity_mode) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE mode
        WHEN 'most_viewed' THEN 'view_count'
        WHEN 'most_carted' THEN 'cart_add_count'
        WHEN 'most_ordered' THEN 'order_count'
        WHEN 'most_searched' THEN 'search_click_count'
        WHEN 'most_wishlisted' THEN 'wishlist_count'
        WHEN 'top_rated' THEN 'review_count'
    END
$fn$;
COMMENT ON FUNCTION popularity_engine.mode_counter(popularity_engine.popularity_mode) IS
  'Internal: the counter a popular_products mode ranks by (NULL for overall and trending).';

-- All-time top n from product_stats. The ranking expression depends on the mode, so the
-- statement is built here, from the mode alone, to use that mode's index.
CREATE FUNCTION popularity_engine.popular_all_time(
    mode popularity_engine.popularity_mode, category text, n integer)
RETURNS TABLE (rank integer, product_id bigint, score double precision, product_category text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_variable
DECLARE
    v_score text := CASE mode
        WHEN 'overall' THEN 's.popularity_score'
        WHEN 'trending' THEN 's.trend_fwd'
        WHEN 'top_rated' THEN '(s.rating_sum / s.review_count)'
        ELSE 's.' || quote_ident(popularity_engine.mode_counter(mode)) END;
    v_positive text := CASE mode
        WHEN 'top_rated' THEN 's.review_count > 0 AND s.rating_sum > 0'
        WHEN 'trending' THEN 's.trend_fwd > 0 AND s.trend_events > 0'
        ELSE v_score || ' > 0' END;
    -- trending is stored forward-decayed: scale to as_of (one factor for every product)
    v_scale double precision := CASE WHEN mode = 'trending' THEN
        (SELECT popularity_engine.decay_factor(r.landmark, r.as_of, extract(epoch FROM r.trending_half_life)::float8)
           FROM popularity_engine.refresh_state r) ELSE 1 END;
BEGIN
    IF v_scale IS NULL THEN
        RETURN;  -- never refreshed: nothing is trending yet
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT (row_number() OVER (ORDER BY %1$s DESC, s.product_id))::integer,
               s.product_id, (%1$s)::float8 * $3, c.category
          FROM popularity_engine.product_stats s
          LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
         WHERE %2$s AND ($1 IS NULL OR c.category = $1)
         ORDER BY %1$s DESC, s.product_id
         LIMIT $2$q$, v_score, v_positive)
    USING category, n, v_scale;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.popular_all_time(popularity_engine.popularity_mode, text, integer) IS
  'Internal: popular_products without a time window.';

-- top_rated within a window: the average rating of the window's review buckets, best first, ties
-- by product id. Planned for the given types and category (force_custom_plan), so that only the
-- types' buckets are read, through popularity_hourly_type. The events are summed as float8
-- (exact for counts below 2^53): a bigint sum is a numeric, and made the aggregate 1.7 times as
-- slow.
CREATE FUNCTION popularity_engine.top_rated_in_window(
    types popularity_engine.interaction_type[], since timestamptz, until timestamptz,
    category text, n integer)
RETURNS TABLE (product_id bigint, score double precision)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $fn$
#variable_conflict use_variable
BEGIN
    RETURN QUERY
    SELECT g.product_id, g.score
      FROM (SELECT h.product_id, sum(h.value_sum) / nullif(sum(h.events::float8), 0) AS score
              FROM popularity_engine.popularity_hourly h
             WHERE h.interaction_type = ANY (types) AND h.bucket_hour >= since AND h.bucket_hour <= until
               AND (category IS NULL OR EXISTS (SELECT 1 FROM popularity_engine.catalog c
                                                 WHERE c.product_id = h.product_id AND c.category = category))
             GROUP BY h.product_id) g
     WHERE g.score > 0
     ORDER BY g.score DESC, g.product_id
     LIMIT n;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.top_rated_in_window(popularity_engine.interaction_type[], timestamptz, timestamptz, text, integer) IS
  'Internal: the n products with the best average of the `types` events (the review_count types) in the hourly buckets from since to until, optionally of one category.';

-- Top n over the hourly buckets since `since`: from the window lists (top_rated: from
-- rating_hourly) when they prove the answer, else by summing the buckets, planned for the given
-- mode and category (force_custom_plan): the CASE on the mode and the optional filters fold away.
CREATE FUNCTION popularity_engine.popular_in_window(
    mode popularity_engine.popularity_mode, since timestamptz, category text, n integer)
RETURNS TABLE (rank integer, product_id bigint, score double precision, product_category text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $fn$
#variable_conflict use_variable
DECLARE
    v_counter text := popularity_engine.mode_counter(mode);
    v_types popularity_engine.interaction_type[];
    v_h double precision := popularity_engine.trending_half_life_seconds();
    v_trend_since timestamptz := now() - make_interval(secs => popularity_engine.trending_window_seconds());
    v_now timestamptz := now();
    -- the first bucket counted: trending counts only the hours that start inside its own window
    v_from timestamptz := CASE WHEN mode = 'trending'
                               THEN greatest(since, date_trunc('hour', v_trend_since, 'UTC')
                                                    + CASE WHEN date_trunc('hour', v_trend_since, 'UTC') < v_trend_since
                                                           THEN interval '1 hour' ELSE interval '0' END)
                               ELSE since END;
    v_listed record;
BEGIN
    IF mode = 'top_rated' THEN
        SELECT * INTO v_listed FROM popularity_engine.top_rated_from_hours(v_from, category, n);
    ELSE
        SELECT * INTO v_listed FROM popularity_engine.popular_from_lists(mode, v_from, category, n);
    END IF;
    IF v_listed.product_ids IS NOT NULL THEN
        RETURN QUERY
        SELECT x.place::integer, x.product_id, v_listed.scores[x.place], c.category
          FROM unnest(v_listed.product_ids) WITH ORDINALITY AS x(product_id, place)
          LEFT JOIN popularity_engine.catalog c ON c.product_id = x.product_id
         ORDER BY x.place;
        RETURN;
    END IF;
    -- The types the mode counts, as a constant of the query: a counting mode reads only its own
    -- types' buckets through popularity_hourly_type instead of every bucket of the window.
    v_types := ARRAY(SELECT w.interaction_type FROM popularity_engine.interaction_weights w
                      WHERE v_counter IS NULL OR w.counter = v_counter);
    IF mode = 'top_rated' THEN
        RETURN QUERY
        SELECT (row_number() OVER (ORDER BY t.score DESC, t.product_id))::integer, t.product_id, t.score, c.category
          FROM popularity_engine.top_rated_in_window(v_types, v_from, v_now, category, n) t
          LEFT JOIN popularity_engine.catalog c ON c.product_id = t.product_id
         ORDER BY t.score DESC, t.product_id;
        RETURN;
    END IF;
    -- The top n are chosen before the catalog join: joining every product of the window first
    -- made the planner hash the whole catalog.
    RETURN QUERY
    SELECT (row_number() OVER (ORDER BY x.score DESC, x.product_id))::integer, x.product_id, x.score, c.category
      FROM (SELECT g.product_id, g.score
              FROM (SELECT h.product_id,
                           sum(popularity_engine.bucket_score(
                                   mode, w.counter, w.popularity_weight, h.events, h.decay_sum)
                               * popularity_engine.score_decay(mode, h.bucket_hour, v_now, v_h))::float8 AS score
                      FROM popularity_engine.popularity_hourly h
                      JOIN popularity_engine.interaction_weights w ON w.interaction_type = h.interaction_type
                     WHERE h.bucket_hour >= v_from AND h.bucket_hour <= v_now
                       AND h.interaction_type = ANY (v_types)
                       AND (category IS NULL OR EXISTS (SELECT 1 FROM popularity_engine.catalog c
                                                         WHERE c.product_id = h.product_id AND c.category = category))
                     GROUP BY h.product_id) g
             WHERE g.score > 0
             ORDER BY g.score DESC, g.product_id
             LIMIT n) x
      LEFT JOIN popularity_engine.catalog c ON c.product_id = x.product_id
     ORDER BY x.score DESC, x.product_id;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.popular_in_window(popularity_engine.popularity_mode, timestamptz, text, integer) IS
  'Internal: popular_products with a time window since `since`: from the window lists (top_rated: rating_hourly and rating_totals) when they prove the answer, else from the hourly buckets.';

CREATE FUNCTION popularity_engine.popular_products(
    mode popularity_engine.popularity_mode DEFAULT 'overall',
    time_window interval DEFAULT NULL,
    category text DEFAULT NULL,
    n integer DEFAULT 20)
RETURNS TABLE (rank integer, product_id bigint, score double precision, product_category text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF mode IS NULL THEN
        RAISE EXCEPTION 'popularity_engine.popular_products: mode is required'
            USING ERRCODE = 'not_null_violation';
    END IF;
    PERFORM popularity_engine.checked_limit(n, 10000, 'popularity_engine.popular_products');
    IF time_window IS NULL THEN
        RETURN QUERY SELECT * FROM popularity_engine.popular_all_time(mode, category, n);
    ELSIF time_window <= interval '0' THEN
        RAISE EXCEPTION 'popularity_engine.popular_products: time_window % is not allowed: expected a positive interval', time_window
            USING ERRCODE = 'invalid_parameter_value';
    ELSE
        -- counts since the start of the UTC hour time_window ago
        RETURN QUERY SELECT * FROM popularity_engine.popular_in_window(
            mode, date_trunc('hour', now() - time_window, 'UTC'), category, n);
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.popular_products(popularity_engine.popularity_mode, interval, text, integer) IS
  'Top n products by mode, optionally within a category (from catalog) and a time window (counts only interactions since the start of the hour time_window ago). Ties break by product_id; only products with a positive score are listed. Read-only: runs on hot standbys.';
