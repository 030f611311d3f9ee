-- Personalization: affinities, similarity, recommend, rank_products, user_profile.
CREATE EXTENSION IF NOT EXISTS popularity_engine;
DROP EXTENSION popularity_engine;
CREATE EXTENSION popularity_engine;

SELECT date_trunc('hour', now()) - interval '1 day' AS t0 \gset

INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory, is_active) VALUES
  (101, 'laptops', 'acme', 1000, 10, true), (102, 'laptops', 'acme', 1200, 3, true),
  (103, 'laptops', 'globex', 900, 50, true), (104, 'laptops', 'acme', 1100, 0, true),
  (105, 'laptops', 'acme', 950, 10, false), (106, 'laptops', 'initech', 1050, 8, true),
  (107, 'laptops', 'globex', 990, 5, true), (108, 'laptops', 'acme', 1010, NULL, true),
  (201, 'phones', 'acme', 500, 20, true), (202, 'phones', 'globex', 450, 20, true),
  (203, 'phones', 'initech', 700, 20, true), (301, 'books', 'wonka', 20, 100, true),
  (302, 'books', 'wonka', 25, 100, true);
-- product 401 is tracked but has no catalog row

-- background traffic: every product viewed, some more than others (anonymous)
SELECT count(popularity_engine.track(NULL, p, 'view', occurred_at => :'t0'::timestamptz - make_interval(hours => k)))
  FROM unnest(ARRAY[101,102,103,104,105,106,107,108,201,202,203,301,302,401]) AS p,
       generate_series(1, 3) AS k;
SELECT count(popularity_engine.track(NULL, p, 'add_to_cart'::popularity_engine.interaction_type, 1, occurred_at => :'t0'::timestamptz))
  FROM unnest(ARRAY[104, 105, 401, 203, 203]) AS p;
-- co-interactions for similarity: users 11..14 view 101 and 106 together, 15..17 view 101 and 201
SELECT count(popularity_engine.track(u, p, 'view', occurred_at => :'t0'::timestamptz))
  FROM generate_series(11, 14) AS u, unnest(ARRAY[101, 106]) AS p;
SELECT count(popularity_engine.track(u, p, 'view', occurred_at => :'t0'::timestamptz))
  FROM generate_series(15, 17) AS u, unnest(ARRAY[101, 201]) AS p;

-- user 1: a laptop shopper who just bought 101; user 2: 4 interactions; user 3: exactly 5
SELECT popularity_engine.track(1, 101, 'view', occurred_at => :'t0'::timestamptz - interval '720 hours') > 0,
       popularity_engine.track(1, 102, 'view', occurred_at => :'t0'::timestamptz) > 0,
       popularity_engine.track(1, 103, 'click', occurred_at => :'t0'::timestamptz) > 0,
       popularity_engine.track(1, 102, 'add_to_cart', 1, occurred_at => :'t0'::timestamptz) > 0,
       popularity_engine.track(1, 101, 'purchase', occurred_at => :'t0'::timestamptz) > 0,
       popularity_engine.track(1, 201, 'wishlist', occurred_at => :'t0'::timestamptz) > 0;
SELECT count(popularity_engine.track(2, 301, 'view', occurred_at => :'t0'::timestamptz)) FROM generate_series(1, 4);
SELECT count(popularity_engine.track(3, 301, 'view', occurred_at => :'t0'::timestamptz)) FROM generate_series(1, 5);

CALL popularity_engine.refresh_popularity();
CALL popularity_engine.refresh_user_preferences(:'t0');
CALL popularity_engine.refresh_item_similarity();

-- affinities: sum(affinity_weight x 0.5^(age / 30 days)) per category and brand
SELECT dimension, value, round(affinity::numeric, 6) AS affinity, events
  FROM popularity_engine.user_preferences WHERE user_id = 1 ORDER BY dimension, affinity DESC, value;
SELECT round((1.0 * 0.5 + 1.0 + 1.2 + 1.5 + 2.0)::numeric, 6) AS laptops_by_hand,
       round((1.0 * 0.5 + 1.0 + 1.5 + 2.0 + 1.3)::numeric, 6) AS acme_by_hand;
SELECT user_id, interaction_count FROM popularity_engine.user_profiles WHERE user_id IN (1, 2, 3) ORDER BY 1;

-- a refresh with nothing new changes nothing; an affinity weight edit rebuilds
CALL popularity_engine.refresh_user_preferences(:'t0');
SELECT round(affinity::numeric, 6) FROM popularity_engine.user_preferences
 WHERE user_id = 1 AND dimension = 'category' AND value = 'laptops';
UPDATE popularity_engine.interaction_weights SET affinity_weight = 3 WHERE interaction_type = 'purchase';
CALL popularity_engine.refresh_user_preferences(:'t0');
SELECT round(affinity::numeric, 6) AS laptops_after_edit FROM popularity_engine.user_preferences
 WHERE user_id = 1 AND dimension = 'category' AND value = 'laptops';
