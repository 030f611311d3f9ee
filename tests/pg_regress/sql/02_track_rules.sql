-- One check per rule of the interaction table (docs). try() returns 'ok' or SQLSTATE: message.
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
         popularity_engine.interaction_event_ids;

-- event_value defaults (NULL means the default) per type
SELECT t AS interaction_type,
       pg_temp.try(format('SELECT popularity_engine.track(7, %s, %L, NULL, %L)',
                          CASE WHEN t IN ('login', 'logout') THEN 'NULL' ELSE '3' END, t,
                          CASE WHEN t = 'search' THEN '{"search_query": "tv"}' END)) AS with_null_value
  FROM unnest(enum_range(NULL::popularity_engine.interaction_type)) t ORDER BY t;
SELECT interaction_type, event_value FROM popularity_engine.product_interactions ORDER BY id;

-- event_value ranges and integrality
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', 2)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'click', 0)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'purchase', 19.99)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'order', 2)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'cart_add', 2)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'wishlist', 0.5)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'wishlist', 2)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'add_to_cart', 0)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'add_to_cart', 1.5)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'add_to_cart', -2)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'remove_from_cart', -1)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'update_cart_quantity', -1)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'update_cart_quantity')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'review')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'review', 0)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'review', 6)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'review', 4.5)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'review', 'NaN')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'add_to_cart', 'Infinity')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'review', 5)$$);

-- product_id: required, optional, forbidden
SELECT pg_temp.try($$SELECT popularity_engine.track(7, NULL, 'view')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, NULL, 'wishlist_remove')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, NULL, 'page_view')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, NULL, 'search', metadata => '{"search_query": "tv"}')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'login')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'logout')$$);

-- the type itself is required
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, NULL)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'like')$$);

-- ids must be positive
SELECT pg_temp.try($$SELECT popularity_engine.track(0, 3, 'view')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(-7, 3, 'view')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 0, 'view')$$);

-- anonymous users only for types without state
SELECT pg_temp.try($$SELECT popularity_engine.track(NULL, 3, 'view')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(NULL, 3, 'review', 4)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(NULL, 3, 'add_to_cart')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(NULL, 3, 'remove_from_cart')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(NULL, 3, 'update_cart_quantity', 1)$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(NULL, 3, 'wishlist')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(NULL, 3, 'purchase')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(NULL, 3, 'order')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(NULL, 3, 'wishlist_add')$$);

-- searches need metadata.search_query
SELECT pg_temp.try($$SELECT popularity_engine.track(7, NULL, 'search')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, NULL, 'search', metadata => '{"query": "tv"}')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, NULL, 'search', metadata => '{"search_query": ""}')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, NULL, 'search', metadata => '{"search_query": 42}')$$);

-- metadata: a JSON object of at most 16 kB
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', metadata => '[1, 2]')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', metadata => '"text"')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', metadata => '{}')$$);
SELECT pg_temp.try(format('SELECT popularity_engine.track(7, 3, %L, metadata => %L)', 'view',
                          json_build_object('k', repeat('x', 16370))));
SELECT pg_temp.try(format('SELECT popularity_engine.track(7, 3, %L, metadata => %L)', 'view',
                          json_build_object('k', repeat('x', 16400))));

-- purchase metadata: quantity and order_ref
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'purchase', metadata => '{"quantity": 0}')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'purchase', metadata => '{"order_ref": 12}')$$);

-- timestamps: finite, at most 5 minutes ahead
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', occurred_at => 'infinity')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', occurred_at => '-infinity')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', occurred_at => now() + interval '6 minutes')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', occurred_at => clock_timestamp() + interval '4 minutes')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', occurred_at => '2019-01-01')$$);
SELECT pg_temp.try($$SELECT popularity_engine.track(7, 3, 'view', occurred_at => NULL)$$);

-- session_id is bounded
SELECT pg_temp.try(format('SELECT popularity_engine.track(7, 3, %L, session_id => %L)', 'view', repeat('s', 1025)));

-- nothing was written by any rejected call: the count equals the 'ok' results above
SELECT count(*) AS stored FROM popularity_engine.product_interactions;
