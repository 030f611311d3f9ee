-- refresh_popularity and popular_products against hand-computed values and a brute-force
-- recount of the log, for as_of moving forward, backwards, across window edges and weight edits.
CREATE EXTENSION IF NOT EXISTS popularity_engine;
\i tests/reference/reset_popularity.sql

-- pg_temp.mismatches(as_of): products whose aggregates differ from a brute-force recount
\i tests/reference/popularity_mismatches.sql

INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory) VALUES
  (1, 'laptops', 'acme', 999, 5), (2, 'laptops', 'globex', 1299, 2), (3, 'phones', 'acme', 599, 9),
  (4, 'phones', 'initech', 399, 0), (5, 'books', 'acme', 19, 50);
-- product 6 has no catalog row

\set t0 '''2026-06-01 12:00:00+00'''
SELECT popularity_engine.track(1, 1, 'view', occurred_at => :t0::timestamptz - interval '1 hour') > 0,
       popularity_engine.track(2, 1, 'view', occurred_at => :t0::timestamptz - interval '25 hours') > 0,
       popularity_engine.track(3, 1, 'product_view', occurred_at => :t0::timestamptz - interval '200 hours') > 0,
       -- exactly 168 h old: inside the window; 1 microsecond more: outside
       popularity_engine.track(1, 2, 'add_to_cart', 3, occurred_at => :t0::timestamptz - interval '168 hours') > 0,
       popularity_engine.track(1, 2, 'view', occurred_at => :t0::timestamptz - interval '168 hours 1 microsecond') > 0,
       popularity_engine.track(1, 2, 'purchase', occurred_at => :t0::timestamptz - interval '2 hours') > 0,
       -- a wishlist removal is not counted
       popularity_engine.track(1, 3, 'wishlist', 1, occurred_at => :t0::timestamptz - interval '3 hours') > 0,
       popularity_engine.track(1, 3, 'wishlist', 0, occurred_at => :t0::timestamptz - interval '2 hours') > 0,
       popularity_engine.track(2, 3, 'wishlist_add', occurred_at => :t0::timestamptz - interval '1 hour') > 0,
       popularity_engine.track(NULL, 4, 'review', 5, occurred_at => :t0::timestamptz - interval '4 hours') > 0,
       popularity_engine.track(NULL, 4, 'review', 2, occurred_at => :t0::timestamptz - interval '5 hours') > 0,
       popularity_engine.track_search_click(1, 'phone', 4, occurred_at => :t0::timestamptz - interval '6 hours') > 0,
       popularity_engine.track_search_click(2, 'phone', 4, occurred_at => :t0::timestamptz - interval '6 hours') > 0,
       -- after as_of: counted in the counters, not yet in trending
       popularity_engine.track(4, 5, 'view', occurred_at => :t0::timestamptz + interval '1 hour') > 0,
       popularity_engine.track(4, 6, 'click', occurred_at => :t0::timestamptz - interval '30 minutes') > 0,
       popularity_engine.track_search(4, 'laptop', ARRAY[1, 2, 2], occurred_at => :t0::timestamptz - interval '1 hour') > 0;

-- the lag: 15 interactions with a product and 1 search wait for a refresh
SELECT pending_interactions, pending_searches, last_refresh FROM popularity_engine.aggregation_lag();
CALL popularity_engine.refresh_popularity(:t0);
SELECT pending_interactions, pending_searches, refreshed_as_of FROM popularity_engine.aggregation_lag();
SELECT product_id, search_count, search_click_count, view_count, click_count, wishlist_count,
       cart_add_count, order_count, review_count, rating_avg, popularity_score,
       round(trending_score::numeric, 9) AS trending_score
  FROM popularity_engine.product_popularity ORDER BY product_id;
-- the same trending values by hand
SELECT round((2 * 0.5 ^ (1 / 72.0) + 2 * 0.5 ^ (25 / 72.0))::numeric, 9) AS p1,
       round((5 * 0.5 ^ (168 / 72.0) + 10 * 0.5 ^ (2 / 72.0))::numeric, 9) AS p2,
       round((3 * 0.5 ^ (3 / 72.0) + 3 * 0.5 ^ (1 / 72.0))::numeric, 9) AS p3,
       round((1 * 0.5 ^ (6 / 72.0) * 2)::numeric, 9) AS p4,
       round((1 * 0.5 ^ (0.5 / 72.0))::numeric, 9) AS p6;
SELECT count(*) AS mismatches FROM pg_temp.mismatches(:t0);

-- two hours later, incrementally: product 5's view enters, product 2's 168 h old cart leaves
CALL popularity_engine.refresh_popularity(:t0::timestamptz + interval '2 hours');
SELECT count(*) AS mismatches FROM pg_temp.mismatches(:t0::timestamptz + interval '2 hours');
SELECT product_id, round(trending_score::numeric, 9) FROM popularity_engine.product_popularity
 WHERE product_id IN (2, 5) ORDER BY 1;

