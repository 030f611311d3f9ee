-- recommend() reads its candidates' catalog facts best score bound first and stops once no
-- candidate left can enter the list: its list must be the one that scoring every candidate
-- gives. In this shop every product is a candidate of a warm user (3 categories of 20 products,
-- each category's top 25 is read), so the full scoring is rank_products() over the whole
-- catalog, filtered like recommend() (active, in stock or stock unknown, not excluded, the
-- category asked) and cut by max_per_category.
CREATE EXTENSION IF NOT EXISTS popularity_engine;
DROP EXTENSION popularity_engine;
CREATE EXTENSION popularity_engine;
SET client_min_messages = warning;

SELECT date_trunc('hour', now()) - interval '1 day' AS t0 \gset

INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory, is_active)
SELECT p, 'bound-' || chr(97 + (p - 1) / 20), 'maker-' || p % 4, 10 + (p * 37) % 90,
       CASE WHEN p % 11 = 0 THEN 0 WHEN p % 7 = 0 THEN NULL ELSE p % 9 END,
       p % 13 <> 0
  FROM generate_series(1, 60) AS p;

-- background shoppers: every product viewed, some ordered, in overlapping baskets
SELECT count(popularity_engine.track(100 + u, 1 + (u * k * 7) % 60, 'view',
                                     occurred_at => :'t0'::timestamptz - make_interval(hours => u + k)))
  FROM generate_series(1, 60) AS u, generate_series(1, 8) AS k;
SELECT count(popularity_engine.track(100 + u, 1 + (u + k) % 60, 'order',
                                     occurred_at => :'t0'::timestamptz - make_interval(hours => k)))
  FROM generate_series(1, 60) AS u, generate_series(1, 3) AS k WHERE u % 3 = 0;
-- three warm users, each with a history across the three categories
SELECT count(popularity_engine.track(u, 1 + (u * 13 + k * 17) % 60,
                                     (ARRAY['view', 'click', 'add_to_cart', 'order'])[1 + k % 4]::popularity_engine.interaction_type,
                                     occurred_at => :'t0'::timestamptz - make_interval(hours => k)))
  FROM generate_series(1, 3) AS u, generate_series(1, 12) AS k;

CALL popularity_engine.refresh_popularity();
CALL popularity_engine.refresh_user_preferences(:'t0');
CALL popularity_engine.refresh_item_similarity();

SELECT count(*) AS products_with_popularity FROM popularity_engine.product_stats WHERE popularity_score > 0;

-- The full scoring: every catalogued product ranked, filtered, capped per category.
CREATE FUNCTION pg_temp.scored_all(u bigint, n integer, cat text, excluded bigint[])
RETURNS TABLE (product_id bigint, score double precision) LANGUAGE sql AS $$
    SELECT r.product_id, r.score
      FROM (SELECT r.product_id, r.score, r.rank,
                   row_number() OVER (PARTITION BY c.category ORDER BY r.rank) AS in_category
              FROM popularity_engine.rank_products(u, ARRAY(SELECT product_id FROM popularity_engine.catalog)) r
              JOIN popularity_engine.catalog c ON c.product_id = r.product_id
             WHERE c.is_active AND coalesce(c.inventory, 1) > 0
               AND (cat IS NULL OR c.category = cat) AND r.product_id <> ALL (excluded)) r
     WHERE r.in_category <= current_setting('popularity_engine.max_per_category')::integer
     ORDER BY r.rank
     LIMIT n
$$;

-- recommend() against the full scoring, rank by rank: differences and how many were listed
CREATE FUNCTION pg_temp.compared(u bigint, n integer, cat text, excluded bigint[],
                                 OUT differences bigint, OUT listed bigint) LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE a.product_id IS DISTINCT FROM b.product_id OR a.score IS DISTINCT FROM b.score),
           count(a.product_id)
      FROM (SELECT row_number() OVER (ORDER BY r.rank) AS k, r.product_id, r.score
              FROM popularity_engine.recommend(u, n, cat, excluded) r) a
      FULL JOIN (SELECT s.k, s.product_id, s.score
                   FROM pg_temp.scored_all(u, n, cat, excluded) WITH ORDINALITY s(product_id, score, k)) b
        ON a.k = b.k
$$;

SELECT u AS user_id, n, cat, c.*
  FROM generate_series(1, 3) AS u,
       (VALUES (3, NULL), (12, NULL), (40, NULL), (12, 'bound-b')) AS v(n, cat),
       LATERAL pg_temp.compared(u, n, cat, '{}') c
 ORDER BY 1, 2, 3;

-- with each user's first three products excluded
SELECT u AS user_id, c.*
  FROM generate_series(1, 3) AS u,
       LATERAL pg_temp.compared(u, 12, NULL, ARRAY(SELECT product_id FROM popularity_engine.recommend(u, 3))) c
 ORDER BY 1;

-- with other weights, a heavier penalty for recent orders and a tighter cap per category
SET popularity_engine.weight_base_relevance = 0.1;
SET popularity_engine.weight_personalization = 0.3;
SET popularity_engine.weight_popularity = 0.6;
SET popularity_engine.weight_similarity = 0.3;
SET popularity_engine.weight_category = 0.6;
SET popularity_engine.recent_order_penalty = 0.9;
SET popularity_engine.max_per_category = 3;
SELECT u AS user_id, n, c.*
  FROM generate_series(1, 3) AS u, (VALUES (2), (7)) AS v(n),
       LATERAL pg_temp.compared(u, n, NULL, '{}') c
 ORDER BY 1, 2;
RESET ALL;
