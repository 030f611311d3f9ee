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

-- Writing entry points run as the extension owner: only roles granted EXECUTE may call them.
REVOKE EXECUTE ON FUNCTION popularity_engine.track(bigint, bigint, popularity_engine.interaction_type, double precision, jsonb, timestamptz, text, uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION popularity_engine.track_batch(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION popularity_engine.track_order(bigint, bigint[], integer[], text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION popularity_engine.track_search(bigint, text, bigint[], timestamptz, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION popularity_engine.track_search_click(bigint, text, bigint, timestamptz, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION popularity_engine.interaction_weights_upsert() FROM PUBLIC;

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