-- more events arrive, then as_of moves on by a day
SELECT popularity_engine.track(5, 3, 'view', occurred_at => :t0::timestamptz + interval '90 minutes') > 0,
       popularity_engine.track(5, 1, 'order', occurred_at => :t0::timestamptz - interval '160 hours') > 0;
CALL popularity_engine.refresh_popularity(:t0::timestamptz + interval '26 hours');
SELECT count(*) AS mismatches FROM pg_temp.mismatches(:t0::timestamptz + interval '26 hours');

-- as_of in the past: a rebuild, exact again
CALL popularity_engine.refresh_popularity(:t0::timestamptz - interval '3 hours');
SELECT count(*) AS mismatches FROM pg_temp.mismatches(:t0::timestamptz - interval '3 hours');
CALL popularity_engine.refresh_popularity(:t0);
SELECT count(*) AS mismatches FROM pg_temp.mismatches(:t0);

-- idempotent: the same as_of again changes nothing
CREATE TEMP TABLE before AS SELECT * FROM popularity_engine.product_popularity;
CALL popularity_engine.refresh_popularity(:t0);
SELECT count(*) AS changed_rows FROM (
  SELECT product_id, view_count, popularity_score, trending_score FROM popularity_engine.product_popularity
  EXCEPT SELECT product_id, view_count, popularity_score, trending_score FROM before) d;

-- a weight edit applies at the next refresh, without new events
UPDATE popularity_engine.interaction_weights SET popularity_weight = 4 WHERE interaction_type = 'view';
CALL popularity_engine.refresh_popularity(:t0);
SELECT product_id, popularity_score FROM popularity_engine.product_popularity WHERE product_id IN (1, 5) ORDER BY 1;
SELECT count(*) AS mismatches FROM pg_temp.mismatches(:t0);
UPDATE popularity_engine.interaction_weights SET popularity_weight = 2 WHERE interaction_type = 'view';
CALL popularity_engine.refresh_popularity(:t0);
SELECT count(*) AS mismatches FROM pg_temp.mismatches(:t0);

-- every mode; ties break by product_id; products without a catalog row are listed
SELECT m AS mode, string_agg(format('%s:%s', p.product_id, round(p.score::numeric, 4)), ' ' ORDER BY p.rank) AS ranking
  FROM unnest(enum_range(NULL::popularity_engine.popularity_mode)) AS m,
       LATERAL popularity_engine.popular_products(m) AS p
 GROUP BY m ORDER BY m;
-- a category restricts (and drops products without a catalog row); n limits
SELECT * FROM popularity_engine.popular_products('overall', category => 'laptops');
SELECT rank, product_id FROM popularity_engine.popular_products('most_viewed', n => 1);
SELECT count(*) FROM popularity_engine.popular_products('overall', category => 'garden');

-- a time window counts only interactions since the start of the hour that long ago
SELECT popularity_engine.track(9, 5, 'view', occurred_at => now() - interval '10 minutes') > 0,
       popularity_engine.track(9, 5, 'view', occurred_at => now() - interval '20 minutes') > 0,
       popularity_engine.track(9, 3, 'view', occurred_at => now() - interval '30 minutes') > 0,
       popularity_engine.track(9, 3, 'add_to_cart', occurred_at => now() - interval '30 minutes') > 0;
CALL popularity_engine.refresh_popularity();
SELECT rank, product_id, score FROM popularity_engine.popular_products('most_viewed', interval '1 hour');
SELECT rank, product_id, score FROM popularity_engine.popular_products('overall', interval '1 hour');
SELECT rank, product_id FROM popularity_engine.popular_products('trending', interval '1 hour');
SELECT rank, product_id, score FROM popularity_engine.popular_products('most_carted', interval '1 hour', 'phones');
SELECT count(*) AS mismatches FROM pg_temp.mismatches((SELECT as_of FROM popularity_engine.refresh_state));

-- a transaction that tracks, refreshes and tracks again is counted once, after it commits
BEGIN;
SELECT popularity_engine.track(7, 6, 'order') > 0;
CALL popularity_engine.refresh_popularity();
SELECT popularity_engine.track(7, 6, 'order') > 0;
COMMIT;
SELECT order_count FROM popularity_engine.product_popularity WHERE product_id = 6;
CALL popularity_engine.refresh_popularity();
SELECT order_count FROM popularity_engine.product_popularity WHERE product_id = 6;
CALL popularity_engine.refresh_popularity();
SELECT order_count FROM popularity_engine.product_popularity WHERE product_id = 6;

-- bad arguments
\set VERBOSITY terse
CALL popularity_engine.refresh_popularity('infinity');
SELECT * FROM popularity_engine.popular_products('overall', n => 0);
SELECT * FROM popularity_engine.popular_products('overall', interval '-1 hour');
SELECT * FROM popularity_engine.popular_products(NULL);
\set VERBOSITY default

-- every refresh was logged, the failed one (infinity) as an error
SELECT job, status, count(*) FROM popularity_engine.job_runs GROUP BY 1, 2 ORDER BY 1, 2;
