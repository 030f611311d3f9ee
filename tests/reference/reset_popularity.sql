-- Empties the log, the per-user state and every aggregate refresh_popularity keeps, and resets
-- its state to "nothing aggregated", so that a regress file starts from a known shop.
TRUNCATE popularity_engine.product_interactions, popularity_engine.search_interactions,
         popularity_engine.interaction_event_ids, popularity_engine.user_cart,
         popularity_engine.user_wishlist, popularity_engine.purchase_history,
         popularity_engine.catalog, popularity_engine.product_stats,
         popularity_engine.product_type_totals, popularity_engine.popularity_hourly,
         popularity_engine.search_hourly, popularity_engine.job_runs,
         popularity_engine.popularity_daily, popularity_engine.window_lists,
         popularity_engine.window_list_entries, popularity_engine.window_category_moves,
         popularity_engine.window_span_lists, popularity_engine.window_span_entries,
         popularity_engine.rating_hourly, popularity_engine.rating_totals;
UPDATE popularity_engine.refresh_state
   SET aggregated_snapshot = '1:1:', as_of = NULL, landmark = NULL, weights_signature = NULL,
       window_horizon = NULL, window_signature = NULL, window_span_through = NULL;
