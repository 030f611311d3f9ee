-- Deterministic shop data for benchmarks. psql variables (with defaults set by bench/run.sh):
--   :products :users :events :days :seed
-- Product popularity and user activity are Zipf-distributed (rank = floor(N^u) for uniform u,
-- so P(rank <= r) = ln r / ln N), sessions mix every interaction type, timestamps spread over
-- :days days and are written in time order, one transaction per day, the way a live shop fills
-- the log. Searches carry result lists. Everything goes straight into the tables (the tracking
-- functions are measured separately).
\set ON_ERROR_STOP on
SELECT setseed(:seed) \gset
SELECT popularity_engine.ensure_partitions(now() - make_interval(days => :days)) AS partitions_created;

INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory, is_active)
SELECT p,
       'category-' || (1 + (hashint4(p) & 2147483647) % 50),
       'brand-' || (1 + (hashint4(p * 7) & 2147483647) % 200),
       round((5 * exp(((hashint4(p * 13) & 2147483647) / 2147483647.0) * 5))::numeric, 2),
       CASE WHEN (hashint4(p * 17) & 2147483647) % 20 = 0 THEN 0
            ELSE (hashint4(p * 19) & 2147483647) % 500 END,
       (hashint4(p * 23) & 2147483647) % 50 <> 0
  FROM generate_series(1, :products) AS p
ON CONFLICT (product_id) DO NOTHING;

DROP TABLE IF EXISTS pg_temp.bench_types;
CREATE TEMP TABLE bench_types (itype popularity_engine.interaction_type, upto double precision);
INSERT INTO bench_types VALUES
  ('view', 0.40), ('product_view', 0.50), ('click', 0.62), ('page_view', 0.66), ('search_click', 0.70),
  ('search', 0.72), ('add_to_cart', 0.78), ('cart_add', 0.80), ('remove_from_cart', 0.82),
  ('update_cart_quantity', 0.83), ('wishlist', 0.85), ('wishlist_add', 0.86), ('wishlist_remove', 0.865),
  ('purchase', 0.885), ('order', 0.90), ('review', 0.915), ('login', 0.96), ('logout', 1.0);

-- one transaction per day, oldest first
SELECT format(
  $q$INSERT INTO popularity_engine.product_interactions
        (user_id, product_id, interaction_type, event_value, occurred_at, session_id, metadata)
     SELECT e.user_id,
            CASE WHEN t.itype IN ('login', 'logout') THEN NULL ELSE e.product_id END,
            t.itype,
            CASE t.itype WHEN 'add_to_cart' THEN 1 + floor(e.r * 3)
                         WHEN 'remove_from_cart' THEN floor(e.r * 2)
                         WHEN 'update_cart_quantity' THEN floor(e.r * 4)
                         WHEN 'wishlist' THEN CASE WHEN e.r < 0.85 THEN 1 ELSE 0 END
                         WHEN 'review' THEN 1 + floor(e.r * 4.999)
                         ELSE 1 END,
            e.at, 's' || e.user_id || '-' || %1$s,
            CASE WHEN t.itype = 'search' THEN jsonb_build_object('search_query', 'query ' || (e.product_id %% 500)) END
       FROM (SELECT 1 + floor(exp(random() * ln(%2$s::float8)))::int8 %% %2$s AS user_id,
                    1 + floor(exp(random() * ln(%3$s::float8)))::int8 %% %3$s AS product_id,
                    random() AS r, random() AS rt,
                    now() - make_interval(days => %1$s) + random() * interval '1 day' AS at
               FROM generate_series(1, %4$s)) e
       CROSS JOIN LATERAL (SELECT itype FROM bench_types WHERE upto >= e.rt ORDER BY upto LIMIT 1) t
      ORDER BY e.at$q$,
  d, :users, :products, (:events / :days)) AS day_batch
  FROM generate_series(:days, 1, -1) AS d \gexec

INSERT INTO popularity_engine.search_interactions (user_id, query, result_product_ids, occurred_at)
SELECT 1 + floor(exp(random() * ln(:users::float8)))::int8 % :users,
       'query ' || (k % 500),
       ARRAY(SELECT 1 + ((k * 31 + i * 977) % :products) FROM generate_series(0, 9) AS i),
       now() - random() * make_interval(days => :days)
  FROM generate_series(1, greatest(:events / 50, 1)) AS k;

ANALYZE popularity_engine.catalog;
ANALYZE popularity_engine.product_interactions;
ANALYZE popularity_engine.search_interactions;
