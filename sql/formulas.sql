-- popularity_engine: the formulas every aggregate shares, each written once.
--
-- They are LANGUAGE sql, IMMUTABLE and have no SET clause, so the planner inlines them into the
-- statements that call them (no function call per row). Because an inlined body is parsed with
-- the caller's search_path, every operator and function in them is schema-qualified.

-- Forward decay: an event at `t` weighs 2^((t - landmark) / half_life) against a landmark, so
-- that sums of decayed weights never change as time passes; multiplying such a sum by
-- decay_factor(as_of, landmark, half_life)^-1, i.e. decay_factor(landmark, as_of, half_life),
-- gives sum(w x 0.5^(age / half_life)) at as_of.
CREATE FUNCTION popularity_engine.decay_factor(
    t timestamptz, landmark timestamptz, half_life_seconds double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.power(2::pg_catalog.float8,
        extract(epoch FROM t OPERATOR(pg_catalog.-) landmark) OPERATOR(pg_catalog./) half_life_seconds)
$$;
COMMENT ON FUNCTION popularity_engine.decay_factor(timestamptz, timestamptz, double precision) IS
  'Forward-decay weight 2^((t - landmark) / half_life) of an event at t (half-life in seconds).';

-- A wishlist event with event_value 0 is a removal: it is logged, but it does not make a
-- product more popular and adds nothing to a user's affinity.
CREATE FUNCTION popularity_engine.counts_for_popularity(
    interaction_type popularity_engine.interaction_type, event_value double precision)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NOT (interaction_type OPERATOR(pg_catalog.=) 'wishlist'::popularity_engine.interaction_type
                AND event_value OPERATOR(pg_catalog.<>) 1::pg_catalog.float8)
$$;
COMMENT ON FUNCTION popularity_engine.counts_for_popularity(popularity_engine.interaction_type, double precision) IS
  'Whether a logged interaction counts in counters, scores and affinities: every one except a wishlist event whose event_value is not 1 (a removal).';

-- Where a price sits in its category: ln(price / the category's median price). 0 is the
-- category's middle, +0.69 twice it, -0.69 half of it. NULL when either is unknown.
CREATE FUNCTION popularity_engine.relative_price(price numeric, category_median double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN price OPERATOR(pg_catalog.>) 0 AND category_median OPERATOR(pg_catalog.>) 0
                THEN pg_catalog.ln(price::pg_catalog.float8 OPERATOR(pg_catalog./) category_median) END
$$;
COMMENT ON FUNCTION popularity_engine.relative_price(numeric, double precision) IS
  'ln(price / median price of the category): where a product sits in its category''s price range (NULL when unknown).';
