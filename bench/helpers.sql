-- Timing helpers for bench/run.sh (schema bench, dropped and recreated each run).
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- Runs `sql` n times (after 3 warm-up runs), each with `$1` bound to the next element of args
-- (cycled), and returns latency percentiles in milliseconds.
CREATE FUNCTION bench.latency(sql text, n integer, args bigint[] DEFAULT ARRAY[0]::bigint[],
                              OUT p50_ms double precision, OUT p99_ms double precision,
                              OUT mean_ms double precision, OUT runs integer)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    samples double precision[] := '{}';
    i integer;
BEGIN
    FOR i IN 1..3 LOOP
        EXECUTE sql USING args[1 + (i % cardinality(args))];
    END LOOP;
    FOR i IN 1..n LOOP
        t0 := clock_timestamp();
        EXECUTE sql USING args[1 + (i % cardinality(args))];
        samples := samples || (extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s), percentile_cont(0.99) WITHIN GROUP (ORDER BY s), avg(s)
      INTO p50_ms, p99_ms, mean_ms FROM unnest(samples) AS s;
    runs := n;
END $$;

-- The textbook full recomputation, as plain SQL: every product's counters, popularity score and
-- trending score from the whole log, written into a table.
CREATE TABLE bench.full_popularity (
    product_id bigint PRIMARY KEY, view_count bigint, cart_add_count bigint, order_count bigint,
    search_click_count bigint, wishlist_count bigint, popularity_score double precision,
    trending_score double precision, last_updated timestamptz);
CREATE PROCEDURE bench.full_recompute()
LANGUAGE sql AS $$
    INSERT INTO bench.full_popularity
    SELECT product_id,
           count(*) FILTER (WHERE interaction_type IN ('view', 'product_view')),
           count(*) FILTER (WHERE interaction_type IN ('add_to_cart', 'cart_add')),
           count(*) FILTER (WHERE interaction_type IN ('purchase', 'order')),
           count(*) FILTER (WHERE interaction_type = 'search_click'),
           count(*) FILTER (WHERE interaction_type = 'wishlist_add' OR (interaction_type = 'wishlist' AND event_value = 1)),
           2 * count(*) FILTER (WHERE interaction_type IN ('view', 'product_view'))
             + 5 * count(*) FILTER (WHERE interaction_type IN ('add_to_cart', 'cart_add'))
             + 10 * count(*) FILTER (WHERE interaction_type IN ('purchase', 'order'))
             + 1 * count(*) FILTER (WHERE interaction_type IN ('search_click', 'click'))
             + 3 * count(*) FILTER (WHERE interaction_type = 'wishlist_add' OR (interaction_type = 'wishlist' AND event_value = 1)),
           coalesce(sum(w.popularity_weight * power(0.5, extract(epoch FROM now() - occurred_at) / 3600 / 72))
                      FILTER (WHERE occurred_at BETWEEN now() - interval '7 days' AND now()), 0),
           now()
      FROM popularity_engine.product_interactions i
      JOIN popularity_engine.interaction_weights w USING (interaction_type)
     WHERE product_id IS NOT NULL
     GROUP BY product_id
    ON CONFLICT (product_id) DO UPDATE
       SET view_count = excluded.view_count, cart_add_count = excluded.cart_add_count,
           order_count = excluded.order_count, search_click_count = excluded.search_click_count,
           wishlist_count = excluded.wishlist_count, popularity_score = excluded.popularity_score,
           trending_score = excluded.trending_score, last_updated = excluded.last_updated;
$$;

-- `n` new interactions spread over products and users, in one transaction, timestamped now.
CREATE PROCEDURE bench.add_events(n bigint, products bigint, users bigint)
LANGUAGE sql AS $$
    INSERT INTO popularity_engine.product_interactions (user_id, product_id, interaction_type, event_value, occurred_at)
    SELECT 1 + floor(exp(random() * ln(users::float8)))::int8 % users,
           1 + floor(exp(random() * ln(products::float8)))::int8 % products,
           (ARRAY['view','view','view','click','add_to_cart','order','wishlist_add','search_click']::popularity_engine.interaction_type[])[1 + floor(random() * 8)::int],
           1, now() - random() * interval '1 hour'
      FROM generate_series(1, n);
$$;
