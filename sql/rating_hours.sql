-- popularity_engine: what lets popular_products(mode => 'top_rated', time_window => ...) answer a
-- month without reading every review bucket of every type. top_rated ranks by an average, which
-- the day lists of window_lists.sql cannot bound by a sum. refresh_popularity keeps instead, for
-- the hours since the window horizon:
--   * rating_hourly: per product and UTC hour with a review (every type counted as review_count),
--     the reviews and their rating sum, with the product's catalog category: a narrow copy of
--     the review buckets, whose index answers a window without touching the other types;
--   * rating_totals: per product, the same summed over every hour kept, indexed by its average.
-- A window then reads whichever side of it costs less: the hours inside it, averaged per product
-- (a short window), or the hours outside it, subtracted from the totals of the products they
-- belong to, while every other product's total average, read best first from the index, is its
-- average over the window (a window reaching back near the horizon, such as 30 days). Review
-- ratings are validated whole numbers, so every sum and difference is exact (below 2^53) and both
-- readings give the averages that summing the buckets gives. (A type whose values are not whole
-- numbers, mapped to review_count by hand, could differ from it in the last bits.)
--
-- Categories are kept in step with the catalog as window_lists.sql keeps its lists' scopes: a
-- product that joined a category since the refresh is noted in window_category_moves, one that
-- left it is skipped by checking the catalog.

CREATE TABLE popularity_engine.rating_hourly (
    product_id  bigint NOT NULL,
    bucket_hour timestamptz NOT NULL,
    category    text,
    reviews     double precision NOT NULL,
    rating_sum  double precision NOT NULL,
    PRIMARY KEY (product_id, bucket_hour)
);
-- Covering: a window's hours, of all products or of a category, read from the index alone.
CREATE INDEX rating_hourly_hour
    ON popularity_engine.rating_hourly (bucket_hour) INCLUDE (product_id, reviews, rating_sum);
CREATE INDEX rating_hourly_category_hour
    ON popularity_engine.rating_hourly (category, bucket_hour) INCLUDE (product_id, reviews, rating_sum);
COMMENT ON TABLE popularity_engine.rating_hourly IS
  'Internal: per product and UTC hour since refresh_state.window_horizon with a review (an interaction type whose counter is review_count), the number of reviews and their rating sum, from popularity_hourly, and the product''s catalog category (as of the last refresh that wrote the row; see window_category_moves). Read by popular_products for top_rated within a window.';

CREATE TABLE popularity_engine.rating_totals (
    product_id bigint PRIMARY KEY,
    category   text,
    reviews    double precision NOT NULL,
    rating_sum double precision NOT NULL,
    average    double precision NOT NULL
);
CREATE INDEX rating_totals_rank ON popularity_engine.rating_totals (average DESC, product_id);
CREATE INDEX rating_totals_category_rank
    ON popularity_engine.rating_totals (category, average DESC, product_id);
COMMENT ON TABLE popularity_engine.rating_totals IS
  'Internal: per product, its rating_hourly rows summed (reviews, rating sum, average = rating_sum / reviews) and its category as there.';

SELECT pg_catalog.pg_extension_config_dump('popularity_engine.rating_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.rating_totals', '');

-- Maintenance (refresh_popularity) -----------------------------------------------------------

