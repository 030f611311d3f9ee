-- popularity_engine: what lets popular_products answer a time window without summing every
-- hourly bucket inside it. refresh_popularity keeps, for each UTC day since the window horizon,
--   * popularity_daily: per product, the day's score in every mode, from the hourly buckets of
--     the day (one row, so that a 30-day window sums at most 31 rows per product);
--   * window_lists / window_list_entries: per day, mode and scope (all products, or one catalog
--     category), the day's leading products with their day score, and a bound that no other
--     product of the scope exceeds.
-- A window then reads the lists of the days it touches in score order, sums the candidates
-- exactly (whole days from popularity_daily, the partial days at both ends from the hourly
-- buckets), and stops once the n-th best exact sum beats what any product further down every
-- list could reach (the threshold algorithm). When it cannot prove that, popular_products falls
-- back to summing the buckets, so the answer is the same either way.
--
-- A product's category is read from the catalog when its day scores enter the lists. A product
-- that joins a category afterwards (a catalog insert or a category change) is noted in
-- window_category_moves: queries of its new category count it as a candidate until the next
-- refresh enters its day scores into that category's lists. Entries left in the lists of its
-- old category are skipped by the queries, which check every candidate's category in the
-- catalog.
--
-- maintain_window_lists also keeps, in the same steps, what span_lists.sql (long windows) and
-- rating_hours.sql (top_rated) add to the day lists.

CREATE TABLE popularity_engine.popularity_daily (
    product_id      bigint NOT NULL,
    day             date NOT NULL,
    trending        double precision NOT NULL,
    most_viewed     double precision NOT NULL,
    most_carted     double precision NOT NULL,
    most_ordered    double precision NOT NULL,
    most_searched   double precision NOT NULL,
    overall         double precision NOT NULL,
    most_wishlisted double precision NOT NULL,
    PRIMARY KEY (product_id, day)
);
CREATE INDEX popularity_daily_day ON popularity_engine.popularity_daily (day);
COMMENT ON TABLE popularity_engine.popularity_daily IS
  'Internal: per product and UTC day since refresh_state.window_horizon, the day''s score in every mode that has window lists (a column per mode, see day_score), from popularity_hourly with the weights and half-life of refresh_state.window_signature. trending: the weighted sum of 2^((occurred_at - start of the day) / trending_half_life).';

CREATE TABLE popularity_engine.window_lists (
    day   date NOT NULL,
    mode  popularity_engine.popularity_mode NOT NULL,
    scope text NOT NULL,
    bound double precision NOT NULL,
    PRIMARY KEY (day, mode, scope)
);
COMMENT ON TABLE popularity_engine.window_lists IS
  'Internal: per UTC day, popular_products mode and scope, a bound on the day score of every product of the scope that is not in window_list_entries for that day, mode and scope. No row: no product of the scope scored in that mode that day.';
