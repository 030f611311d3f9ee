-- popular_products with a time window, answered from the window lists, against the same query
-- summing the hourly buckets: same products, same order, same scores, for every mode, windows
-- from 1 hour to 12 days and from 17 to 31 days, n of 1 and 20, with and without a category
-- (top_rated: from the review hours; long windows: from the span lists); after late events, a
-- second review type, span lists days old, a weight edit, a new trending half-life, catalog moves
-- and a cleanup. Also the lists' own
-- invariants, checked directly.
CREATE EXTENSION IF NOT EXISTS popularity_engine;
SET client_min_messages = warning;
\i tests/reference/reset_popularity.sql

-- Four categories; every tenth product is not in the catalog, and some have no category.
INSERT INTO popularity_engine.catalog (product_id, category)
SELECT p, CASE WHEN p % 10 <> 5 THEN 'c' || p % 4 END
  FROM generate_series(1, 4000) AS p WHERE p % 10 <> 0;

-- Events with a skewed popularity, spread over 12 days before now (deterministic: no random()).
CREATE FUNCTION pg_temp.add_events(n integer, seed integer, spread interval) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO popularity_engine.product_interactions (user_id, product_id, interaction_type, event_value, occurred_at)
    SELECT 1 + g % 40,
           1 + (((g * 7919 + seed) % 1000) * ((g * 104729 + seed) % 1000)) / 250,
           (ARRAY['view', 'view', 'click', 'add_to_cart', 'order', 'wishlist', 'search_click',
                  'review']::popularity_engine.interaction_type[])[1 + (g * 31 + seed) % 8],
           CASE WHEN (g * 31 + seed) % 8 = 5 THEN (g % 2)::float8   -- wishlist adds and removals
                WHEN (g * 31 + seed) % 8 = 7 THEN 1 + g % 5 ELSE 1 END,
           now() - spread * (((g * 6133 + seed) % 10007) / 10007.0)
      FROM generate_series(1, n) AS g
$$;

-- Every mode x window x n: the listed answer, whether the lists proved it, and the summed answer
-- (lists switched off by a signature that matches nothing, inside a rolled-back transaction).
CREATE FUNCTION pg_temp.compare() RETURNS TABLE (mode popularity_engine.popularity_mode, cases bigint,
                                                 by_lists bigint, by_category_lists bigint,
                                                 differences bigint)
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE cases ON COMMIT DROP AS
    SELECT m.mode, make_interval(hours => h) AS win, k.n, NULL::text AS category
      FROM unnest(enum_range(NULL::popularity_engine.popularity_mode)) AS m(mode),
           generate_series(1, 24 * 12, 11) AS h, (VALUES (1), (20)) AS k(n)
    UNION ALL
    SELECT m.mode, make_interval(hours => h), 20, k.category
      FROM unnest(enum_range(NULL::popularity_engine.popularity_mode)) AS m(mode),
           generate_series(1, 24 * 12, 37) AS h, (VALUES ('c1'), ('c3')) AS k(category)
    UNION ALL   -- long windows, read from the span lists
    SELECT m.mode, make_interval(hours => h), 20, k.category
      FROM unnest(enum_range(NULL::popularity_engine.popularity_mode)) AS m(mode),
           generate_series(24 * 17, 24 * 31, 24 * 7) AS h, (VALUES (NULL), ('c1'), ('c3')) AS k(category);
    CREATE TEMP TABLE listed ON COMMIT DROP AS
    SELECT c.mode, c.win, c.n, c.category AS asked, p.*
      FROM cases c, popularity_engine.popular_products(c.mode, c.win, c.category, c.n) p;
    CREATE TEMP TABLE proved ON COMMIT DROP AS
    SELECT c.mode, c.category,
           CASE WHEN c.mode = 'top_rated'
                THEN (SELECT l.product_ids IS NOT NULL FROM popularity_engine.top_rated_from_hours(
                          date_trunc('hour', now() - c.win, 'UTC'), c.category, c.n) l)
                ELSE (SELECT l.product_ids IS NOT NULL FROM popularity_engine.popular_from_lists(
                          c.mode, CASE WHEN c.mode = 'trending'   -- from the first hour inside its 7 days
                                       THEN greatest(date_trunc('hour', now() - c.win, 'UTC'),
                                                     date_trunc('hour', now() - interval '7 days', 'UTC') + interval '1 hour')
                                       ELSE date_trunc('hour', now() - c.win, 'UTC') END, c.category, c.n) l)
           END AS ok
      FROM cases c;
    UPDATE popularity_engine.refresh_state SET window_signature = 'matches nothing';
    CREATE TEMP TABLE summed ON COMMIT DROP AS
    SELECT c.mode, c.win, c.n, c.category AS asked, p.*
      FROM cases c, popularity_engine.popular_products(c.mode, c.win, c.category, c.n) p;
    RETURN QUERY
    SELECT c.mode, count(*),
           (SELECT count(*) FROM proved p WHERE p.mode = c.mode AND p.ok),
           (SELECT count(*) FROM proved p WHERE p.mode = c.mode AND p.ok AND p.category IS NOT NULL),
           (SELECT count(*) FROM listed l FULL JOIN summed s
                ON (l.mode, l.win, l.n, l.rank) = (s.mode, s.win, s.n, s.rank)
                   AND l.asked IS NOT DISTINCT FROM s.asked
             WHERE coalesce(l.mode, s.mode) = c.mode
               AND (l.product_id IS DISTINCT FROM s.product_id
                    OR NOT abs(l.score - s.score) <= 1e-9 * greatest(1, abs(s.score))))
      FROM cases c GROUP BY c.mode ORDER BY c.mode;
    RAISE EXCEPTION 'rolled back' USING ERRCODE = 'P0001';
