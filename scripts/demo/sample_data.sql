-- Sample shop for the demo: 500 products in 8 categories and 12 brands, 300 users, and a few
-- thousand interactions of every type over the last 30 days, all written through the
-- extension's own tracking functions. Deterministic (setseed), so every run loads the same shop.
\set ON_ERROR_STOP on
SELECT setseed(0.42) \gset

INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory, is_active)
SELECT p,
       (ARRAY['laptops','phones','headphones','cameras','shoes','jackets','books','toys'])[1 + (p % 8)],
       (ARRAY['acme','globex','initech','umbrella','hooli','stark','wayne','tyrell',
              'wonka','soylent','cyberdyne','aperture'])[1 + ((p * 7) % 12)],
       round((5 + random() * 995)::numeric, 2),
       CASE WHEN p % 17 = 0 THEN 0 ELSE (random() * 200)::int END,
       p % 53 <> 0
  FROM generate_series(1, 500) AS p;

-- Browsing sessions: Zipf-like product popularity (a few products get most of the traffic),
-- each user keeps a favourite category, timestamps spread over 30 days, oldest first.
CREATE TEMP TABLE demo_events AS
WITH draws AS (
    SELECT n,
           1 + (random() * 299)::int AS user_id,
           random() AS r_type, random() AS r_product, random() AS r_value,
           now() - random() * interval '30 days' AS at
      FROM generate_series(1, 4000) AS n
)
SELECT n, user_id,
       CASE WHEN r_type < 0.30 THEN 'view'
            WHEN r_type < 0.38 THEN 'product_view'
            WHEN r_type < 0.48 THEN 'click'
            WHEN r_type < 0.53 THEN 'page_view'
            WHEN r_type < 0.60 THEN 'add_to_cart'
            WHEN r_type < 0.63 THEN 'cart_add'
            WHEN r_type < 0.66 THEN 'remove_from_cart'
            WHEN r_type < 0.68 THEN 'cart_remove'
            WHEN r_type < 0.70 THEN 'update_cart_quantity'
            WHEN r_type < 0.71 THEN 'cart_update'
            WHEN r_type < 0.76 THEN 'wishlist'
            WHEN r_type < 0.78 THEN 'wishlist_add'
            WHEN r_type < 0.79 THEN 'wishlist_remove'
            WHEN r_type < 0.84 THEN 'review'
            WHEN r_type < 0.88 THEN 'search'
            WHEN r_type < 0.91 THEN 'purchase'
            WHEN r_type < 0.955 THEN 'login'
            ELSE 'logout' END AS itype,
       -- favourite category of the user for 60 % of draws, Zipf-like product otherwise
       CASE WHEN r_product < 0.6
            THEN 1 + ((user_id % 8) + 8 * floor(random() * 62)::int) % 500
            ELSE 1 + floor(500 * power(random(), 3))::int END AS product_id,
       r_value, at
  FROM draws;

SELECT popularity_engine.track_batch(jsonb_agg(
         jsonb_strip_nulls(jsonb_build_object(
           'user_id', user_id,
           'product_id', CASE WHEN itype IN ('login', 'logout') THEN NULL
                              WHEN itype IN ('page_view', 'search') AND r_value < 0.5 THEN NULL
                              ELSE product_id END,
           'type', itype,
           'value', CASE itype WHEN 'add_to_cart' THEN 1 + floor(r_value * 3)
                               WHEN 'remove_from_cart' THEN floor(r_value * 2)
                               WHEN 'update_cart_quantity' THEN floor(r_value * 4)
                               WHEN 'wishlist' THEN CASE WHEN r_value < 0.8 THEN 1 ELSE 0 END
                               WHEN 'review' THEN 1 + floor(power(r_value, 0.5) * 5) - CASE WHEN r_value = 1 THEN 1 ELSE 0 END
                               END,
           'metadata', CASE WHEN itype = 'search' THEN jsonb_build_object('search_query',
                                 (ARRAY['laptop','phone case','noise cancelling','camera bag',
                                        'running shoes','rain jacket','novel','lego'])[1 + (product_id % 8)])
                            WHEN itype = 'page_view' THEN jsonb_build_object('page_path', '/deals')
                       END,
           'occurred_at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'session_id', 's' || user_id || '-' || to_char(at, 'YYYYMMDD'),
           'event_id', md5('demo-event-' || n)::uuid
         )) ORDER BY at)) AS interactions_loaded
  FROM demo_events;

-- Searches with their result lists, and clicks on some results.
SELECT count(popularity_engine.track_search(
           1 + (random() * 299)::int,
           q,
           ARRAY(SELECT 1 + ((k * 8 + i * 37) % 500) FROM generate_series(0, 9) AS i),
           now() - random() * interval '30 days')) AS searches_loaded
  FROM generate_series(1, 400) AS k,
       LATERAL (SELECT (ARRAY['laptop','phone case','noise cancelling','camera bag',
                              'running shoes','rain jacket','novel','lego'])[1 + k % 8] AS q) AS qq;
SELECT count(popularity_engine.track_search_click(
           1 + (random() * 299)::int, 'laptop', 8 + 8 * floor(random() * 20)::int,
           now() - random() * interval '30 days')) AS search_clicks_loaded
  FROM generate_series(1, 250);

-- Checkouts through the payment-webhook path, idempotent on order_ref.
SELECT sum(popularity_engine.track_order(
           1 + (o % 300),
           ARRAY[1 + floor(500 * power(random(), 2))::int, 1 + floor(500 * power(random(), 2))::int],
           ARRAY[1 + (o % 3), 1],
           'demo-order-' || o,
           now() - random() * interval '30 days')) AS order_lines_loaded
  FROM generate_series(1, 150) AS o;