COMMENT ON COLUMN popularity_engine.window_lists.scope IS
  'Whose list: '''' for all products, else the catalog category of its products (see window_scopes).';

CREATE TABLE popularity_engine.window_list_entries (
    day        date NOT NULL,
    mode       popularity_engine.popularity_mode NOT NULL,
    scope      text NOT NULL,
    product_id bigint NOT NULL,
    score      double precision NOT NULL,
    PRIMARY KEY (day, mode, scope, product_id)
);
CREATE INDEX window_list_entries_rank
    ON popularity_engine.window_list_entries (day, mode, scope, score DESC, product_id);
COMMENT ON TABLE popularity_engine.window_list_entries IS
  'Internal: the leading products of a UTC day in a popular_products mode and scope, with their day score (trending: before the decay to the time of the query). A product that left the scope''s category may linger until the list is rebuilt; readers check the catalog.';

CREATE TABLE popularity_engine.window_category_moves (
    product_id bigint NOT NULL,
    category   text NOT NULL
);
CREATE INDEX window_category_moves_category ON popularity_engine.window_category_moves (category);
COMMENT ON TABLE popularity_engine.window_category_moves IS
  'Internal: products that joined a category in the catalog since refresh_popularity last entered their day scores into the window lists; popular_products counts them as candidates of that category meanwhile.';

SELECT pg_catalog.pg_extension_config_dump('popularity_engine.popularity_daily', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_lists', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_list_entries', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_category_moves', '');

-- Sizes --------------------------------------------------------------------------------------

-- A rebuilt list keeps this many products; it is rebuilt (a span list: shortened) when it grows
-- past four times as many.
CREATE FUNCTION popularity_engine.window_list_length() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 100 $$;
COMMENT ON FUNCTION popularity_engine.window_list_length() IS
  'Internal: products a day''s or span list keeps when it is rebuilt or shortened (past four times this length).';

-- Formulas -----------------------------------------------------------------------------------

CREATE FUNCTION popularity_engine.utc_day(t timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.date(pg_catalog.timezone('UTC', t))
$$;
COMMENT ON FUNCTION popularity_engine.utc_day(timestamptz) IS
  'Internal: the UTC day a moment falls on.';

CREATE FUNCTION popularity_engine.utc_day_start(day date) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.timezone('UTC', day::pg_catalog.timestamp)
$$;
COMMENT ON FUNCTION popularity_engine.utc_day_start(date) IS
  'Internal: midnight UTC at the start of a day.';

-- The first UTC day that starts at or after t (t's own day when t is midnight).
CREATE FUNCTION popularity_engine.first_whole_day(t timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT popularity_engine.utc_day(t) OPERATOR(pg_catalog.+)
           CASE WHEN t OPERATOR(pg_catalog.>) popularity_engine.utc_day_start(popularity_engine.utc_day(t))
                THEN 1 ELSE 0 END
$$;
COMMENT ON FUNCTION popularity_engine.first_whole_day(timestamptz) IS
  'Internal: the first UTC day that starts at or after a moment.';

-- The first day a refresh at as_of keeps lists for: a 30-day window starts on the 31st day back.
CREATE FUNCTION popularity_engine.window_list_horizon(as_of timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT popularity_engine.utc_day(as_of) OPERATOR(pg_catalog.-) 31
$$;
COMMENT ON FUNCTION popularity_engine.window_list_horizon(timestamptz) IS
  'Internal: the earliest day a refresh at as_of keeps daily roll-ups and lists for (the horizon never moves back).';

-- The score one bucket (hourly or daily) adds in a mode, trending before its decay to the time
-- of the query. top_rated, an average, is not a sum of such scores.
CREATE FUNCTION popularity_engine.bucket_score(
    mode popularity_engine.popularity_mode, counter text, popularity_weight double precision,
    events bigint, decay_sum double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN mode OPERATOR(pg_catalog.=) 'trending'::popularity_engine.popularity_mode
                THEN decay_sum ELSE events::pg_catalog.float8 END
           OPERATOR(pg_catalog.*)
           CASE WHEN mode OPERATOR(pg_catalog.=) ANY ('{overall,trending}'::popularity_engine.popularity_mode[])
                THEN popularity_weight
                WHEN counter OPERATOR(pg_catalog.=) popularity_engine.mode_counter(mode) THEN 1::pg_catalog.float8
                ELSE 0::pg_catalog.float8 END
$$;
COMMENT ON FUNCTION popularity_engine.bucket_score(popularity_engine.popularity_mode, text, double precision, bigint, double precision) IS
  'Internal: what a bucket of events adds to a popular_products score: overall weighs events by popularity_weight, trending weighs decay_sum by it, the counting modes count the events of their counter.';

-- What a mode's score stored at scored_at (a day's start, an hour) weighs at window_end: trending
-- scores decay from then to window_end, the other modes' scores do not decay.
CREATE FUNCTION popularity_engine.score_decay(
    mode popularity_engine.popularity_mode, scored_at timestamptz, window_end timestamptz,
    half_life_seconds double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN mode OPERATOR(pg_catalog.=) 'trending'::popularity_engine.popularity_mode
                THEN popularity_engine.decay_factor(scored_at, window_end, half_life_seconds)
                ELSE 1::pg_catalog.float8 END
$$;
COMMENT ON FUNCTION popularity_engine.score_decay(popularity_engine.popularity_mode, timestamptz, timestamptz, double precision) IS
  'Internal: the factor of a popular_products score stored at scored_at when read at window_end: the trending decay for trending, 1 for the other modes.';

-- Lists are valid for the weights and half-life they were computed with.
CREATE FUNCTION popularity_engine.window_signature(
    weights_signature text, half_life_seconds double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (weights_signature OPERATOR(pg_catalog.||) '/')
           OPERATOR(pg_catalog.||) half_life_seconds::pg_catalog.text
$$;
COMMENT ON FUNCTION popularity_engine.window_signature(text, double precision) IS
  'Internal: fingerprint of what the window lists depend on: weights_signature() (popularity weights, counters) and the trending half-life.';

CREATE FUNCTION popularity_engine.window_list_modes() RETURNS popularity_engine.popularity_mode[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '{trending,most_viewed,most_carted,most_ordered,most_searched,overall,most_wishlisted}'::popularity_engine.popularity_mode[]
$$;
COMMENT ON FUNCTION popularity_engine.window_list_modes() IS
  'Internal: the popular_products modes that have window lists (every mode whose score is a sum).';

-- A product's score on a day in a mode: the popularity_daily column of that mode.
-- No SET clause: the planner inlines it into the statements that read the roll-ups.
CREATE FUNCTION popularity_engine.day_score(
    d popularity_engine.popularity_daily, mode popularity_engine.popularity_mode)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE mode
        WHEN 'trending' THEN d.trending
        WHEN 'most_viewed' THEN d.most_viewed
        WHEN 'most_carted' THEN d.most_carted
        WHEN 'most_ordered' THEN d.most_ordered
        WHEN 'most_searched' THEN d.most_searched
        WHEN 'overall' THEN d.overall
        WHEN 'most_wishlisted' THEN d.most_wishlisted
    END
$$;
COMMENT ON FUNCTION popularity_engine.day_score(popularity_engine.popularity_daily, popularity_engine.popularity_mode) IS
  'Internal: a popularity_daily row''s score in a mode (trending: decayed to the start of its day); NULL for a mode without window lists.';

-- The lists a product's day scores enter: those of all products ('') and, when the product has
-- one, those of its catalog category. A category named '' has no lists of its own: a window
-- with that category sums the buckets.
CREATE FUNCTION popularity_engine.window_scopes(category text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN category IS NULL OR category OPERATOR(pg_catalog.=) '' THEN ARRAY['']
                ELSE ARRAY['', category] END
$$;
COMMENT ON FUNCTION popularity_engine.window_scopes(text) IS
  'Internal: the window list scopes of a product in a category: '''' (all products) and the category itself.';

