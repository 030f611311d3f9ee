-- popularity_engine: what the personalization knows about a user: the cold-start decision and
-- user_profile(). recommend() and rank_products() are in Rust (src/ranking.rs).

-- The larger of the aggregated all-time count and the rows in the log (counted up to `up_to`):
-- current before the next refresh, and cheap for a user with a long history. An aggregated count
-- that already reaches `up_to` is the answer whatever the log holds, so the log, whose every
-- partition the count opens, is read only otherwise: for the cold-start decision of a warm user
-- (up_to = the threshold), most of its cost, and on a first call most of its page reads.
-- PL/pgSQL rather than SQL: a SQL function with a SET clause is planned again on every call, and
-- planning the count over every weekly partition of the log cost more than running it; PL/pgSQL
-- keeps the plan for the session.
CREATE FUNCTION popularity_engine.user_interaction_count(user_id bigint, up_to bigint DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_aggregated bigint := coalesce((SELECT p.interaction_count FROM popularity_engine.user_profiles p
                                      WHERE p.user_id = user_interaction_count.user_id), 0);
BEGIN
    IF up_to >= 0 AND v_aggregated >= up_to THEN
        RETURN v_aggregated;
    END IF;
    RETURN greatest(
        v_aggregated,
        (SELECT count(*) FROM (SELECT 1 FROM popularity_engine.product_interactions i
                                WHERE i.user_id = user_interaction_count.user_id
                                  AND i.product_id IS NOT NULL LIMIT user_interaction_count.up_to) AS live));
END
$fn$;
COMMENT ON FUNCTION popularity_engine.user_interaction_count(bigint, bigint) IS
  'How many interactions with a product a user has: the larger of the aggregated all-time count (user_profiles) and the rows in the log (counted up to up_to), so it is current before the next refresh.';

-- The one cold-start rule, used by user_profile() and by recommend()/rank_products(); PL/pgSQL
-- for the same reason as user_interaction_count.
CREATE FUNCTION popularity_engine.is_cold_start(user_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_threshold integer := popularity_engine.cold_start_threshold();
BEGIN
    RETURN popularity_engine.user_interaction_count(is_cold_start.user_id, v_threshold) < v_threshold;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.is_cold_start(bigint) IS
  'Whether a user gets the cold-start list: fewer interactions with a product than the cold_start_threshold setting.';

CREATE FUNCTION popularity_engine.user_profile(user_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT jsonb_build_object(
        'user_id', user_profile.user_id,
        'interaction_count', popularity_engine.user_interaction_count(user_profile.user_id),
        'cold_start', popularity_engine.is_cold_start(user_profile.user_id),
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
