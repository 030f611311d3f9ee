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
