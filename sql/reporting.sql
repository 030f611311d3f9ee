-- popularity_engine: the reporting views (for BI tools and the reader role).

CREATE VIEW popularity_engine.popularity_report AS
SELECT p.product_id, c.category, c.brand, c.price, c.inventory, c.is_active,
       p.view_count, p.click_count, p.search_count, p.search_click_count, p.wishlist_count,
       p.cart_add_count, p.order_count, p.review_count, p.rating_avg,
       p.popularity_score, p.trending_score,
       rank() OVER (ORDER BY p.popularity_score DESC) AS popularity_rank,
       CASE WHEN p.view_count > 0 THEN p.order_count::float8 / p.view_count END AS view_to_order_rate,
       p.last_interaction, p.last_updated
  FROM popularity_engine.product_popularity p
  LEFT JOIN popularity_engine.catalog c ON c.product_id = p.product_id;
COMMENT ON VIEW popularity_engine.popularity_report IS
  'One row per product with counters, scores, catalog attributes, its popularity rank and view-to-order rate.';

CREATE VIEW popularity_engine.trending_products AS
SELECT t.rank, t.product_id, t.score AS trending_score, c.category, c.brand,
       p.view_count, p.cart_add_count, p.order_count
  FROM popularity_engine.popular_products('trending'::popularity_engine.popularity_mode, NULL::interval, NULL::text, 100) t
  LEFT JOIN popularity_engine.catalog c ON c.product_id = t.product_id
  LEFT JOIN popularity_engine.product_popularity p ON p.product_id = t.product_id;
COMMENT ON VIEW popularity_engine.trending_products IS
  'The 100 most trending products (trending_score at the last refresh), with their catalog attributes and counters.';

CREATE VIEW popularity_engine.daily_interaction_stats AS
SELECT (h.bucket_hour AT TIME ZONE 'UTC')::date AS day, h.interaction_type,
       sum(h.events) AS events, count(DISTINCT h.product_id) AS products
  FROM popularity_engine.popularity_hourly h
 GROUP BY 1, 2;
COMMENT ON VIEW popularity_engine.daily_interaction_stats IS
  'Aggregated interactions with a product per UTC day and type (wishlist: adds only), from the hourly buckets kept by refresh_popularity, and how many distinct products they touched.';

CREATE VIEW popularity_engine.user_affinity AS
SELECT u.user_id, u.dimension, u.value, u.affinity, u.events,
       rank() OVER (PARTITION BY u.user_id, u.dimension ORDER BY u.affinity DESC, u.value) AS rank,
       u.affinity / nullif(max(u.affinity) OVER (PARTITION BY u.user_id, u.dimension), 0) AS relative_affinity
  FROM popularity_engine.user_preferences u;
COMMENT ON VIEW popularity_engine.user_affinity IS
  'Per user: category and brand affinities ranked within the user, and relative to the user''s strongest one (what recommend() uses).';

CREATE VIEW popularity_engine.search_analytics AS
WITH searches AS (
    SELECT lower(s.query) AS query, count(*) AS searches, count(DISTINCT s.user_id) AS users,
           avg(cardinality(s.result_product_ids)) AS avg_results,
           count(*) FILTER (WHERE cardinality(s.result_product_ids) = 0) AS zero_result_searches,
           max(s.occurred_at) AS last_searched
      FROM popularity_engine.search_interactions s GROUP BY 1),
clicks AS (
    SELECT lower(i.metadata ->> 'search_query') AS query, count(*) AS clicks
      FROM popularity_engine.product_interactions i
     WHERE i.interaction_type = 'search_click' AND i.metadata ? 'search_query'
     GROUP BY 1)
SELECT s.query, s.searches, s.users, s.avg_results, s.zero_result_searches,
       coalesce(c.clicks, 0) AS clicks,
       coalesce(c.clicks, 0)::float8 / s.searches AS click_through_rate, s.last_searched
  FROM searches s LEFT JOIN clicks c USING (query);
COMMENT ON VIEW popularity_engine.search_analytics IS
  'Per search query (case-insensitive) within the retained log: searches, users, average and zero result counts, clicks from search and click-through rate.';