-- Sums the rating_hourly rows of some products into rating_totals again; a product left without
-- rows leaves the totals.
CREATE FUNCTION popularity_engine.recompute_rating_totals(product_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    INSERT INTO popularity_engine.rating_totals AS t (product_id, category, reviews, rating_sum, average)
    SELECT h.product_id, min(h.category), sum(h.reviews), sum(h.rating_sum), sum(h.rating_sum) / sum(h.reviews)
      FROM popularity_engine.rating_hourly h
     WHERE h.product_id = ANY (product_ids)
     GROUP BY h.product_id
    ON CONFLICT (product_id) DO UPDATE
       SET (category, reviews, rating_sum, average)
         = (excluded.category, excluded.reviews, excluded.rating_sum, excluded.average);
    DELETE FROM popularity_engine.rating_totals t
     WHERE t.product_id = ANY (product_ids)
       AND NOT EXISTS (SELECT 1 FROM popularity_engine.rating_hourly h WHERE h.product_id = t.product_id);
END
$fn$;
COMMENT ON FUNCTION popularity_engine.recompute_rating_totals(bigint[]) IS
  'Internal: recomputes the rating_totals rows of the given products from rating_hourly.';

-- Recomputes the rating_hourly rows of some (product, hour) pairs (product_ids[i], hours[i])
-- from their hourly buckets, then the products' totals. Like recompute_daily, it replaces rather
-- than adds, so that a row always equals its buckets. The product's category is the catalog's
-- now, written to all its rows: a product's rows and total always share one category.
CREATE FUNCTION popularity_engine.recompute_rating_hours(product_ids bigint[], hours timestamptz[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_products bigint[] := ARRAY(SELECT DISTINCT p FROM unnest(product_ids) AS p);
BEGIN
    INSERT INTO popularity_engine.rating_hourly AS r (product_id, bucket_hour, category, reviews, rating_sum)
    SELECT s.product_id, s.bucket_hour, c.category, s.reviews, s.rating_sum
      FROM (SELECT h.product_id, h.bucket_hour, sum(h.events::float8) AS reviews,
                   sum(h.value_sum) AS rating_sum
              FROM (SELECT DISTINCT x.product_id, x.bucket_hour
                      FROM unnest(product_ids, hours) AS x(product_id, bucket_hour)) p
              JOIN popularity_engine.popularity_hourly h
                ON h.bucket_hour = p.bucket_hour AND h.product_id = p.product_id
              JOIN popularity_engine.interaction_weights w
                ON w.interaction_type = h.interaction_type
               AND w.counter = popularity_engine.mode_counter('top_rated')
             GROUP BY 1, 2) s
      LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
     WHERE s.reviews > 0
    ON CONFLICT (product_id, bucket_hour) DO UPDATE
       SET (category, reviews, rating_sum) = (excluded.category, excluded.reviews, excluded.rating_sum);
    PERFORM popularity_engine.place_rating_products(v_products);
    PERFORM popularity_engine.recompute_rating_totals(v_products);
END
$fn$;
COMMENT ON FUNCTION popularity_engine.recompute_rating_hours(bigint[], timestamptz[]) IS
  'Internal: recomputes the rating_hourly rows of the given (product, hour) pairs from popularity_hourly, and the products'' rating_totals.';

-- Gives some products' rating_hourly rows and totals the category the catalog has now. One
-- statement, so that both read the catalog once: the outside reading subtracts a product's hours
-- of a category from its total in that category.
CREATE FUNCTION popularity_engine.place_rating_products(product_ids bigint[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $fn$
    WITH placed AS MATERIALIZED (
        SELECT p.product_id, k.category
          FROM (SELECT DISTINCT x AS product_id FROM unnest(product_ids) AS x) p
          LEFT JOIN popularity_engine.catalog k ON k.product_id = p.product_id),
    hours AS (
        UPDATE popularity_engine.rating_hourly r SET category = c.category
          FROM placed c
         WHERE r.product_id = c.product_id AND r.category IS DISTINCT FROM c.category)
    UPDATE popularity_engine.rating_totals t SET category = c.category
      FROM placed c
     WHERE t.product_id = c.product_id AND t.category IS DISTINCT FROM c.category
$fn$;
COMMENT ON FUNCTION popularity_engine.place_rating_products(bigint[]) IS
  'Internal: sets the category of the given products'' rating_hourly and rating_totals rows to the catalog''s.';

-- Everything again from the hourly buckets since the horizon (with the window lists: after an
-- update, or when the weights, and with them the types that count as reviews, changed).
CREATE FUNCTION popularity_engine.rebuild_rating_hours(horizon date) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_products bigint[];
    v_hours timestamptz[];
BEGIN
    DELETE FROM popularity_engine.rating_hourly;
    DELETE FROM popularity_engine.rating_totals;
    SELECT array_agg(h.product_id), array_agg(h.bucket_hour) INTO v_products, v_hours
      FROM popularity_engine.popularity_hourly h
      JOIN popularity_engine.interaction_weights w
        ON w.interaction_type = h.interaction_type
       AND w.counter = popularity_engine.mode_counter('top_rated')
     WHERE h.bucket_hour >= popularity_engine.utc_day_start(horizon);
    IF v_products IS NOT NULL THEN
        PERFORM popularity_engine.recompute_rating_hours(v_products, v_hours);
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.rebuild_rating_hours(date) IS
  'Internal: recomputes rating_hourly and rating_totals from popularity_hourly for the hours since horizon.';

-- The review hours of the refresh's delta (days since horizon), recomputed from the hourly
-- buckets, final by now.
CREATE FUNCTION popularity_engine.add_delta_to_rating_hours(horizon date) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_products bigint[];
    v_hours timestamptz[];
BEGIN
    SELECT array_agg(t.product_id), array_agg(t.bucket_hour) INTO v_products, v_hours
      FROM (SELECT DISTINCT dl.product_id, date_trunc('hour', dl.occurred_at, 'UTC') AS bucket_hour
              FROM pg_temp.pe_delta dl
              JOIN popularity_engine.interaction_weights w
                ON w.interaction_type = dl.interaction_type::popularity_engine.interaction_type
               AND w.counter = popularity_engine.mode_counter('top_rated')
             WHERE dl.counted AND dl.occurred_at >= popularity_engine.utc_day_start(horizon)) t;
    IF v_products IS NOT NULL THEN
        PERFORM popularity_engine.recompute_rating_hours(v_products, v_hours);
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.add_delta_to_rating_hours(date) IS
  'Internal: recomputes the rating_hourly rows (and totals) of the review hours in the delta of refresh_popularity.';

-- The hours before a new horizon leave rating_hourly and their products' totals.
CREATE FUNCTION popularity_engine.drop_rating_hours_before(horizon date) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_products bigint[];
BEGIN
    WITH dropped AS (DELETE FROM popularity_engine.rating_hourly r
                      WHERE r.bucket_hour < popularity_engine.utc_day_start(horizon)
                      RETURNING r.product_id)
    SELECT array_agg(DISTINCT d.product_id) INTO v_products FROM dropped d;
    IF v_products IS NOT NULL THEN
        PERFORM popularity_engine.recompute_rating_totals(v_products);
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.drop_rating_hours_before(date) IS
  'Internal: removes the rating_hourly rows before horizon and updates the totals of their products.';

-- Reading (popular_products) -----------------------------------------------------------------

-- A short window: the products' averages over the hours inside it.
CREATE FUNCTION popularity_engine.rating_averages_inside(
    since timestamptz, until timestamptz, category text, moved bigint[], n integer)
RETURNS TABLE (product_id bigint, score double precision)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $fn$
#variable_conflict use_variable
BEGIN
    -- planned for the category at hand: without one, the condition on it folds away
    RETURN QUERY
    SELECT a.product_id, a.score
      FROM (SELECT h.product_id, sum(h.rating_sum) / sum(h.reviews) AS score
              FROM popularity_engine.rating_hourly h
             WHERE h.bucket_hour >= since AND h.bucket_hour <= until
               AND (category IS NULL OR h.category = category OR h.product_id = ANY (moved))
             GROUP BY h.product_id) a
     WHERE a.score > 0
       AND (category IS NULL OR EXISTS (SELECT 1 FROM popularity_engine.catalog k
                                         WHERE k.product_id = a.product_id AND k.category = category))
     ORDER BY a.score DESC, a.product_id
     LIMIT n;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.rating_averages_inside(timestamptz, timestamptz, text, bigint[], integer) IS
  'Internal: the n best review averages over the rating_hourly rows from since to until (optionally of a category, with the products that moved into it).';

-- A window reaching back near the horizon: the products with hours outside it get their totals
-- less those hours; every other product's total is its window's; the products that moved into
-- the category are averaged from their hours inside the window.
CREATE FUNCTION popularity_engine.rating_averages_outside(
    since timestamptz, until timestamptz, category text, moved bigint[], n integer)
RETURNS TABLE (product_id bigint, score double precision)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $fn$
#variable_conflict use_variable
BEGIN
    RETURN QUERY
    WITH outside AS MATERIALIZED (
        SELECT h.product_id, sum(h.reviews) AS reviews, sum(h.rating_sum) AS rating_sum
          FROM popularity_engine.rating_hourly h
         WHERE (h.bucket_hour < since OR h.bucket_hour > until)
           AND (category IS NULL OR h.category = category)
         GROUP BY h.product_id),
    scored AS (
        SELECT t.product_id, (t.rating_sum - o.rating_sum) / (t.reviews - o.reviews) AS score
          FROM outside o JOIN popularity_engine.rating_totals t ON t.product_id = o.product_id
         WHERE t.reviews > o.reviews AND t.product_id <> ALL (moved)
        UNION ALL
        (SELECT t.product_id, t.average
           FROM popularity_engine.rating_totals t
          WHERE (category IS NULL OR t.category = category)
            AND t.product_id NOT IN (SELECT o.product_id FROM outside o)
            AND t.product_id <> ALL (moved)
            AND (category IS NULL OR EXISTS (SELECT 1 FROM popularity_engine.catalog k
                                              WHERE k.product_id = t.product_id AND k.category = category))
          ORDER BY t.average DESC, t.product_id
          LIMIT n)
        UNION ALL
        SELECT h.product_id, sum(h.rating_sum) / sum(h.reviews)
          FROM popularity_engine.rating_hourly h
         WHERE h.product_id = ANY (moved) AND h.bucket_hour >= since AND h.bucket_hour <= until
         GROUP BY h.product_id)
    SELECT s.product_id, s.score
      FROM scored s
     WHERE s.score > 0
       AND (category IS NULL OR EXISTS (SELECT 1 FROM popularity_engine.catalog k
                                         WHERE k.product_id = s.product_id AND k.category = category))
     ORDER BY s.score DESC, s.product_id
     LIMIT n;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.rating_averages_outside(timestamptz, timestamptz, text, bigint[], integer) IS
  'Internal: the n best review averages from since to until, from rating_totals less the rating_hourly rows outside the window (optionally of a category, with the products that moved into it).';

-- top_rated over the review hours since `since`, of all products or of one category, or NULLs
-- when rating_hourly does not cover the window (see window_lists_cover): the caller then
-- averages the hourly buckets. Reads the hours inside the window or those outside it, whichever
-- costs less.
CREATE FUNCTION popularity_engine.top_rated_from_hours(
    since timestamptz, category text, n integer,
    OUT product_ids bigint[], OUT scores double precision[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_variable
DECLARE
    v_now timestamptz := now();
    v_moved bigint[];
BEGIN
    IF NOT popularity_engine.window_lists_cover(since, category) THEN
        RETURN;
    END IF;
    -- products that joined the category after the refresh wrote their hours
    v_moved := ARRAY(SELECT m.product_id FROM popularity_engine.window_category_moves m
                      WHERE m.category = category);
    -- A row outside costs about three inside (a join with its total besides the sum), and the
    -- totals' own reading a few milliseconds: the outside reading from about 23 of the 31 days.
    IF popularity_engine.kept_before_window(since) < 1.0 / 3 THEN
        SELECT coalesce(array_agg(a.product_id ORDER BY a.score DESC, a.product_id), '{}'),
               coalesce(array_agg(a.score ORDER BY a.score DESC, a.product_id), '{}')
          INTO product_ids, scores
          FROM popularity_engine.rating_averages_outside(since, v_now, category, v_moved, n) a;
    ELSE
        SELECT coalesce(array_agg(a.product_id ORDER BY a.score DESC, a.product_id), '{}'),
               coalesce(array_agg(a.score ORDER BY a.score DESC, a.product_id), '{}')
          INTO product_ids, scores
          FROM popularity_engine.rating_averages_inside(since, v_now, category, v_moved, n) a;
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.top_rated_from_hours(timestamptz, text, integer) IS
  'Internal: popular_products top_rated within a window, of all products or of one category, from rating_hourly and rating_totals; NULLs when they do not cover the window.';
