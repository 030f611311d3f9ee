-- What the extension knows about the demo shop.
\pset footer off
\echo
\echo '== Interactions per type'
SELECT interaction_type, count(*) AS interactions, count(DISTINCT user_id) AS users,
       count(DISTINCT product_id) AS products
  FROM popularity_engine.product_interactions GROUP BY 1 ORDER BY 1;

\echo '== Carts (user_cart, kept in sync by add/remove/update events)'
SELECT count(DISTINCT user_id) AS users_with_a_cart, count(*) AS cart_lines, sum(quantity) AS items
  FROM popularity_engine.user_cart;

\echo '== Wishlists (user_wishlist)'
SELECT count(DISTINCT user_id) AS users_with_a_wishlist, count(*) AS wishlisted_products
  FROM popularity_engine.user_wishlist;

\echo '== Purchases (purchase_history, from purchase/order events and track_order)'
SELECT count(*) AS purchase_lines, sum(quantity) AS units, count(DISTINCT order_ref) AS orders_with_ref,
       count(DISTINCT user_id) AS buyers
  FROM popularity_engine.purchase_history;

\echo '== Searches (search_interactions)'
SELECT query, count(*) AS searches FROM popularity_engine.search_interactions
 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 8;

\echo '== Popular products, every mode (popular_products(mode, n => 5), after refresh_popularity())'
SELECT m AS mode,
       string_agg(format('#%s %s (%s)', p.rank, p.product_id, round(p.score::numeric, 2)), ', ' ORDER BY p.rank) AS top_5
  FROM unnest(enum_range(NULL::popularity_engine.popularity_mode)) AS m,
       LATERAL popularity_engine.popular_products(m, n => 5) AS p
 GROUP BY m ORDER BY m;

\echo '== Trending now (trending_score = sum(weight x 0.5^(hours_ago / 72)) over the last 7 days)'
SELECT p.rank, p.product_id, p.product_category AS category, round(p.score::numeric, 3) AS trending_score,
       pp.view_count, pp.cart_add_count, pp.order_count
  FROM popularity_engine.popular_products('trending', n => 10) AS p
  JOIN popularity_engine.product_popularity pp USING (product_id)
 ORDER BY p.rank;

\echo '== Most viewed in the last 24 hours, laptops only'
SELECT rank, product_id, score AS views
  FROM popularity_engine.popular_products('most_viewed', interval '24 hours', 'laptops', 5);

\echo '== Recommendations for a cold user (no history: trending, then popular)'
SELECT rank, product_id, round(score::numeric, 3) AS score, round(base_relevance::numeric, 2) AS base,
       round(personalization::numeric, 2) AS personal, round(popularity::numeric, 2) AS popular, reason
  FROM popularity_engine.recommend(999999, 8);

\echo '== Recommendations for a warm user (user 5), with reasons'
SELECT (popularity_engine.user_profile(5) -> 'interaction_count') AS interactions,
       (SELECT string_agg(c ->> 'category', ', ') FROM jsonb_array_elements(popularity_engine.user_profile(5) -> 'top_categories') c) AS top_categories;
SELECT rank, product_id, round(score::numeric, 3) AS score, round(base_relevance::numeric, 2) AS base,
       round(personalization::numeric, 2) AS personal, round(popularity::numeric, 2) AS popular, reason
  FROM popularity_engine.recommend(5, 10);

\echo '== Products similar to product 1'
SELECT * FROM popularity_engine.similar_products(1, 5);

\echo '== Last refresh of each job'
SELECT DISTINCT ON (job) job, status, rows_processed,
       round(extract(epoch FROM finished_at - started_at) * 1000) AS ms, message
  FROM popularity_engine.job_runs ORDER BY job, id DESC;
