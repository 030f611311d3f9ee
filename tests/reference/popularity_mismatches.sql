-- Brute force, straight from the documented formulas: counters, popularity_score = sum(counter x weight),
-- trending_score = sum(weight x 0.5^(hours_ago / 72)) for 0 <= hours_ago <= 168.
CREATE OR REPLACE FUNCTION pg_temp.mismatches(as_of timestamptz) RETURNS TABLE (product_id bigint, what text)
LANGUAGE sql AS $$
  WITH ev AS (
    SELECT i.product_id, i.event_value, i.occurred_at, w.counter, w.popularity_weight AS pw,
           NOT (i.interaction_type = 'wishlist' AND i.event_value <> 1) AS counted,
           extract(epoch FROM as_of - i.occurred_at) / 3600 AS hours_ago
      FROM popularity_engine.product_interactions i
      JOIN popularity_engine.interaction_weights w USING (interaction_type)
     WHERE i.product_id IS NOT NULL),
  expected AS (
    SELECT ev.product_id,
           count(*) FILTER (WHERE counted AND counter = 'view_count') AS view_count,
           count(*) FILTER (WHERE counted AND counter = 'click_count') AS click_count,
           count(*) FILTER (WHERE counted AND counter = 'search_click_count') AS search_click_count,
           count(*) FILTER (WHERE counted AND counter = 'wishlist_count') AS wishlist_count,
           count(*) FILTER (WHERE counted AND counter = 'cart_add_count') AS cart_add_count,
           count(*) FILTER (WHERE counted AND counter = 'order_count') AS order_count,
           count(*) FILTER (WHERE counted AND counter = 'review_count') AS review_count,
           avg(event_value) FILTER (WHERE counted AND counter = 'review_count') AS rating_avg,
           coalesce(sum(pw) FILTER (WHERE counted), 0) AS popularity_score,
           coalesce(sum(pw * power(0.5, hours_ago / 72))
                      FILTER (WHERE counted AND hours_ago BETWEEN 0 AND 168), 0) AS trending_score
      FROM ev GROUP BY 1),
  searched AS (
    SELECT r.product_id, count(*) AS search_count
      FROM popularity_engine.search_interactions s, unnest(s.result_product_ids) AS r(product_id)
     GROUP BY 1)
  SELECT coalesce(e.product_id, s.product_id, p.product_id), d.what
    FROM expected e
    FULL JOIN searched s ON s.product_id = e.product_id
    FULL JOIN popularity_engine.product_popularity p ON p.product_id = coalesce(e.product_id, s.product_id)
   CROSS JOIN LATERAL (VALUES
     ('view_count', p.view_count IS DISTINCT FROM coalesce(e.view_count, 0)),
     ('click_count', p.click_count IS DISTINCT FROM coalesce(e.click_count, 0)),
     ('search_click_count', p.search_click_count IS DISTINCT FROM coalesce(e.search_click_count, 0)),
     ('wishlist_count', p.wishlist_count IS DISTINCT FROM coalesce(e.wishlist_count, 0)),
     ('cart_add_count', p.cart_add_count IS DISTINCT FROM coalesce(e.cart_add_count, 0)),
     ('order_count', p.order_count IS DISTINCT FROM coalesce(e.order_count, 0)),
     ('review_count', p.review_count IS DISTINCT FROM coalesce(e.review_count, 0)),
     ('search_count', p.search_count IS DISTINCT FROM coalesce(s.search_count, 0)),
     ('rating_avg', abs(coalesce(p.rating_avg, 0) - coalesce(e.rating_avg, 0)) > 1e-9),
     ('popularity_score', abs(p.popularity_score - coalesce(e.popularity_score, 0))
                          > 1e-9 * greatest(1, abs(e.popularity_score))),
     ('trending_score', abs(p.trending_score - coalesce(e.trending_score, 0))
                        > 1e-6 * abs(e.trending_score) OR (p.trending_score > 0) <> (e.trending_score > 0)))
        AS d(what, differs)
   WHERE d.differs
$$;

