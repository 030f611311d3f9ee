-- popularity_engine: one more list per mode and scope for the windows that reach back near the
-- window horizon (a month). A 30-day window of a category read from the day lists unites the
-- leaders of 31 lists (hundreds of candidates, each summed exactly) and its threshold is the sum
-- of 31 bounds. So refresh_popularity also keeps, per mode (trending aside: its day scores decay
-- to the time of the query) and scope, the products with the best sums over the days from the
-- horizon through yesterday (window_span_entries) and a bound that no other product of the scope
-- exceeds (window_span_lists). A product's score over a window since the horizon is at most its
-- span sum plus its day scores after it, so a long window reads the span list and the day lists
-- of the days after window_span_through (today, mostly) with the threshold algorithm; when that
-- cannot prove the answer, it reads the day lists of every day as before.
--
-- The span lists are rebuilt once a day, by the first refresh whose as_of falls on another UTC
-- day than the last (which also moves the horizon); in between only late events (dated on or
-- before window_span_through) and catalog moves change them, and then only the sums of the
-- products concerned. Membership and categories work as for the day lists (see window_lists.sql).

CREATE TABLE popularity_engine.window_span_lists (
    mode  popularity_engine.popularity_mode NOT NULL,
    scope text NOT NULL,
    bound double precision NOT NULL,
    PRIMARY KEY (mode, scope)
);
COMMENT ON COLUMN popularity_engine.window_span_lists.scope IS
  'Whose list: '''' for all products, else the catalog category of its products (see window_scopes).';
COMMENT ON TABLE popularity_engine.window_span_lists IS
  'Internal: per popular_products mode and scope, a bound on the span sum (days from refresh_state.window_horizon through window_span_through) of any product of the scope not in window_span_entries.';

CREATE TABLE popularity_engine.window_span_entries (
    mode       popularity_engine.popularity_mode NOT NULL,
    scope      text NOT NULL,
    product_id bigint NOT NULL,
    score      double precision NOT NULL,
    PRIMARY KEY (mode, scope, product_id)
);
CREATE INDEX window_span_entries_rank
    ON popularity_engine.window_span_entries (mode, scope, score DESC, product_id);
CREATE INDEX window_span_entries_product ON popularity_engine.window_span_entries (product_id);
COMMENT ON COLUMN popularity_engine.window_span_entries.scope IS
  'The list''s scope (see window_span_lists.scope).';
COMMENT ON TABLE popularity_engine.window_span_entries IS
  'Internal: the products with the best span sums (days from refresh_state.window_horizon through window_span_through), per mode and scope, with that sum (exact). A product that left the scope''s category may linger; readers check the catalog.';

SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_span_lists', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_span_entries', '');

CREATE FUNCTION popularity_engine.window_span_modes() RETURNS popularity_engine.popularity_mode[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.array_remove(popularity_engine.window_list_modes(), 'trending')
$$;
COMMENT ON FUNCTION popularity_engine.window_span_modes() IS
  'Internal: the popular_products modes with span lists: those of window_list_modes() whose day scores do not decay.';

-- Maintenance (refresh_popularity) -----------------------------------------------------------

-- The span sums (days through `through`) of some products (all of them when product_ids is
-- NULL), one row per product, mode and scope with a positive sum.
CREATE FUNCTION popularity_engine.span_scores(product_ids bigint[], through date)
RETURNS TABLE (mode popularity_engine.popularity_mode, scope text, product_id bigint, score double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    WITH totals AS (
        SELECT ROW(d.product_id, NULL::date, sum(d.trending), sum(d.most_viewed), sum(d.most_carted),
                   sum(d.most_ordered), sum(d.most_searched), sum(d.overall),
                   sum(d.most_wishlisted))::popularity_engine.popularity_daily AS t
          FROM (SELECT * FROM popularity_engine.popularity_daily a WHERE span_scores.product_ids IS NULL
                UNION ALL   -- each branch planned on its own: the index for the given products
                SELECT * FROM popularity_engine.popularity_daily g
                 WHERE g.product_id = ANY (span_scores.product_ids)) d
         WHERE d.day <= span_scores.through
         GROUP BY d.product_id)
    SELECT m.mode, sc.scope, (x.t).product_id, popularity_engine.day_score(x.t, m.mode)
      FROM totals x
      LEFT JOIN popularity_engine.catalog c ON c.product_id = (x.t).product_id
     CROSS JOIN unnest(popularity_engine.window_span_modes()) AS m(mode)
     CROSS JOIN unnest(popularity_engine.window_scopes(c.category)) AS sc(scope)
     WHERE popularity_engine.day_score(x.t, m.mode) > 0
$fn$;
COMMENT ON FUNCTION popularity_engine.span_scores(bigint[], date) IS
  'Internal: per product (all, or the given ones), mode with span lists and scope, its popularity_daily scores summed through a day.';

-- Every span list again, summing the days through `through`, with the catalog's categories.
CREATE FUNCTION popularity_engine.rebuild_span_lists(through date) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    DELETE FROM popularity_engine.window_span_entries;
    DELETE FROM popularity_engine.window_span_lists;
    WITH ranked AS (
        SELECT s.*, row_number() OVER (PARTITION BY s.mode, s.scope ORDER BY s.score DESC, s.product_id) AS place
          FROM popularity_engine.span_scores(NULL, through) s),
    lists AS (
        INSERT INTO popularity_engine.window_span_lists (mode, scope, bound)
        SELECT r.mode, r.scope,
               coalesce(max(r.score) FILTER (WHERE r.place > popularity_engine.window_list_length()), 0)
          FROM ranked r GROUP BY 1, 2)
    INSERT INTO popularity_engine.window_span_entries (mode, scope, product_id, score)
    SELECT r.mode, r.scope, r.product_id, r.score
      FROM ranked r WHERE r.place <= popularity_engine.window_list_length();
    UPDATE popularity_engine.refresh_state SET window_span_through = through;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.rebuild_span_lists(date) IS
  'Internal: recomputes every span list from popularity_daily (the days through `through`), with the categories the catalog has now.';

-- Some products' span sums changed (late events, days dropped, a catalog move): a member's score
-- is made exact again (it leaves a list when its sum there is gone), a product joins a list when
-- its sum passes the bound. A list grown past four times its length keeps its first products and
-- takes the next one's score as its bound, which no product left out exceeds.
CREATE FUNCTION popularity_engine.add_to_span_lists(product_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_through date := (SELECT r.window_span_through FROM popularity_engine.refresh_state r);
BEGIN
    IF v_through IS NULL OR cardinality(product_ids) = 0 THEN
        RETURN;
    END IF;
    -- a list that has no row yet has no member: every product of its scope with a sum is entered
    INSERT INTO popularity_engine.window_span_lists AS l (mode, scope, bound)
    SELECT m.mode, k.scope, 0
      FROM unnest(popularity_engine.window_span_modes()) AS m(mode),
           (SELECT '' AS scope
            UNION
            SELECT c.category FROM popularity_engine.catalog c
             WHERE c.product_id = ANY (product_ids) AND c.category <> '') k
    ON CONFLICT (mode, scope) DO NOTHING;
    WITH sums AS MATERIALIZED (SELECT * FROM popularity_engine.span_scores(product_ids, v_through)),
    gone AS (
        DELETE FROM popularity_engine.window_span_entries e
         WHERE e.product_id = ANY (product_ids)
           AND NOT EXISTS (SELECT 1 FROM sums s
                            WHERE (s.mode, s.scope, s.product_id) = (e.mode, e.scope, e.product_id)))
    INSERT INTO popularity_engine.window_span_entries AS e (mode, scope, product_id, score)
    SELECT s.mode, s.scope, s.product_id, s.score
      FROM sums s
      JOIN popularity_engine.window_span_lists l ON (l.mode, l.scope) = (s.mode, s.scope)
     WHERE s.score > l.bound
        OR EXISTS (SELECT 1 FROM popularity_engine.window_span_entries x
                    WHERE (x.mode, x.scope, x.product_id) = (s.mode, s.scope, s.product_id))
    ON CONFLICT (mode, scope, product_id) DO UPDATE SET score = excluded.score;
    PERFORM popularity_engine.trim_span_lists();
END
$fn$;
COMMENT ON FUNCTION popularity_engine.add_to_span_lists(bigint[]) IS
  'Internal: enters the current span sums of the given products into the span lists of their scopes (members kept exact).';

-- Lists grown past four times their length keep the first window_list_length() products; the
-- bound rises to the first one left out.
CREATE FUNCTION popularity_engine.trim_span_lists() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $fn$
    WITH long AS (
        SELECT e.mode, e.scope FROM popularity_engine.window_span_entries e
         GROUP BY 1, 2 HAVING count(*) > 4 * popularity_engine.window_list_length()),
    ranked AS (
        SELECT e.mode, e.scope, e.product_id, e.score,
               row_number() OVER (PARTITION BY e.mode, e.scope ORDER BY e.score DESC, e.product_id) AS place
          FROM popularity_engine.window_span_entries e JOIN long USING (mode, scope)),
    raised AS (
        UPDATE popularity_engine.window_span_lists l
           SET bound = greatest(l.bound, r.score)
          FROM ranked r
         WHERE (r.mode, r.scope) = (l.mode, l.scope) AND r.place = popularity_engine.window_list_length() + 1)
    DELETE FROM popularity_engine.window_span_entries e
     USING ranked r
     WHERE (e.mode, e.scope, e.product_id) = (r.mode, r.scope, r.product_id)
       AND r.place > popularity_engine.window_list_length()
$fn$;
COMMENT ON FUNCTION popularity_engine.trim_span_lists() IS
  'Internal: shortens the span lists grown past four times window_list_length(), raising their bounds.';

-- Days before the horizon left popularity_daily (a cleanup): every member's sum shrank, and no
-- other product's grew.
CREATE FUNCTION popularity_engine.recount_span_members() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM popularity_engine.add_to_span_lists(
        ARRAY(SELECT DISTINCT e.product_id FROM popularity_engine.window_span_entries e));
END
$fn$;
COMMENT ON FUNCTION popularity_engine.recount_span_members() IS
  'Internal: recomputes the span sums of every span list member after days left popularity_daily.';

-- Called by maintain_window_lists once the day lists are up to date: a refresh whose as_of falls
-- on another UTC day than the span lists' last one (or that rebuilt the day lists) rebuilds them
-- through the day before; any other enters the sums of the products with late events, dated on a
-- day the span lists cover. Rebuilding once a day rather than keeping every sum exact spares each
-- refresh summing again the days of every product it touches (measured in bench/PROFILE.md).
CREATE FUNCTION popularity_engine.maintain_span_lists(
    as_of timestamptz, horizon date, rebuilt boolean, has_delta boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_through date := popularity_engine.utc_day(as_of) - 1;
BEGIN
    IF rebuilt OR (SELECT r.window_span_through IS DISTINCT FROM v_through
                     FROM popularity_engine.refresh_state r) THEN
        PERFORM popularity_engine.rebuild_span_lists(v_through);
    ELSIF has_delta THEN
        PERFORM popularity_engine.add_to_span_lists(ARRAY(
            SELECT DISTINCT dl.product_id FROM pg_temp.pe_delta dl
             WHERE dl.counted AND popularity_engine.utc_day(dl.occurred_at) BETWEEN horizon AND v_through));
    END IF;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.maintain_span_lists(timestamptz, date, boolean, boolean) IS
  'Internal: rebuilds the span lists on a new UTC day, or enters the late events of the refresh''s delta into them.';

-- Reading (popular_products) -----------------------------------------------------------------

-- The top n of a window since `since` (trending aside) from the span list of the mode and scope
-- and the day lists of the days after it, or NULLs when they cannot prove the answer: the caller
-- then reads the day lists of every day.
CREATE FUNCTION popularity_engine.popular_from_span_list(
    mode popularity_engine.popularity_mode, since timestamptz, category text, n integer,
    OUT product_ids bigint[], OUT scores double precision[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_variable
DECLARE
    v_now timestamptz := now();
    v_h double precision := popularity_engine.trending_half_life_seconds();
    v_depth integer := greatest(2 * n, 20);
    v_through date := (SELECT r.window_span_through FROM popularity_engine.refresh_state r);
    v_bound double precision;
    v_span bigint[];
    v_span_scores double precision[];
    v_next double precision;
    v_days record;
BEGIN
    SELECT l.bound INTO v_bound FROM popularity_engine.window_span_lists l
     WHERE l.mode = mode AND l.scope = coalesce(category, '');
    IF v_through IS NULL OR NOT FOUND OR mode <> ALL (popularity_engine.window_span_modes()) THEN
        RETURN;
    END IF;
    LOOP
        -- the first depth + 1 members with their sums: the last one's sum bounds the rest
        SELECT coalesce(array_agg(x.product_id ORDER BY x.score DESC, x.product_id), '{}'),
               array_agg(x.score ORDER BY x.score DESC, x.product_id)
          INTO v_span, v_span_scores
          FROM (SELECT e.product_id, e.score FROM popularity_engine.window_span_entries e
                 WHERE e.mode = mode AND e.scope = coalesce(category, '')
                 ORDER BY e.score DESC, e.product_id LIMIT v_depth + 1) x;
        v_next := greatest(v_bound, coalesce(v_span_scores[v_depth + 1], 0));
        -- the days after the span: their lists' threshold and candidates (with the moved products)
        SELECT * INTO v_days FROM popularity_engine.read_window_lists(
            mode, category, v_through + 1, popularity_engine.utc_day(v_now), v_now, v_h, v_depth, NULL);
        -- a span member that left the category since the rebuild is no candidate of it
        SELECT * INTO product_ids, scores
          FROM popularity_engine.top_window_scores(
                   mode, since, v_now, v_h,
                   ARRAY(SELECT p FROM unnest(v_span[1:v_depth]) AS p
                          WHERE category IS NULL
                             OR EXISTS (SELECT 1 FROM popularity_engine.catalog k
                                         WHERE k.product_id = p AND k.category = category))
                   || v_days.candidates, n);
        -- sums of the same terms in another order may differ in the last bits: a margin
        IF v_next + v_days.threshold <= 0
           OR (cardinality(product_ids) = n AND scores[n] > (v_next + v_days.threshold) * (1 + 1e-9)) THEN
            RETURN;
        END IF;
        IF cardinality(v_span) <= v_depth AND NOT v_days.deeper THEN
            product_ids := NULL;
            scores := NULL;
            RETURN;
        END IF;
        v_depth := v_depth * 4;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.popular_from_span_list(popularity_engine.popularity_mode, timestamptz, text, integer) IS
  'Internal: popular_products within a long window from the span list of the mode and scope and the day lists after it (threshold algorithm); NULLs when they cannot prove the top n.';
