-- popularity_engine: item similarity job and the read-only personalization lookups.

CREATE FUNCTION popularity_engine.refresh_item_similarity_step(
    OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    -- one run at a time; a second one waits and then recomputes from fresh data
    PERFORM pg_advisory_xact_lock(hashtext('popularity_engine.refresh_item_similarity'));
    processed := popularity_engine.compute_item_similarity();
    more := false;
    note := format('%s similar-product pairs (top %s per product)', processed,
                   current_setting('popularity_engine.similarity_top_k'));
END
$fn$;
COMMENT ON FUNCTION popularity_engine.refresh_item_similarity_step() IS
  'Internal: the work of refresh_item_similarity, in one transaction.';

CREATE PROCEDURE popularity_engine.refresh_item_similarity()
LANGUAGE plpgsql AS $proc$
BEGIN
    CALL popularity_engine.run_job('refresh_item_similarity',
        'popularity_engine.refresh_item_similarity_step()', NULL);
END
$proc$;
COMMENT ON PROCEDURE popularity_engine.refresh_item_similarity() IS
  'Recomputes item_similarity: the top similarity_top_k products per product by cosine similarity of co-interactions (from user_item_weights, kept by refresh_user_preferences). Logs to job_runs.';

CREATE FUNCTION popularity_engine.checked_limit(n integer, max_n integer, caller text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF n IS NULL OR n < 1 OR n > max_n THEN
        RAISE EXCEPTION '%: n = % is not allowed: expected 1 to %', caller, coalesce(n::text, 'NULL'), max_n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN n;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.checked_limit(integer, integer, text) IS
  'Internal: n when 1 <= n <= max_n, else an invalid_parameter_value error naming the caller.';

-- LANGUAGE sql: the SPEC names both the argument and an output column product_id.
CREATE FUNCTION popularity_engine.similar_products(product_id bigint, n integer DEFAULT 10)
RETURNS TABLE (rank integer, product_id bigint, score double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT (row_number() OVER (ORDER BY s.score DESC, s.similar_product_id))::integer,
           s.similar_product_id, s.score
      FROM popularity_engine.item_similarity s
     WHERE s.product_id = $1
     ORDER BY s.score DESC, s.similar_product_id
     LIMIT popularity_engine.checked_limit($2, 1000, 'popularity_engine.similar_products')
$fn$;
COMMENT ON FUNCTION popularity_engine.similar_products(bigint, integer) IS
  'The n products most similar to product_id (from item_similarity), best first, ties by product_id. Read-only.';

CREATE FUNCTION popularity_engine.user_interaction_count(user_id bigint) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT greatest(
        coalesce((SELECT p.interaction_count FROM popularity_engine.user_profiles p
                   WHERE p.user_id = user_interaction_count.user_id), 0),
        (SELECT count(*) FROM (SELECT 1 FROM popularity_engine.product_interactions i
                                WHERE i.user_id = user_interaction_count.user_id
                                  AND i.product_id IS NOT NULL LIMIT 10000) AS live))
$fn$;
COMMENT ON FUNCTION popularity_engine.user_interaction_count(bigint) IS
  'How many interactions with a product a user has: the larger of the aggregated all-time count (user_profiles) and the rows in the log (counted up to 10000), so it is current before the next refresh.';

CREATE FUNCTION popularity_engine.user_profile(user_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT jsonb_build_object(
        'user_id', user_profile.user_id,
        'interaction_count', popularity_engine.user_interaction_count(user_profile.user_id),
        'cold_start', popularity_engine.user_interaction_count(user_profile.user_id)
                      < current_setting('popularity_engine.cold_start_threshold')::int,
        'first_interaction', p.first_interaction,
        'last_interaction', coalesce(p.last_interaction,
            (SELECT max(i.occurred_at) FROM popularity_engine.product_interactions i WHERE i.user_id = user_profile.user_id)),
        'top_categories', coalesce((
            SELECT jsonb_agg(jsonb_build_object('category', a.value, 'affinity', a.affinity, 'interactions', a.events)
                             ORDER BY a.affinity DESC, a.value)
              FROM (SELECT * FROM popularity_engine.user_preferences up
                     WHERE up.user_id = user_profile.user_id AND up.dimension = 'category'
                     ORDER BY up.affinity DESC, up.value LIMIT 10) a), '[]'::jsonb),
        'top_brands', coalesce((
            SELECT jsonb_agg(jsonb_build_object('brand', a.value, 'affinity', a.affinity, 'interactions', a.events)
                             ORDER BY a.affinity DESC, a.value)
              FROM (SELECT * FROM popularity_engine.user_preferences up
                     WHERE up.user_id = user_profile.user_id AND up.dimension = 'brand'
                     ORDER BY up.affinity DESC, up.value LIMIT 10) a), '[]'::jsonb),
        'recent_interactions', coalesce((
            SELECT jsonb_agg(jsonb_build_object('id', r.id, 'type', r.interaction_type, 'product_id', r.product_id,
                                                'value', r.event_value, 'occurred_at', r.occurred_at)
                             ORDER BY r.occurred_at DESC, r.id DESC)
              FROM (SELECT i.id, i.interaction_type, i.product_id, i.event_value, i.occurred_at
                      FROM popularity_engine.product_interactions i
                     WHERE i.user_id = user_profile.user_id
                     ORDER BY i.occurred_at DESC, i.id DESC LIMIT 100) r), '[]'::jsonb),
        'purchases', coalesce((
            SELECT jsonb_agg(jsonb_build_object('product_id', h.product_id, 'quantity', h.quantity,
                                                'order_ref', h.order_ref, 'purchased_at', h.purchased_at)
                             ORDER BY h.purchased_at DESC, h.id DESC)
              FROM (SELECT * FROM popularity_engine.purchase_history ph
                     WHERE ph.user_id = user_profile.user_id
                     ORDER BY ph.purchased_at DESC, ph.id DESC LIMIT 100) h), '[]'::jsonb),
        'cart', coalesce((
            SELECT jsonb_agg(jsonb_build_object('product_id', c.product_id, 'quantity', c.quantity) ORDER BY c.product_id)
              FROM popularity_engine.user_cart c WHERE c.user_id = user_profile.user_id), '[]'::jsonb),
        'wishlist', coalesce((
            SELECT jsonb_agg(w.product_id ORDER BY w.added_at DESC, w.product_id)
              FROM popularity_engine.user_wishlist w WHERE w.user_id = user_profile.user_id), '[]'::jsonb))
      FROM (SELECT 1) AS one
      LEFT JOIN popularity_engine.user_profiles p ON p.user_id = user_profile.user_id
$fn$;
COMMENT ON FUNCTION popularity_engine.user_profile(bigint) IS
  'Everything known about a user as JSON: interaction count, cold-start flag, top categories and brands with affinities, the last 100 interactions, the last 100 purchases, cart and wishlist. Read-only.';