UPDATE popularity_engine.interaction_weights SET affinity_weight = 2 WHERE interaction_type = 'purchase';
CALL popularity_engine.refresh_user_preferences(:'t0');

-- similarity from co-interactions
SELECT rank, product_id, round(score::numeric, 6) AS score FROM popularity_engine.similar_products(101, 3);
SELECT count(*) AS similar_to_unknown FROM popularity_engine.similar_products(999);

-- cold start at exactly the threshold: 4 interactions is cold, 5 is not
SELECT DISTINCT reason, personalization FROM popularity_engine.recommend(2, 10);
SELECT count(*) FILTER (WHERE reason = 'cold_start') AS cold_rows, count(*) AS rows
  FROM popularity_engine.recommend(3, 10);
-- a user never seen is cold too
SELECT rank, product_id, reason FROM popularity_engine.recommend(4, 5);

-- 106 by hand: history 101, 102, 103, 201, all last seen at t0, so all four weigh 1 in the
-- recent part too (one moment: no order among them); similarities 101-106 0.409218, 101-201
-- 0.392690, 101-102 = 101-103 0.080048, 102-103 0.25, 102-201 = 103-201 0.074067;
-- sums 106: 0.409218, best 101: 0.080048 x 2 + 0.392690 = 0.552786, the same in both parts;
-- cf = sqrt(0.409218 / 0.552786) = 0.860397,
-- personalization = 0.8 x 0.860397 + 0.15 x 1 (laptops, the top category) = 0.838317
-- warm user 1: never out of stock (104), inactive (105) or uncatalogued (401) products
SELECT rank, product_id, round(score::numeric, 6) AS score, round(base_relevance::numeric, 6) AS base,
       round(personalization::numeric, 6) AS personal, round(popularity::numeric, 6) AS popular, reason
  FROM popularity_engine.recommend(1, 20);
SELECT count(*) AS hidden_products FROM popularity_engine.recommend(1, 100) WHERE product_id IN (104, 105, 401);

-- without a whole history (long_history_length = 0) the recent part alone makes cf, whatever
-- weight_long_history: the history seen at one moment gives 106 the same 0.838317
SET popularity_engine.long_history_length = 0;
SELECT round(personalization::numeric, 6) AS personal_recent_only
  FROM popularity_engine.recommend(1, 20) WHERE product_id = 106;
RESET popularity_engine.long_history_length;

-- history ranks: k counts the products last seen strictly later, so products seen at the same
-- moment share it and the next one counts them all. User 5 (rolled back, after the similarity
-- job): 101 at t0 (k = 0), 102 and 103 an hour before (k = 1), 201 two hours before (k = 3);
-- recent weights with a half-life of 1: 1, 0.5, 0.5, 0.125. With cf alone in personalization:
-- 102: recent sum 0.080048 + 0.5 x 0.25 + 0.125 x 0.074067 = 0.214306, best 201: 0.392690 +
-- 0.5 x 0.074067 x 2 = 0.466757; whole-history sum 0.404115, best 101: 0.552786;
-- cf = sqrt(0.5 x 0.214306 / 0.466757 + 0.5 x 0.404115 / 0.552786) = 0.771424
-- (by position, 103 at k = 2: 0.731342; with k = 2 for 201, dense ranks: 0.777826)
-- and 106 (0.409218 from 101 in both parts): sqrt(0.5 x 0.409218 / 0.466757 + 0.5 x 0.409218 / 0.552786) = 0.899168
-- (0.899169 from the similarities rounded to 6 places)
BEGIN;
SELECT count(popularity_engine.track(5, p, 'view', occurred_at => :'t0'::timestamptz - make_interval(hours => h)))
  FROM (VALUES (101, 0), (101, 0), (102, 1), (103, 1), (201, 2)) AS v(p, h);
SET LOCAL popularity_engine.weight_category = 0;
SET LOCAL popularity_engine.weight_brand = 0;
SELECT product_id, round(personalization::numeric, 6) AS cf
  FROM popularity_engine.rank_products(5, ARRAY[102, 106]) ORDER BY product_id;
-- parts of 2 products take 102 and 103 both (k = 1 < 2), whatever their ids, and not 201:
-- recent sums 102: 0.080048 + 0.5 x 0.25 = 0.205048, best 201: 0.466757; whole sums 102:
-- 0.330048, best 201: 0.540824; cf(102) = sqrt(0.5 x 0.205048 / 0.466757 + 0.5 x 0.330048 /
-- 0.540824) = 0.724422, cf(106) = sqrt(0.5 x 0.409218 / 0.466757 + 0.5 x 0.409218 / 0.540824)
-- = 0.903711 from the similarities rounded to 6 places, 0.903710 from the exact ones (cut at 2
-- by id, 103 left out: 0.4230 and 0.9563)
SET LOCAL popularity_engine.history_length = 2;
SET LOCAL popularity_engine.long_history_length = 2;
SELECT product_id, round(personalization::numeric, 6) AS cf
  FROM popularity_engine.rank_products(5, ARRAY[102, 106]) ORDER BY product_id;
