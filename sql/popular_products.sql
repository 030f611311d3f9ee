-- popularity_engine: popular_products(mode, time_window, category, n), answered from the
-- aggregates kept by refresh_popularity (product_stats, popularity_hourly, search_hourly).

CREATE TYPE popularity_engine.popularity_mode AS ENUM (
    'trending', 'most_viewed', 'most_carted', 'most_ordered', 'most_searched', 'overall',
    'most_wishlisted', 'top_rated');
COMMENT ON TYPE popularity_engine.popularity_mode IS
  'What popular_products ranks by: trending (trending_score), most_viewed (view_count), most_carted (cart_add_count), most_ordered (order_count), most_searched (search_click_count, clicks from search), overall (popularity_score), most_wishlisted (wishlist_count), top_rated (rating_avg).';

CREATE FUNCTION popularity_engine.popular_products(
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
COMMENT ON FUNCTION popularity_engine.popular_products(popularity_engine.popularity_mode, interval, text, integer) IS
  'Top n products by mode, optionally within a category (from catalog) and a time window (counts only interactions since the start of the hour time_window ago). Ties break by product_id; only products with a positive score are listed. Read-only: runs on hot standbys.';
