-- popularity_engine: roles and privileges, in one place (the comments of the functions written in
-- Rust are beside them, in src/).

-- Roles and least privilege: created and granted here, in one place -------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'popularity_engine_writer') THEN
        CREATE ROLE popularity_engine_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'popularity_engine_reader') THEN
        CREATE ROLE popularity_engine_reader NOLOGIN;
    END IF;
END $$;

-- Nothing in the schema is executable by PUBLIC; the two roles get exactly what they need.
-- The raw log and the state tables are readable by neither role: the read functions and views
-- run with the owner's rights.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA popularity_engine FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA popularity_engine FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA popularity_engine FROM PUBLIC;

COMMENT ON ROLE popularity_engine_writer IS
  'popularity_engine: may call the tracking functions (track, track_batch, track_order, track_search, track_search_click) and nothing else.';
COMMENT ON ROLE popularity_engine_reader IS
  'popularity_engine: may call the read functions (popular_products, recommend, rank_products, similar_products, user_profile, aggregation_lag) and read the reporting views, not the raw log.';
GRANT USAGE ON SCHEMA popularity_engine TO popularity_engine_writer, popularity_engine_reader;
GRANT USAGE ON TYPE popularity_engine.interaction_type TO popularity_engine_writer;
GRANT USAGE ON TYPE popularity_engine.popularity_mode TO popularity_engine_reader;
GRANT EXECUTE ON FUNCTION
    popularity_engine.track(bigint, bigint, popularity_engine.interaction_type, double precision, jsonb, timestamptz, text, uuid),
    popularity_engine.track_batch(jsonb),
    popularity_engine.track_order(bigint, bigint[], integer[], text, timestamptz),
    popularity_engine.track_search(bigint, text, bigint[], timestamptz, text),
    popularity_engine.track_search_click(bigint, text, bigint, timestamptz, text)
  TO popularity_engine_writer;
GRANT EXECUTE ON FUNCTION
    popularity_engine.popular_products(popularity_engine.popularity_mode, interval, text, integer),
    popularity_engine.recommend(bigint, integer, text, bigint[]),
    popularity_engine.rank_products(bigint, bigint[], double precision[]),
    popularity_engine.similar_products(bigint, integer),
    popularity_engine.user_profile(bigint),
    popularity_engine.aggregation_lag()
  TO popularity_engine_reader;
GRANT SELECT ON popularity_engine.product_popularity, popularity_engine.user_preferences,
                popularity_engine.popularity_report, popularity_engine.trending_products,
                popularity_engine.daily_interaction_stats, popularity_engine.user_affinity,
                popularity_engine.search_analytics, popularity_engine.job_health
  TO popularity_engine_reader;