EXCEPTION WHEN raise_exception THEN NULL;
END
$$;

-- The invariants: each kept day's roll-up equals its hourly buckets, and no product outside a
-- day's list (of all products, or of its category in the catalog now) scores more than the
-- list's bound (members' scores are exact), and the same of the span lists (sums through
-- window_span_through); each review hour equals its buckets, each product's
-- review total its hours, and a product in a catalog category has its reviews there or is noted
-- as moved into it.
CREATE FUNCTION pg_temp.broken_invariants() RETURNS TABLE (what text, n bigint)
LANGUAGE sql AS $$
    WITH h AS (SELECT h.product_id, popularity_engine.utc_day(h.bucket_hour) AS day, m.mode,
                      sum(popularity_engine.bucket_score(m.mode, w.counter, w.popularity_weight, h.events,
                          h.decay_sum * popularity_engine.decay_factor(
                              h.bucket_hour, popularity_engine.utc_day_start(popularity_engine.utc_day(h.bucket_hour)),
                              popularity_engine.trending_half_life_seconds()))) AS score
                 FROM popularity_engine.popularity_hourly h
                 JOIN popularity_engine.interaction_weights w USING (interaction_type)
                CROSS JOIN unnest(popularity_engine.window_list_modes()) AS m(mode)
                WHERE h.bucket_hour >= popularity_engine.utc_day_start(
                          (SELECT window_horizon FROM popularity_engine.refresh_state))
                GROUP BY 1, 2, 3),
    scores AS (SELECT d.day, m.mode, d.product_id, popularity_engine.day_score(d, m.mode) AS score
                 FROM popularity_engine.popularity_daily d
                CROSS JOIN unnest(popularity_engine.window_list_modes()) AS m(mode)),
    scoped AS (SELECT s.*, sc.scope
                 FROM scores s
                 LEFT JOIN popularity_engine.catalog c USING (product_id)
                CROSS JOIN unnest(popularity_engine.window_scopes(c.category)) AS sc(scope)
                WHERE s.score > 0)
    SELECT 'daily roll-up differs from its hours', count(*)
      FROM h FULL JOIN scores d USING (product_id, day, mode)
     WHERE h.score IS NULL OR d.score IS NULL OR abs(h.score - d.score) > 1e-9 * greatest(1, h.score)
    UNION ALL
    SELECT 'product above its list''s bound', count(*)
      FROM scoped s LEFT JOIN popularity_engine.window_lists l USING (day, mode, scope)
     WHERE s.score > coalesce(l.bound, 0) * (1 + 1e-9)
       AND NOT EXISTS (SELECT 1 FROM popularity_engine.window_list_entries e
                        WHERE (e.day, e.mode, e.scope, e.product_id) = (s.day, s.mode, s.scope, s.product_id))
    UNION ALL
    SELECT 'member score not exact', count(*)
      FROM popularity_engine.window_list_entries e JOIN scoped s USING (day, mode, scope, product_id)
     WHERE abs(e.score - s.score) > 1e-9 * greatest(1, s.score)
    UNION ALL
    SELECT 'span member score not exact', count(*)
      FROM popularity_engine.window_span_entries e
      JOIN popularity_engine.span_scores(NULL, (SELECT window_span_through FROM popularity_engine.refresh_state)) s
     USING (mode, scope, product_id)
     WHERE abs(e.score - s.score) > 1e-9 * greatest(1, s.score)
    UNION ALL
    SELECT 'product above its span list''s bound', count(*)
      FROM popularity_engine.span_scores(NULL, (SELECT window_span_through FROM popularity_engine.refresh_state)) s
      LEFT JOIN popularity_engine.window_span_lists l USING (mode, scope)
     WHERE s.score > coalesce(l.bound, 0) * (1 + 1e-9)
       AND NOT EXISTS (SELECT 1 FROM popularity_engine.window_span_entries e
                        WHERE (e.mode, e.scope, e.product_id) = (s.mode, s.scope, s.product_id))
    UNION ALL
    SELECT 'review hour differs from its buckets', count(*)
      FROM (SELECT h.product_id, h.bucket_hour, sum(h.events::float8) AS reviews, sum(h.value_sum) AS rating_sum
              FROM popularity_engine.popularity_hourly h
              JOIN popularity_engine.interaction_weights w USING (interaction_type)
             WHERE w.counter = 'review_count'
               AND h.bucket_hour >= popularity_engine.utc_day_start(
                       (SELECT window_horizon FROM popularity_engine.refresh_state))
             GROUP BY 1, 2) b
      FULL JOIN popularity_engine.rating_hourly r USING (product_id, bucket_hour)
     WHERE b.reviews IS DISTINCT FROM r.reviews OR b.rating_sum IS DISTINCT FROM r.rating_sum
    UNION ALL
    SELECT 'review total differs from its hours, or its category from theirs', count(*)
      FROM (SELECT r.product_id, sum(r.reviews) AS reviews, sum(r.rating_sum) AS rating_sum,
                   min(r.category) AS category, count(DISTINCT r.category) AS categories
              FROM popularity_engine.rating_hourly r GROUP BY 1) h
      FULL JOIN popularity_engine.rating_totals t USING (product_id)
     WHERE h.reviews IS DISTINCT FROM t.reviews OR h.rating_sum IS DISTINCT FROM t.rating_sum
        OR t.average IS DISTINCT FROM t.rating_sum / t.reviews
        OR h.category IS DISTINCT FROM t.category OR h.categories > 1
    UNION ALL
    SELECT 'reviews of a product outside its catalog category, not noted as moved', count(*)
      FROM popularity_engine.rating_totals t
      JOIN popularity_engine.catalog c USING (product_id)
     WHERE c.category <> '' AND t.category IS DISTINCT FROM c.category
       AND NOT EXISTS (SELECT 1 FROM popularity_engine.window_category_moves m
                        WHERE m.product_id = t.product_id AND m.category = c.category)