-- Maintenance (refresh_popularity) -----------------------------------------------------------

-- Recomputes the popularity_daily rows of some (product, day) pairs (product_ids[i], days[i])
-- from their hourly buckets. Replacing a row rather than adding a delta to it keeps every
-- roll-up equal to the sum of its hours, whatever the refreshes before did.
CREATE FUNCTION popularity_engine.recompute_daily(
    product_ids bigint[], days date[], half_life_seconds double precision)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $fn$
    INSERT INTO popularity_engine.popularity_daily AS d
           (product_id, day, trending, most_viewed, most_carted, most_ordered, most_searched, overall, most_wishlisted)
    SELECT p.product_id, p.day,
           sum(popularity_engine.bucket_score('trending', w.counter, w.popularity_weight, h.events, b.decay_sum)),
           sum(popularity_engine.bucket_score('most_viewed', w.counter, w.popularity_weight, h.events, b.decay_sum)),
           sum(popularity_engine.bucket_score('most_carted', w.counter, w.popularity_weight, h.events, b.decay_sum)),
           sum(popularity_engine.bucket_score('most_ordered', w.counter, w.popularity_weight, h.events, b.decay_sum)),
           sum(popularity_engine.bucket_score('most_searched', w.counter, w.popularity_weight, h.events, b.decay_sum)),
           sum(popularity_engine.bucket_score('overall', w.counter, w.popularity_weight, h.events, b.decay_sum)),
           sum(popularity_engine.bucket_score('most_wishlisted', w.counter, w.popularity_weight, h.events, b.decay_sum))
      FROM (SELECT DISTINCT x.product_id, x.day
              FROM unnest(recompute_daily.product_ids, recompute_daily.days) AS x(product_id, day)) p
      JOIN popularity_engine.popularity_hourly h
        ON h.product_id = p.product_id
       AND h.bucket_hour >= popularity_engine.utc_day_start(p.day)
       AND h.bucket_hour < popularity_engine.utc_day_start(p.day + 1)
      JOIN popularity_engine.interaction_weights w ON w.interaction_type = h.interaction_type
     CROSS JOIN LATERAL (SELECT h.decay_sum * popularity_engine.decay_factor(
                                    h.bucket_hour, popularity_engine.utc_day_start(p.day),
                                    recompute_daily.half_life_seconds) AS decay_sum) b
     GROUP BY 1, 2
    ON CONFLICT (product_id, day) DO UPDATE
       SET (trending, most_viewed, most_carted, most_ordered, most_searched, overall, most_wishlisted)
         = (excluded.trending, excluded.most_viewed, excluded.most_carted, excluded.most_ordered,
            excluded.most_searched, excluded.overall, excluded.most_wishlisted)
$fn$;
COMMENT ON FUNCTION popularity_engine.recompute_daily(bigint[], date[], double precision) IS
  'Internal: recomputes the popularity_daily rows of the given (product, day) pairs from popularity_hourly.';