ROLLBACK;

-- the blend, and the 70 % penalty on 101 (ordered within the window)
SELECT product_id,
       abs(score - (0.5 * base_relevance + 0.3 * personalization + 0.2 * popularity)
                   * CASE WHEN product_id = 101 THEN 0.3 ELSE 1 END) < 1e-12 AS blend_holds,
       base_relevance BETWEEN 0 AND 1 AND personalization BETWEEN 0 AND 1 AND popularity BETWEEN 0 AND 1 AS in_range
  FROM popularity_engine.rank_products(1, ARRAY[101, 106, 201, 301, 401]) ORDER BY product_id;

-- exclusions and the category filter
SELECT array_agg(product_id ORDER BY rank) FROM popularity_engine.recommend(1, 5, exclude => ARRAY[102, 103]);
SELECT DISTINCT c.category FROM popularity_engine.recommend(1, 20, 'phones') r
  JOIN popularity_engine.catalog c USING (product_id);
-- at most max_per_category results per category
SET popularity_engine.max_per_category = 2;
SELECT c.category, count(*) FROM popularity_engine.recommend(1, 20) r
  JOIN popularity_engine.catalog c USING (product_id) GROUP BY 1 ORDER BY 1;
RESET popularity_engine.max_per_category;
-- the weights are settings
SET popularity_engine.weight_popularity = 0;
SELECT bool_and(abs(score - (0.5 * base_relevance + 0.3 * personalization)
                            * CASE WHEN product_id = 101 THEN 0.3 ELSE 1 END) < 1e-12) AS without_popularity
  FROM popularity_engine.recommend(1, 20);
RESET popularity_engine.weight_popularity;
SET popularity_engine.weight_popularity = 1.5;
RESET popularity_engine.weight_popularity;

-- deterministic: the same data gives the same list
SELECT (SELECT array_agg(product_id ORDER BY rank) FROM popularity_engine.recommend(1, 20))
     = (SELECT array_agg(product_id ORDER BY rank) FROM popularity_engine.recommend(1, 20)) AS same_order;

-- rank_products: relevance is the base relevance; every candidate comes back, ties by id
SELECT rank, product_id, base_relevance, reason
  FROM popularity_engine.rank_products(4, ARRAY[302, 301, 401], ARRAY[0.2, 0.9, 0.5]);

-- a short list is drawn once more from four times the pool: 60 popular products of a new
-- category, the 45 most popular excluded; the first draw (25 per source) holds only excluded
-- ones, the second (100) the next ten: 5046 to 5055 (rolled back)
BEGIN;
SET LOCAL popularity_engine.max_per_category = 100;
INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory, is_active)
SELECT 5000 + i, 'toys', 'wonka', 10, 5, true FROM generate_series(1, 60) AS i;
INSERT INTO popularity_engine.product_stats (product_id, popularity_score, category, brand)
SELECT 5000 + i, 1000 - i, 'toys', 'wonka' FROM generate_series(1, 60) AS i;
SELECT count(*) AS rows, min(product_id), max(product_id)
  FROM popularity_engine.recommend(4, 10, category => 'toys',
                                   exclude => ARRAY(SELECT 5000 + i FROM generate_series(1, 45) AS i)::bigint[]);
ROLLBACK;

-- user_profile
SELECT p -> 'interaction_count' AS interactions, p -> 'cold_start' AS cold_start,
       p #>> '{top_categories,0,category}' AS top_category, p #>> '{top_brands,0,brand}' AS top_brand,
       jsonb_array_length(p -> 'recent_interactions') AS recent, jsonb_array_length(p -> 'purchases') AS purchases,
       p -> 'cart' AS cart, p -> 'wishlist' AS wishlist
  FROM popularity_engine.user_profile(1) AS p;
SELECT popularity_engine.user_profile(4) - 'user_id';

-- the read functions work in a read-only transaction (as on a hot standby)
BEGIN TRANSACTION READ ONLY;
SELECT count(*) > 0 AS ok FROM popularity_engine.recommend(1, 5);
SELECT count(*) > 0 AS ok FROM popularity_engine.rank_products(1, ARRAY[101, 102]);
SELECT count(*) > 0 AS ok FROM popularity_engine.similar_products(101);
SELECT count(*) > 0 AS ok FROM popularity_engine.popular_products('trending');
SELECT popularity_engine.user_profile(1) IS NOT NULL AS ok;
COMMIT;

-- bad arguments
\set VERBOSITY terse
SELECT * FROM popularity_engine.recommend(NULL);
SELECT * FROM popularity_engine.recommend(0);
SELECT * FROM popularity_engine.recommend(1, 0);
SELECT * FROM popularity_engine.rank_products(1, ARRAY[101, 102], ARRAY[0.5]);
SELECT * FROM popularity_engine.rank_products(1, ARRAY[101], ARRAY[1.5]);
SELECT * FROM popularity_engine.rank_products(1, ARRAY[101, NULL]);
SELECT * FROM popularity_engine.similar_products(101, 0);
\set VERBOSITY default