$$;

-- top_rated with a window against a recount from the log: the average event_value of the
-- review_count types since the start of the hour, best first, ties by product id; windows from
-- 1 hour to 12 days, with and without a category. Returns the cases, the cases with a non-empty
-- answer, and the rows that differ.
CREATE FUNCTION pg_temp.top_rated_differences() RETURNS TABLE (cases bigint, answered bigint, differences bigint)
LANGUAGE sql AS $$
    WITH cases AS (
        SELECT make_interval(hours => h) AS win, k.category
          FROM generate_series(1, 24 * 12, 13) AS h, (VALUES (NULL), ('c1'), ('c3')) AS k(category)),
    answered AS (
        SELECT c.win, c.category, p.rank, p.product_id, p.score
          FROM cases c, popularity_engine.popular_products('top_rated', c.win, c.category, 20) p),
    recount AS (
        SELECT c.win, c.category, r.rank, r.product_id, r.score
          FROM cases c, LATERAL (
              SELECT (row_number() OVER (ORDER BY avg(t.event_value) DESC, t.product_id))::integer AS rank,
                     t.product_id, avg(t.event_value) AS score
                FROM popularity_engine.product_interactions t
                JOIN popularity_engine.interaction_weights w USING (interaction_type)
                LEFT JOIN popularity_engine.catalog cat ON cat.product_id = t.product_id
               WHERE w.counter = 'review_count' AND t.product_id IS NOT NULL
                 AND t.occurred_at >= date_trunc('hour', now() - c.win, 'UTC')
                 AND (c.category IS NULL OR cat.category = c.category)
               GROUP BY t.product_id
               ORDER BY 1 LIMIT 20) r)
    SELECT (SELECT count(*) FROM cases),
           (SELECT count(DISTINCT (win, category)) FROM answered),
           (SELECT count(*) FROM answered a FULL JOIN recount r
                ON (a.win, a.rank) = (r.win, r.rank) AND a.category IS NOT DISTINCT FROM r.category
             WHERE a.product_id IS DISTINCT FROM r.product_id OR NOT abs(a.score - r.score) <= 1e-12)
