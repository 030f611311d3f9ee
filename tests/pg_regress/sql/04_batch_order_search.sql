-- track_batch, track_order, track_search, track_search_click.
CREATE EXTENSION IF NOT EXISTS popularity_engine;
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
TRUNCATE popularity_engine.product_interactions, popularity_engine.user_cart,
         popularity_engine.user_wishlist, popularity_engine.purchase_history,
         popularity_engine.interaction_event_ids, popularity_engine.search_interactions;

-- a valid batch of mixed types, with state in order
SELECT popularity_engine.track_batch($$[
  {"user_id": 1, "product_id": 10, "type": "view", "session_id": "s1"},
  {"user_id": 1, "product_id": 10, "type": "add_to_cart", "value": 3},
  {"user_id": 1, "product_id": 10, "type": "remove_from_cart", "value": 1},
  {"user_id": "2", "product_id": 11, "type": "wishlist", "occurred_at": "2026-01-02T03:04:05Z"},
  {"user_id": null, "product_id": null, "type": "page_view", "metadata": {"page_path": "/"}},
  {"user_id": 1, "type": "search", "metadata": {"search_query": "laptop"}},
  {"user_id": 1, "product_id": 12, "type": "purchase", "metadata": {"order_ref": "B-7"}}
]$$::jsonb) AS stored;
SELECT user_id, product_id, interaction_type, event_value, session_id
  FROM popularity_engine.product_interactions ORDER BY id;
SELECT user_id, product_id, quantity FROM popularity_engine.user_cart;
SELECT user_id, product_id, added_at FROM popularity_engine.user_wishlist;
SELECT user_id, product_id, order_ref FROM popularity_engine.purchase_history;

-- an empty batch stores nothing
SELECT popularity_engine.track_batch('[]');

-- all or nothing: one bad element rejects the batch and names its index
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "view"}, {"product_id": 1, "type": "review", "value": 9}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "view"}, {"type": "view"}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "like"}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "view", "prodcut": 2}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1.5, "type": "view"}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "view", "value": "1"}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "view", "occurred_at": "yesterday-ish"}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "view", "occurred_at": "infinity"}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "view", "event_id": "not-a-uuid"}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "view", "metadata": [1]}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[{"product_id": 1, "type": "view", "session_id": 5}]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('[1]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch('{"product_id": 1, "type": "view"}')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_batch(NULL)$$);
SELECT count(*) AS still_seven FROM popularity_engine.product_interactions;

-- event_id: a retried batch, and duplicates inside one batch, are stored once
SELECT popularity_engine.track_batch($$[
  {"product_id": 5, "type": "view", "event_id": "11111111-1111-1111-1111-111111111111"},
  {"product_id": 5, "type": "view", "event_id": "11111111-1111-1111-1111-111111111111"},
  {"product_id": 5, "type": "view", "event_id": "22222222222222222222222222222222"}
]$$::jsonb) AS stored;
SELECT popularity_engine.track_batch($$[
  {"product_id": 5, "type": "view", "event_id": "11111111-1111-1111-1111-111111111111"},
  {"product_id": 5, "type": "view", "event_id": "33333333-3333-3333-3333-333333333333"}
]$$::jsonb) AS stored;
SELECT count(*) FROM popularity_engine.product_interactions WHERE product_id = 5;

-- track_order: one order per product, purchase_history with quantities, idempotent with order_ref
SELECT popularity_engine.track_order(3, ARRAY[40, 41, 42], ARRAY[1, 2, 1], 'ORD-1') AS lines;
SELECT popularity_engine.track_order(3, ARRAY[40, 41, 42], ARRAY[1, 2, 1], 'ORD-1') AS retried_lines;
SELECT popularity_engine.track_order(3, ARRAY[43]) AS lines_without_ref;
SELECT product_id, quantity, order_ref FROM popularity_engine.purchase_history WHERE user_id = 3 ORDER BY id;
SELECT interaction_type, count(*) FROM popularity_engine.product_interactions WHERE user_id = 3 GROUP BY 1;
SELECT pg_temp.try($$SELECT popularity_engine.track_order(NULL, ARRAY[40])$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_order(3, NULL)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_order(3, '{}')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_order(3, ARRAY[40, NULL])$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_order(3, ARRAY[40, -1])$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_order(3, ARRAY[40, 41], ARRAY[1])$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_order(3, ARRAY[40], ARRAY[0])$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_order(3, ARRAY[40], occurred_at => 'infinity')$$);

-- track_search logs the query and its results; track_search_click logs a search_click
SELECT popularity_engine.track_search(4, 'red shoes', ARRAY[60, 61, 62], session_id => 's9') > 0 AS tracked;
SELECT popularity_engine.track_search(NULL, 'anonymous query') > 0 AS anonymous_ok;
SELECT user_id, query, result_product_ids, session_id FROM popularity_engine.search_interactions ORDER BY id;
SELECT popularity_engine.track_search_click(4, 'red shoes', 61) > 0 AS tracked;
SELECT interaction_type, product_id, metadata FROM popularity_engine.product_interactions WHERE user_id = 4;
SELECT pg_temp.try($$SELECT popularity_engine.track_search(4, NULL)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_search(4, '  ')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_search(4, 'q', ARRAY[1, NULL])$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_search(4, 'q', ARRAY[0])$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_search(-4, 'q')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_search_click(4, NULL, 61)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track_search_click(4, 'q', NULL)$$);