-- Rebuilds the lists of the given days from popularity_daily: the first window_list_length()
-- products of each day, mode and scope, and the next one's score as the bound.
CREATE FUNCTION popularity_engine.rebuild_window_day_lists(days date[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    DELETE FROM popularity_engine.window_list_entries e WHERE e.day = ANY (days);
    DELETE FROM popularity_engine.window_lists l WHERE l.day = ANY (days);
    WITH scored AS (
        SELECT d.day, m.mode, d.product_id, popularity_engine.day_score(d, m.mode) AS score
          FROM popularity_engine.popularity_daily d
         CROSS JOIN unnest(popularity_engine.window_list_modes()) AS m(mode)
         WHERE d.day = ANY (days)),
    ranked AS (
        SELECT s.day, s.mode, sc.scope, s.product_id, s.score,
               row_number() OVER (PARTITION BY s.day, s.mode, sc.scope
                                  ORDER BY s.score DESC, s.product_id) AS place
          FROM scored s
          LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
         CROSS JOIN unnest(popularity_engine.window_scopes(c.category)) AS sc(scope)
         WHERE s.score > 0),
    lists AS (
        INSERT INTO popularity_engine.window_lists (day, mode, scope, bound)
        SELECT r.day, r.mode, r.scope,
               coalesce(max(r.score) FILTER (WHERE r.place > popularity_engine.window_list_length()), 0)
          FROM ranked r GROUP BY 1, 2, 3)
    INSERT INTO popularity_engine.window_list_entries (day, mode, scope, product_id, score)
    SELECT r.day, r.mode, r.scope, r.product_id, r.score
      FROM ranked r WHERE r.place <= popularity_engine.window_list_length();
END
$fn$;
COMMENT ON FUNCTION popularity_engine.rebuild_window_day_lists(date[]) IS
  'Internal: recomputes the window lists of some days from popularity_daily, with the categories the catalog has now.';

-- Everything again from the hourly buckets: after an update from 0.2.0, or when the weights or
-- the trending half-life changed (every day score changes with them).
CREATE FUNCTION popularity_engine.rebuild_window_lists(horizon date, half_life_seconds double precision)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_products bigint[];
    v_days date[];
    v_day date;
BEGIN
    -- before the catalog is read: a move committed later stays noted
    DELETE FROM popularity_engine.window_category_moves;
    DELETE FROM popularity_engine.window_list_entries;
    DELETE FROM popularity_engine.window_lists;
    DELETE FROM popularity_engine.popularity_daily;
    SELECT array_agg(p.product_id), array_agg(p.day) INTO v_products, v_days
      FROM (SELECT DISTINCT h.product_id, popularity_engine.utc_day(h.bucket_hour) AS day
              FROM popularity_engine.popularity_hourly h
             WHERE h.bucket_hour >= popularity_engine.utc_day_start(horizon)) p;
    IF v_products IS NOT NULL THEN
        PERFORM popularity_engine.recompute_daily(v_products, v_days, half_life_seconds);
    END IF;
    -- a day at a time: the ranking sorts one day's products, not a month's
    FOR v_day IN SELECT DISTINCT d.day FROM popularity_engine.popularity_daily d ORDER BY 1 LOOP
        PERFORM popularity_engine.rebuild_window_day_lists(ARRAY[v_day]);
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.rebuild_window_lists(date, double precision) IS
  'Internal: recomputes popularity_daily and every window list from popularity_hourly, for the days since horizon.';

-- Enters the day scores of some products on some days (pairs of product_ids[i], days[i]) into
-- the lists of their scopes: a product joins a list when its day score passes the bound (a
-- member's score is kept exact); a list grown past four times its length is rebuilt, which
-- tightens its bound again.
CREATE FUNCTION popularity_engine.add_to_window_lists(product_ids bigint[], days date[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_touched_days date[] := ARRAY(SELECT DISTINCT d FROM unnest(days) AS d);
    v_full date[];
BEGIN
    WITH scored AS (
        SELECT d.day, m.mode, d.product_id, popularity_engine.day_score(d, m.mode) AS score
          FROM (SELECT DISTINCT x.product_id, x.day FROM unnest(product_ids, days) AS x(product_id, day)) t
          JOIN popularity_engine.popularity_daily d ON d.product_id = t.product_id AND d.day = t.day
         CROSS JOIN unnest(popularity_engine.window_list_modes()) AS m(mode)
         WHERE popularity_engine.day_score(d, m.mode) > 0),
    scoped AS (
        SELECT s.day, s.mode, sc.scope, s.product_id, s.score
          FROM scored s
          LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
         CROSS JOIN unnest(popularity_engine.window_scopes(c.category)) AS sc(scope)),
    new_lists AS (
        INSERT INTO popularity_engine.window_lists (day, mode, scope, bound)
        SELECT DISTINCT s.day, s.mode, s.scope, 0 FROM scoped s
        ON CONFLICT (day, mode, scope) DO NOTHING)
    INSERT INTO popularity_engine.window_list_entries AS e (day, mode, scope, product_id, score)
    SELECT s.day, s.mode, s.scope, s.product_id, s.score
      FROM scoped s
      LEFT JOIN popularity_engine.window_lists l ON (l.day, l.mode, l.scope) = (s.day, s.mode, s.scope)
     WHERE s.score > coalesce(l.bound, 0)
    ON CONFLICT (day, mode, scope, product_id) DO UPDATE SET score = excluded.score;

    SELECT array_agg(DISTINCT o.day) INTO v_full
      FROM (SELECT e.day
              FROM popularity_engine.window_list_entries e
             WHERE e.day = ANY (v_touched_days)
             GROUP BY e.day, e.mode, e.scope
            HAVING count(*) > 4 * popularity_engine.window_list_length()) o;
    IF v_full IS NOT NULL THEN
        PERFORM popularity_engine.rebuild_window_day_lists(v_full);
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.add_to_window_lists(bigint[], date[]) IS
  'Internal: enters the day scores of the given (product, day) pairs into the window lists of their scopes.';

-- The product-days the refresh's delta touched: their roll-ups recomputed from the hourly buckets
-- (final by now), then their day scores entered into the lists.
CREATE FUNCTION popularity_engine.add_delta_to_window_lists(horizon date, half_life_seconds double precision)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_products bigint[];
    v_days date[];
BEGIN
    SELECT array_agg(t.product_id), array_agg(t.day) INTO v_products, v_days
      FROM (SELECT DISTINCT dl.product_id, popularity_engine.utc_day(dl.occurred_at) AS day
              FROM pg_temp.pe_delta dl
             WHERE dl.counted AND popularity_engine.utc_day(dl.occurred_at) >= horizon) t;
    IF v_products IS NOT NULL THEN
        PERFORM popularity_engine.recompute_daily(v_products, v_days, half_life_seconds);
        PERFORM popularity_engine.add_to_window_lists(v_products, v_days);
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.add_delta_to_window_lists(date, double precision) IS
  'Internal: recomputes the popularity_daily rows the delta of refresh_popularity touched (days since horizon) and enters them into the window lists.';

-- Products noted in window_category_moves get their day scores entered into their category's
-- lists, every day since horizon, their sums into its span lists, and their category in
-- rating_hourly and rating_totals; the notes read are removed (a move committed meanwhile stays
-- noted for the next refresh).
CREATE FUNCTION popularity_engine.place_moved_products(horizon date) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_placed bigint[];
    v_products bigint[];
    v_days date[];
BEGIN
    WITH placed AS (DELETE FROM popularity_engine.window_category_moves m RETURNING m.product_id)
    SELECT array_agg(DISTINCT p.product_id) INTO v_placed FROM placed p;
    IF v_placed IS NULL THEN
        RETURN;
    END IF;
    SELECT array_agg(d.product_id), array_agg(d.day) INTO v_products, v_days
      FROM popularity_engine.popularity_daily d
     WHERE d.product_id = ANY (v_placed) AND d.day >= horizon;
    IF v_products IS NOT NULL THEN
        PERFORM popularity_engine.add_to_window_lists(v_products, v_days);
    END IF;
    PERFORM popularity_engine.add_to_span_lists(v_placed);
    PERFORM popularity_engine.place_rating_products(v_placed);
END
$fn$;
COMMENT ON FUNCTION popularity_engine.place_moved_products(date) IS
  'Internal: enters the day scores and span sums of the products that changed category into their new category''s lists, and gives their rating_hourly and rating_totals rows the new category.';

-- Drops the days before a new horizon.
CREATE FUNCTION popularity_engine.drop_window_days_before(horizon date) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    DELETE FROM popularity_engine.window_list_entries e WHERE e.day < horizon;
    DELETE FROM popularity_engine.window_lists l WHERE l.day < horizon;
    DELETE FROM popularity_engine.popularity_daily d WHERE d.day < horizon;
    PERFORM popularity_engine.drop_rating_hours_before(horizon);
END
$fn$;
COMMENT ON FUNCTION popularity_engine.drop_window_days_before(date) IS
  'Internal: removes the daily roll-ups, lists and review hours (see drop_rating_hours_before) of the days before horizon.';

-- Whether a refresh with nothing new still has to touch the lists (a new day, new weights or
-- half-life, never built). Inlined into the refresh, which then calls nothing more.
CREATE FUNCTION popularity_engine.window_lists_stale(
    state popularity_engine.refresh_state, as_of timestamptz, weights_signature text,
    half_life_seconds double precision) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT state.window_horizon IS NULL
        OR state.window_horizon OPERATOR(pg_catalog.<) popularity_engine.window_list_horizon(as_of)
        OR state.window_span_through IS DISTINCT FROM popularity_engine.utc_day(as_of) OPERATOR(pg_catalog.-) 1
        OR state.window_signature IS DISTINCT FROM
           popularity_engine.window_signature(weights_signature, half_life_seconds)
$$;
COMMENT ON FUNCTION popularity_engine.window_lists_stale(popularity_engine.refresh_state, timestamptz, text, double precision) IS
  'Internal: whether refresh_popularity must update the window lists even with nothing new.';

-- Called by every refresh_popularity step after the hourly buckets are final. The horizon only
-- moves forward: a day at or after it has had every delta added since its roll-up was made.
CREATE FUNCTION popularity_engine.maintain_window_lists(
    state popularity_engine.refresh_state, as_of timestamptz, weights_signature text,
    half_life_seconds double precision, has_delta boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_signature text := popularity_engine.window_signature(weights_signature, half_life_seconds);
    v_horizon date := greatest(state.window_horizon, popularity_engine.window_list_horizon(as_of));
BEGIN
    IF state.window_horizon IS NULL OR state.window_signature IS DISTINCT FROM v_signature THEN
        PERFORM popularity_engine.rebuild_window_lists(v_horizon, half_life_seconds);
        PERFORM popularity_engine.rebuild_rating_hours(v_horizon);
    ELSE
        IF v_horizon > state.window_horizon THEN
            PERFORM popularity_engine.drop_window_days_before(v_horizon);
        END IF;
        IF has_delta THEN
            PERFORM popularity_engine.add_delta_to_window_lists(v_horizon, half_life_seconds);
            PERFORM popularity_engine.add_delta_to_rating_hours(v_horizon);
        END IF;
        PERFORM popularity_engine.place_moved_products(v_horizon);
    END IF;
    PERFORM popularity_engine.maintain_span_lists(
        as_of, v_horizon, state.window_horizon IS NULL OR state.window_signature IS DISTINCT FROM v_signature,
        has_delta);
    UPDATE popularity_engine.refresh_state
       SET window_horizon = v_horizon, window_signature = v_signature;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.maintain_window_lists(popularity_engine.refresh_state, timestamptz, text, double precision, boolean) IS
  'Internal: keeps popularity_daily, the day and span lists and the review hours in step with popularity_hourly (incrementally, or rebuilt when the weights or half-life changed).';

-- cleanup_interactions removed the hourly buckets before `cutoff`: the days they touched leave
-- the lists too, so that a day's roll-up never counts a bucket that is gone, and the span list
-- members' sums are made exact again.
CREATE FUNCTION popularity_engine.trim_window_lists(cutoff timestamptz) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_horizon date := popularity_engine.first_whole_day(cutoff);
BEGIN
    UPDATE popularity_engine.refresh_state r SET window_horizon = v_horizon
     WHERE r.window_horizon < v_horizon;
    IF FOUND THEN
        PERFORM popularity_engine.drop_window_days_before(v_horizon);
        PERFORM popularity_engine.recount_span_members();
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.trim_window_lists(timestamptz) IS
  'Internal: moves the window horizon past the hourly buckets cleanup_interactions removed.';

-- Catalog moves ------------------------------------------------------------------------------

-- Statement triggers on the catalog: a product inserted with a category, or whose category
-- changes, is noted for its new category. Moves out of a category need no note: readers check
-- the catalog. SECURITY DEFINER: whoever may write the catalog need not write the notes.
CREATE FUNCTION popularity_engine.note_category_moves() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO popularity_engine.window_category_moves (product_id, category)
        SELECT n.product_id, n.category FROM new_rows n WHERE n.category <> '';
    ELSE
        INSERT INTO popularity_engine.window_category_moves (product_id, category)
        SELECT n.product_id, n.category
          FROM new_rows n
         WHERE n.category <> ''
           AND NOT EXISTS (SELECT 1 FROM old_rows o
                            WHERE o.product_id = n.product_id AND o.category = n.category);
    END IF;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.note_category_moves() IS
  'Internal: trigger function noting in window_category_moves the catalog products that joined a category.';

CREATE TRIGGER catalog_inserts_note_category_moves
    AFTER INSERT ON popularity_engine.catalog REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION popularity_engine.note_category_moves();
COMMENT ON TRIGGER catalog_inserts_note_category_moves ON popularity_engine.catalog IS
  'Notes inserted products for the window lists of their category (see window_category_moves).';
CREATE TRIGGER catalog_updates_note_category_moves
    AFTER UPDATE ON popularity_engine.catalog REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION popularity_engine.note_category_moves();
COMMENT ON TRIGGER catalog_updates_note_category_moves ON popularity_engine.catalog IS
  'Notes products whose category changed for the window lists of their new category (see window_category_moves).';

-- Reading (popular_products) -----------------------------------------------------------------

-- The exact window scores of some products. Whole days come from popularity_daily, the hours at
-- the edges from popularity_hourly: each hour inside the window and not covered by the days read
-- is added, each covered hour outside the window is subtracted. The days read start on the
-- window's first day when fewer of its hours lie before the window than inside it (a 30-day window
-- opened at 04:00 reads that day's row and subtracts four hours instead of adding twenty), and
-- end today, whose hours after window_end (events up to five minutes ahead) are subtracted.
-- Trending scores are decayed to window_end.
CREATE FUNCTION popularity_engine.window_scores(
    mode popularity_engine.popularity_mode, since timestamptz, window_end timestamptz,
    half_life_seconds double precision, products bigint[])
RETURNS TABLE (product_id bigint, score double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    WITH edges AS (
        SELECT f.first_day, f.today,
               CASE WHEN since - popularity_engine.utc_day_start(f.first_day)
                         < least(popularity_engine.utc_day_start(f.first_day + 1), window_end) - since
                    THEN f.first_day ELSE f.first_day + 1 END AS from_day
          FROM (SELECT popularity_engine.utc_day(since) AS first_day,
                       popularity_engine.utc_day(window_end) AS today) f),
    bounds AS (
        SELECT e.from_day, e.today, popularity_engine.utc_day_start(e.from_day) AS covered_from,
               popularity_engine.utc_day_start(e.today + 1) AS covered_to
          FROM edges e),
    -- materialized: the result reads each part twice, which must not run its subquery twice
    parts AS MATERIALIZED (
        SELECT c.product_id,
               coalesce((SELECT sum(popularity_engine.day_score(d, mode)
                                    * popularity_engine.score_decay(mode, popularity_engine.utc_day_start(d.day),
                                                                    window_end, half_life_seconds))
                           FROM popularity_engine.popularity_daily d
                          WHERE d.product_id = c.product_id AND d.day >= b.from_day AND d.day <= b.today), 0) AS days,
               coalesce((SELECT sum(popularity_engine.bucket_score(mode, w.counter, w.popularity_weight, h.events, h.decay_sum)
                                    * popularity_engine.score_decay(mode, h.bucket_hour, window_end, half_life_seconds)
                                    * ((h.bucket_hour >= since AND h.bucket_hour <= window_end)::integer
                                       - (h.bucket_hour >= b.covered_from AND h.bucket_hour < b.covered_to)::integer))
                           FROM popularity_engine.popularity_hourly h
                           JOIN popularity_engine.interaction_weights w ON w.interaction_type = h.interaction_type
                          WHERE h.product_id = c.product_id
                            AND ((h.bucket_hour >= least(since, b.covered_from)
                                  AND h.bucket_hour < greatest(since, b.covered_from))
                              OR (h.bucket_hour > window_end AND h.bucket_hour < b.covered_to))), 0) AS hours
          FROM (SELECT DISTINCT p AS product_id FROM unnest(products) AS p) c CROSS JOIN bounds b)
    -- what subtracting the uncounted hours leaves of a sum of positive terms is positive or zero:
    -- a residue of rounding is zero
    SELECT p.product_id,
           CASE WHEN p.days + p.hours > 1e-12 * p.days THEN p.days + p.hours ELSE 0 END
      FROM parts p
$fn$;
COMMENT ON FUNCTION popularity_engine.window_scores(popularity_engine.popularity_mode, timestamptz, timestamptz, double precision, bigint[]) IS
  'Internal: exact popular_products scores of the given products over the buckets from since to window_end.';

-- The n best exact window scores of some candidates (see window_scores), best first, ties by
-- product id, positive only.
CREATE FUNCTION popularity_engine.top_window_scores(
    mode popularity_engine.popularity_mode, since timestamptz, window_end timestamptz,
    half_life_seconds double precision, candidates bigint[], n integer,
    OUT product_ids bigint[], OUT scores double precision[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT coalesce(array_agg(s.product_id ORDER BY s.score DESC, s.product_id), '{}'),
           coalesce(array_agg(s.score ORDER BY s.score DESC, s.product_id), '{}')
      FROM (SELECT x.product_id, x.score
              FROM popularity_engine.window_scores(mode, since, window_end, half_life_seconds, candidates) x
             WHERE x.score > 0 ORDER BY x.score DESC, x.product_id LIMIT n) s
$fn$;
COMMENT ON FUNCTION popularity_engine.top_window_scores(popularity_engine.popularity_mode, timestamptz, timestamptz, double precision, bigint[], integer) IS
  'Internal: the n best positive window_scores of the candidates, as two arrays in rank order.';

-- One reading of a window's lists at a depth: the threshold (what a product of the scope outside
-- the first `depth` places of every list can score at most), whether a list goes deeper, and the
-- candidates: the products in the first `depth` places of a list and those that joined the
-- category since their day scores entered the lists; of a category, only those the catalog has
-- in it now. A listed product's own bound is the threshold plus what its listed day scores add
-- above their lists' next score (list scores are exact); a product whose bound is below
-- `nth_known`, a score that n products are known to reach, cannot be in the top n and is left out.
CREATE FUNCTION popularity_engine.read_window_lists(
    mode popularity_engine.popularity_mode, category text, first_day date, last_day date,
    window_end timestamptz, half_life_seconds double precision, depth integer,
    nth_known double precision,
    OUT threshold double precision, OUT deeper boolean, OUT candidates bigint[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    WITH lists AS MATERIALIZED (
        SELECT l.day, l.mode, l.scope, greatest(l.bound, coalesce(nx.score, 0)) AS next,
               nx.score IS NOT NULL AS goes_deeper,
               popularity_engine.score_decay(l.mode, popularity_engine.utc_day_start(l.day),
                                             read_window_lists.window_end,
                                             read_window_lists.half_life_seconds) AS factor
          FROM popularity_engine.window_lists l
          LEFT JOIN LATERAL (SELECT e.score FROM popularity_engine.window_list_entries e
                              WHERE e.day = l.day AND e.mode = l.mode AND e.scope = l.scope
                              ORDER BY e.score DESC, e.product_id
                             OFFSET read_window_lists.depth LIMIT 1) nx ON true
         WHERE l.mode = read_window_lists.mode AND l.scope = coalesce(read_window_lists.category, '')
           AND l.day BETWEEN read_window_lists.first_day AND read_window_lists.last_day),
    totals AS (
        SELECT coalesce(sum(t.next * t.factor), 0) AS threshold,
               coalesce(bool_or(t.goes_deeper), false) AS goes_deeper
          FROM lists t),
    listed AS (
        SELECT e.product_id, sum((e.score - l.next) * l.factor) AS above
          FROM lists l
         CROSS JOIN LATERAL (SELECT e.product_id, e.score FROM popularity_engine.window_list_entries e
                              WHERE e.day = l.day AND e.mode = l.mode AND e.scope = l.scope
                              ORDER BY e.score DESC, e.product_id LIMIT read_window_lists.depth) e
         GROUP BY e.product_id)
    SELECT t.threshold, t.goes_deeper,
           ARRAY(SELECT c.product_id
                   FROM (SELECT x.product_id FROM listed x
                          WHERE read_window_lists.nth_known IS NULL
                             OR t.threshold + x.above >= read_window_lists.nth_known * (1 - 1e-9)
                         UNION
                         SELECT m.product_id FROM popularity_engine.window_category_moves m
                          WHERE m.category = read_window_lists.category) c
                  WHERE read_window_lists.category IS NULL
                     OR EXISTS (SELECT 1 FROM popularity_engine.catalog k
                                 WHERE k.product_id = c.product_id AND k.category = read_window_lists.category))
      FROM totals t
$fn$;
COMMENT ON FUNCTION popularity_engine.read_window_lists(popularity_engine.popularity_mode, text, date, date, timestamptz, double precision, integer, double precision) IS
  'Internal: one reading of a window''s day lists at a depth (for popular_from_lists and popular_from_span_list): the threshold, whether a list goes deeper, and the candidates that can still be in the top n.';

-- Whether what refresh_popularity keeps for windows (the day and span lists, rating_hourly and
-- rating_totals, all maintained together) can answer a window since `since`: built for the
-- current weights and half-life, reaching back that far, and a category other than '' (which has
-- no lists of its own and whose moves are not noted).
CREATE FUNCTION popularity_engine.window_lists_cover(since timestamptz, category text)
RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT coalesce((SELECT r.window_horizon IS NOT NULL
                            AND popularity_engine.utc_day(since) >= r.window_horizon
                            AND since <= now()
                            AND category IS DISTINCT FROM ''
                            AND r.window_signature IS NOT DISTINCT FROM popularity_engine.window_signature(
                                    popularity_engine.weights_signature(),
                                    popularity_engine.trending_half_life_seconds())
                       FROM popularity_engine.refresh_state r), false)
$fn$;
COMMENT ON FUNCTION popularity_engine.window_lists_cover(timestamptz, text) IS
  'Internal: whether the day and span lists and the review hours are valid for a window since `since` (current weights and half-life, within the horizon) and the category.';

-- How far back the days kept reach before a window since `since`, in lengths of the window (0:
-- it starts on the first day kept). The longer a window against what is kept before it, the
-- closer its scores come to sums over every day kept (span lists, review totals).
CREATE FUNCTION popularity_engine.kept_before_window(since timestamptz) RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT extract(epoch FROM since - popularity_engine.utc_day_start(r.window_horizon))
           / greatest(extract(epoch FROM now() - since), 1)
      FROM popularity_engine.refresh_state r
$fn$;
COMMENT ON FUNCTION popularity_engine.kept_before_window(timestamptz) IS
  'Internal: the time kept (since refresh_state.window_horizon) before a window since `since`, divided by the window''s length.';

-- The top n of a window, of all products or of one category, read from the lists, or NULLs
-- when the lists cannot prove the answer (no lists for the window's days, other weights, a
-- category named '', or a bound not beaten): the caller then sums the buckets. `since` is an
-- hour boundary; for trending it already excludes what the trending window does.
CREATE FUNCTION popularity_engine.popular_from_lists(
    mode popularity_engine.popularity_mode, since timestamptz, category text, n integer,
    OUT product_ids bigint[], OUT scores double precision[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_variable
DECLARE
    v_now timestamptz := now();
    v_h double precision := popularity_engine.trending_half_life_seconds();
    v_first date := popularity_engine.utc_day(since);
    v_today date := popularity_engine.utc_day(v_now);
    v_depth integer := greatest(2 * n, 20);
    v_read record;
    v_nth_known double precision;
BEGIN
    IF mode <> ALL (popularity_engine.window_list_modes())
       OR NOT popularity_engine.window_lists_cover(since, category) THEN
        RETURN;
    END IF;
    -- A window longer than what is kept before it (from about 16 of the 31 days) is read from
    -- the span list first: 2-5 ms where the day lists took 15-30 ms with a category (measured).
    IF popularity_engine.kept_before_window(since) < 1 THEN
        SELECT * INTO product_ids, scores FROM popularity_engine.popular_from_span_list(mode, since, category, n);
        IF product_ids IS NOT NULL THEN
            RETURN;
        END IF;
    END IF;
    LOOP
        SELECT * INTO v_read FROM popularity_engine.read_window_lists(
            mode, category, v_first, v_today, v_now, v_h, v_depth, v_nth_known);
        SELECT * INTO product_ids, scores
          FROM popularity_engine.top_window_scores(mode, since, v_now, v_h, v_read.candidates, n);
        -- Sums of the same terms in another order may differ in the last bits: a margin.
        IF v_read.threshold <= 0
           OR (cardinality(product_ids) = n AND scores[n] > v_read.threshold * (1 + 1e-9)) THEN
            RETURN;
        END IF;
        IF NOT v_read.deeper THEN
            product_ids := NULL;
            scores := NULL;
            RETURN;
        END IF;
        -- the n found reach scores[n]: a deeper reading need not sum a product that cannot
        IF cardinality(product_ids) = n THEN
            v_nth_known := scores[n];
        END IF;
        v_depth := v_depth * 4;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.popular_from_lists(popularity_engine.popularity_mode, timestamptz, text, integer) IS
  'Internal: popular_products within a window, of all products or of one category, from the window lists (threshold algorithm); NULLs when they cannot prove the top n.';