$$;

-- top_rated's two readings of rating_hourly, each against averaging the buckets (lists switched
-- off as in compare), whichever span the window would read: the hours inside it, or the totals
-- less the hours outside it. Windows from 1 hour to 12 days (the events' span), with and without
-- a category, those the review hours cover (after a cleanup, how many depends on the time of
-- day). Returns whether any was compared, and the rows that differ for each reading.
CREATE FUNCTION pg_temp.rating_reading_differences()
RETURNS TABLE (compared boolean, inside_differences bigint, outside_differences bigint)
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE rcases ON COMMIT DROP AS
    SELECT date_trunc('hour', now() - make_interval(hours => h), 'UTC') AS since, k.category,
           ARRAY(SELECT m.product_id FROM popularity_engine.window_category_moves m
                  WHERE m.category = k.category) AS moved
      FROM generate_series(1, 24 * 12, 19) AS h, (VALUES (NULL), ('c1'), ('c3')) AS k(category);
    DELETE FROM rcases c WHERE NOT popularity_engine.window_lists_cover(c.since, c.category);
    CREATE TEMP TABLE readings ON COMMIT DROP AS
    SELECT c.since, c.category, 'inside' AS reading, a.*
      FROM rcases c, popularity_engine.rating_averages_inside(c.since, now(), c.category, c.moved, 20) a
    UNION ALL
    SELECT c.since, c.category, 'outside', a.*
      FROM rcases c, popularity_engine.rating_averages_outside(c.since, now(), c.category, c.moved, 20) a;
    UPDATE popularity_engine.refresh_state SET window_signature = 'matches nothing';
    CREATE TEMP TABLE rsummed ON COMMIT DROP AS
    SELECT c.since, c.category, p.product_id, p.score, p.rank
      FROM rcases c,
           popularity_engine.popular_in_window('top_rated', c.since, c.category, 20) p;
    RETURN QUERY
    SELECT (SELECT count(*) > 0 FROM rcases),
           (SELECT count(*) FROM (SELECT * FROM readings r WHERE r.reading = 'inside') r
              FULL JOIN rsummed s ON (r.since, r.product_id) = (s.since, s.product_id)
                                 AND r.category IS NOT DISTINCT FROM s.category
             WHERE r.score IS DISTINCT FROM s.score),
           (SELECT count(*) FROM (SELECT * FROM readings r WHERE r.reading = 'outside') r
              FULL JOIN rsummed s ON (r.since, r.product_id) = (s.since, s.product_id)
                                 AND r.category IS NOT DISTINCT FROM s.category
             WHERE r.score IS DISTINCT FROM s.score);
    RAISE EXCEPTION 'rolled back' USING ERRCODE = 'P0001';
EXCEPTION WHEN raise_exception THEN NULL;
END
$$;

-- The long windows (17 to 31 days) that the span lists (and the day lists after them) prove on
-- their own, of all products and of a category.
CREATE FUNCTION pg_temp.span_lists_used()
RETURNS TABLE (long_cases bigint, span_lists_used boolean, category_span_lists_used boolean)
LANGUAGE sql AS $$
    SELECT count(*), count(*) FILTER (WHERE l.product_ids IS NOT NULL) > 0,
           count(*) FILTER (WHERE l.product_ids IS NOT NULL AND k.category IS NOT NULL) > 0
      FROM unnest(popularity_engine.window_span_modes()) AS m(mode),
           generate_series(24 * 17, 24 * 31, 24 * 7) AS h, (VALUES (NULL), ('c1'), ('c3')) AS k(category),
           popularity_engine.popular_from_span_list(
               m.mode, date_trunc('hour', now() - make_interval(hours => h), 'UTC'), k.category, 20) l
     WHERE popularity_engine.window_lists_cover(date_trunc('hour', now() - make_interval(hours => h), 'UTC'),
                                                k.category)
$$;

-- First build (the refresh after an update from 0.2.0 does the same from the hourly buckets).
SELECT pg_temp.add_events(10000, 1, interval '12 days');
-- and some over a month, so that long windows start after the first events the span lists sum
SELECT pg_temp.add_events(3000, 6, interval '30 days');
CALL popularity_engine.refresh_popularity();
SELECT window_horizon = popularity_engine.utc_day(now()) - 31 AS horizon_31_days_back
  FROM popularity_engine.refresh_state;
SELECT * FROM pg_temp.broken_invariants();
SELECT mode, cases, by_lists > 0 AS lists_used, by_category_lists > 0 AS category_lists_used,
       differences FROM pg_temp.compare();

-- Increments, late events among them, in several refreshes; the lists grow and get rebuilt.
SELECT pg_temp.add_events(4000, 2, interval '12 days');
CALL popularity_engine.refresh_popularity();
SELECT pg_temp.add_events(4000, 3, interval '2 hours');
CALL popularity_engine.refresh_popularity();
SELECT pg_temp.add_events(12000, 4, interval '3 hours');
CALL popularity_engine.refresh_popularity();
-- A list that grows past 400 is rebuilt: a day had more scoring products than any list keeps.
SELECT (SELECT max(c) FROM (SELECT count(DISTINCT d.product_id) AS c FROM popularity_engine.popularity_daily d
                             GROUP BY d.day) x) > 400 AS a_day_with_many_products,
       (SELECT max(c) FROM (SELECT count(*) AS c FROM popularity_engine.window_list_entries e
                             GROUP BY e.day, e.mode, e.scope) y) <= 400
       AND (SELECT max(c) FROM (SELECT count(*) AS c FROM popularity_engine.window_span_entries e
                                 GROUP BY e.mode, e.scope) z) <= 400 AS every_list_kept_short;
SELECT * FROM pg_temp.broken_invariants();
SELECT mode, cases, by_lists > 0 AS lists_used, by_category_lists > 0 AS category_lists_used,
       differences FROM pg_temp.compare();
SELECT * FROM pg_temp.top_rated_differences();
SELECT * FROM pg_temp.rating_reading_differences();
SELECT * FROM pg_temp.span_lists_used();
-- With a second type counted as a review (its value 1), top_rated averages both types.
-- Before a refresh the review hours do not match the weights and are not used; the refresh
-- rebuilds them with both types.
BEGIN;
UPDATE popularity_engine.interaction_weights SET counter = 'review_count' WHERE interaction_type = 'click';
SELECT * FROM pg_temp.top_rated_differences();
CALL popularity_engine.refresh_popularity();
SELECT * FROM pg_temp.broken_invariants();
SELECT * FROM pg_temp.top_rated_differences();
SELECT * FROM pg_temp.rating_reading_differences();
ROLLBACK;

-- Span lists that end three days ago (no refresh since): a long window reads the day lists of
-- the three days after them.
BEGIN;
SELECT popularity_engine.rebuild_span_lists(popularity_engine.utc_day(now()) - 3);
SELECT * FROM pg_temp.broken_invariants();
SELECT mode, cases, by_lists > 0 AS lists_used, by_category_lists > 0 AS category_lists_used,
       differences FROM pg_temp.compare();
SELECT * FROM pg_temp.span_lists_used();
ROLLBACK;

-- A weight edit: until the next refresh the lists do not match the weights and are not used.
UPDATE popularity_engine.interaction_weights SET popularity_weight = 9 WHERE interaction_type = 'click';
SELECT count(*) AS proved_with_stale_weights
  FROM popularity_engine.popular_from_lists('overall', date_trunc('hour', now() - interval '5 days', 'UTC'), NULL, 20)
 WHERE product_ids IS NOT NULL;
CALL popularity_engine.refresh_popularity();
SELECT * FROM pg_temp.broken_invariants();
SELECT mode, cases, by_lists > 0 AS lists_used, by_category_lists > 0 AS category_lists_used,
       differences FROM pg_temp.compare();

-- A new trending half-life: the lists are rebuilt for it.
SET popularity_engine.trending_half_life = '24h';
CALL popularity_engine.refresh_popularity();
SELECT * FROM pg_temp.broken_invariants();
SELECT mode, cases, by_lists > 0 AS lists_used, by_category_lists > 0 AS category_lists_used,
       differences FROM pg_temp.compare();
RESET popularity_engine.trending_half_life;
UPDATE popularity_engine.interaction_weights SET popularity_weight = 1 WHERE interaction_type = 'click';
CALL popularity_engine.refresh_popularity();

-- Catalog moves: popular products change category, uncatalogued ones join one, others leave
-- theirs (for another, for none, for '' or out of the catalog). Before the next refresh the
-- queries count the moved products as candidates of their new category, and check every
-- candidate's category; the refresh enters them into its lists.
UPDATE popularity_engine.catalog SET category = 'c3' WHERE product_id % 4 = 1 AND product_id < 400;
UPDATE popularity_engine.catalog SET category = 'c2' WHERE product_id % 4 = 3 AND product_id < 200;
INSERT INTO popularity_engine.catalog (product_id, category)
SELECT p, 'c1' FROM generate_series(10, 1000, 10) AS p;
UPDATE popularity_engine.catalog SET category = NULL WHERE product_id % 4 = 2 AND product_id < 120;
UPDATE popularity_engine.catalog SET category = '' WHERE product_id % 4 = 0 AND product_id BETWEEN 120 AND 240;
DELETE FROM popularity_engine.catalog WHERE product_id BETWEEN 241 AND 260;
UPDATE popularity_engine.catalog SET brand = 'unchanged category';
SELECT count(DISTINCT product_id) AS noted_moves, count(*) FILTER (WHERE category = 'c3') AS into_c3
  FROM popularity_engine.window_category_moves;
SELECT mode, cases, by_lists > 0 AS lists_used, by_category_lists > 0 AS category_lists_used,
       differences FROM pg_temp.compare();
SELECT * FROM pg_temp.rating_reading_differences();
SELECT pg_temp.add_events(2000, 5, interval '1 hour');
CALL popularity_engine.refresh_popularity();
SELECT count(*) AS moves_left FROM popularity_engine.window_category_moves;
SELECT * FROM pg_temp.broken_invariants();
SELECT mode, cases, by_lists > 0 AS lists_used, by_category_lists > 0 AS category_lists_used,
       differences FROM pg_temp.compare();
SELECT * FROM pg_temp.rating_reading_differences();
SELECT * FROM pg_temp.span_lists_used();

-- A cleanup that removes the oldest buckets moves the horizon past them.
CALL popularity_engine.cleanup_interactions(interval '9 days');
SELECT window_horizon = popularity_engine.utc_day(now() - interval '9 days') + 1 AS horizon_after_cutoff,
       (SELECT min(day) FROM popularity_engine.popularity_daily) >= window_horizon AS no_day_before_it
  FROM popularity_engine.refresh_state;
SELECT * FROM pg_temp.broken_invariants();
SELECT mode, cases, by_lists > 0 AS lists_used, by_category_lists > 0 AS category_lists_used,
       differences FROM pg_temp.compare();
SELECT * FROM pg_temp.rating_reading_differences();
