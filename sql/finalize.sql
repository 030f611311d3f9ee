-- popularity_engine: comments and privileges of the functions generated from Rust.

COMMENT ON FUNCTION popularity_engine.track(bigint, bigint, popularity_engine.interaction_type, double precision, jsonb, timestamptz, text, uuid) IS
  'Logs one interaction and returns its id; keeps user_cart, user_wishlist and purchase_history in sync. A repeated event_id stores nothing and returns the first id. Bad input raises SQLSTATE 22023 (23502 for a missing required value).';
COMMENT ON FUNCTION popularity_engine.track_batch(jsonb) IS
  'Logs a JSON array of events {user_id, product_id, type, value, metadata, occurred_at, session_id, event_id}, all or nothing; returns how many were stored. An error names the index of the bad element.';
COMMENT ON FUNCTION popularity_engine.track_order(bigint, bigint[], integer[], text, timestamptz) IS
  'Payment-webhook path: one order interaction and one purchase_history line per product. With order_ref, a retry stores nothing. Returns how many lines were stored.';
COMMENT ON FUNCTION popularity_engine.track_search(bigint, text, bigint[], timestamptz, text) IS
  'Logs a search and the products it showed (counted in product_popularity.search_count); returns the search_interactions id.';
COMMENT ON FUNCTION popularity_engine.track_search_click(bigint, text, bigint, timestamptz, text) IS
  'Logs a click on a search result (type search_click, metadata.search_query = query); returns the interaction id.';

COMMENT ON FUNCTION popularity_engine.system_identifier() IS
  'The cluster''s system identifier; refresh_state remembers it to notice a restore into another cluster.';
COMMENT ON FUNCTION popularity_engine.trending_half_life_seconds() IS
  'The popularity_engine.trending_half_life setting in seconds (loads the library, which defines the settings).';
COMMENT ON FUNCTION popularity_engine.trending_window_seconds() IS
  'The popularity_engine.trending_window setting in seconds.';
COMMENT ON FUNCTION popularity_engine.preference_half_life_seconds() IS
  'The popularity_engine.preference_half_life setting in seconds.';
COMMENT ON FUNCTION popularity_engine.compute_item_similarity() IS
  'Internal: computes the top-K similar products per product in Rust and replaces item_similarity; returns the number of pairs. Call refresh_item_similarity() instead.';
COMMENT ON FUNCTION popularity_engine.recommend(bigint, integer, text, bigint[]) IS
  'Personalised recommendations for user_id: score = w_base x base_relevance + w_pers x personalization + w_pop x popularity, x (1 - recent_order_penalty) for recent orders, at most max_per_category per category, never out-of-stock, inactive, uncatalogued or excluded products. Users with fewer than cold_start_threshold interactions get the cold-start list (trending, then popular). Read-only.';
COMMENT ON FUNCTION popularity_engine.rank_products(bigint, bigint[], double precision[]) IS
  'Re-ranks an application''s candidates (e.g. search results) for user_id with the recommend() blend; relevance, when given, is each candidate''s base relevance. Returns every candidate once. Read-only.';
COMMENT ON FUNCTION popularity_engine.retention_seconds() IS
  'The popularity_engine.retention setting in seconds.';

COMMENT ON FUNCTION popularity_engine.may_commit() IS
  'Internal: whether the calling procedure may COMMIT (its CALL is not inside a transaction block or a function).';

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
