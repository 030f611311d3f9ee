-- State tables follow every cart, wishlist and purchase transition in the caller's transaction.
CREATE EXTENSION IF NOT EXISTS popularity_engine;
TRUNCATE popularity_engine.product_interactions, popularity_engine.user_cart,
         popularity_engine.user_wishlist, popularity_engine.purchase_history,
         popularity_engine.interaction_event_ids;
CREATE VIEW pg_temp.cart AS
  SELECT user_id, product_id, quantity FROM popularity_engine.user_cart ORDER BY 1, 2;

-- add_to_cart adds its quantity (default 1)
SELECT popularity_engine.track(1, 10, 'add_to_cart') > 0 AS tracked;
SELECT * FROM pg_temp.cart;
SELECT popularity_engine.track(1, 10, 'add_to_cart', 3) > 0 AS tracked;
SELECT * FROM pg_temp.cart;
-- remove_from_cart subtracts (default 1)
SELECT popularity_engine.track(1, 10, 'remove_from_cart') > 0 AS tracked;
SELECT * FROM pg_temp.cart;
SELECT popularity_engine.track(1, 10, 'remove_from_cart', 2) > 0 AS tracked;
SELECT * FROM pg_temp.cart;
-- removing more than is there deletes the line, never goes negative
SELECT popularity_engine.track(1, 10, 'remove_from_cart', 5) > 0 AS tracked;
SELECT * FROM pg_temp.cart;
-- removing from an empty cart is a no-op
SELECT popularity_engine.track(1, 10, 'remove_from_cart', 1) > 0 AS tracked;
SELECT * FROM pg_temp.cart;
-- 0 removes everything
SELECT popularity_engine.track(1, 11, 'add_to_cart', 4) > 0 AS tracked;
SELECT popularity_engine.track(1, 11, 'remove_from_cart', 0) > 0 AS tracked;
SELECT * FROM pg_temp.cart;
-- update_cart_quantity sets, creating the line if needed; 0 deletes
SELECT popularity_engine.track(1, 12, 'update_cart_quantity', 7) > 0 AS tracked;
SELECT * FROM pg_temp.cart;
SELECT popularity_engine.track(1, 12, 'update_cart_quantity', 2) > 0 AS tracked;
SELECT * FROM pg_temp.cart;
SELECT popularity_engine.track(1, 12, 'update_cart_quantity', 0) > 0 AS tracked;
SELECT * FROM pg_temp.cart;
-- carts are per user
SELECT popularity_engine.track(2, 12, 'add_to_cart', 2) > 0 AS tracked;
SELECT popularity_engine.track(1, 12, 'add_to_cart', 1) > 0 AS tracked;
SELECT * FROM pg_temp.cart;
-- session cart types log but do not touch the cart
SELECT popularity_engine.track(3, 12, 'cart_add') > 0 AS tracked;
SELECT popularity_engine.track(2, 12, 'cart_remove') > 0 AS tracked;
SELECT popularity_engine.track(2, 12, 'cart_update') > 0 AS tracked;
SELECT * FROM pg_temp.cart;

-- wishlist 1 adds (idempotently), 0 removes; wishlist_add/remove only log
SELECT popularity_engine.track(1, 20, 'wishlist') > 0 AS tracked;
SELECT popularity_engine.track(1, 20, 'wishlist', 1) > 0 AS tracked;
SELECT user_id, product_id FROM popularity_engine.user_wishlist ORDER BY 1, 2;
SELECT popularity_engine.track(1, 20, 'wishlist', 0) > 0 AS tracked;
SELECT popularity_engine.track(1, 21, 'wishlist_add') > 0 AS tracked;
SELECT user_id, product_id FROM popularity_engine.user_wishlist ORDER BY 1, 2;
SELECT popularity_engine.track(1, 20, 'wishlist', 0) > 0 AS removing_twice_is_fine;

-- purchase and order write purchase_history (quantity and order_ref from metadata)
SELECT popularity_engine.track(1, 30, 'purchase') > 0 AS tracked;
SELECT popularity_engine.track(1, 31, 'order', metadata => '{"quantity": 2, "order_ref": "A-1"}') > 0 AS tracked;
SELECT user_id, product_id, quantity, order_ref FROM popularity_engine.purchase_history ORDER BY id;
SELECT bool_and(h.interaction_id = i.id AND h.purchased_at = i.occurred_at) AS linked_to_the_interaction
  FROM popularity_engine.purchase_history h JOIN popularity_engine.product_interactions i ON i.id = h.interaction_id;

-- a rejected event leaves the state untouched
SELECT popularity_engine.track(1, 10, 'update_cart_quantity');
SELECT * FROM pg_temp.cart;

-- a rolled-back transaction leaves neither log nor state behind
BEGIN;
SELECT popularity_engine.track(9, 90, 'add_to_cart', 5) > 0 AS tracked;
ROLLBACK;
SELECT count(*) FROM popularity_engine.user_cart WHERE user_id = 9;
SELECT count(*) FROM popularity_engine.product_interactions WHERE user_id = 9;

-- a retried event (same event_id) is stored once and does not apply its state twice
SELECT popularity_engine.track(5, 50, 'add_to_cart', 2, event_id => '00000000-0000-0000-0000-000000000001') AS first_id \gset
SELECT popularity_engine.track(5, 50, 'add_to_cart', 2, event_id => '00000000-0000-0000-0000-000000000001') = :first_id AS same_id;
SELECT quantity FROM popularity_engine.user_cart WHERE user_id = 5;
SELECT count(*) FROM popularity_engine.product_interactions WHERE user_id = 5;
