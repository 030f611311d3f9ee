-- popularity_engine: the daily personalization job, refresh_item_similarity, and what it keeps:
-- item-to-item similarity (computed by compute_item_similarity, in Rust; read by
-- similar_products) and the price level of each category (for the price fit of the ranking).

CREATE TABLE popularity_engine.item_similarity (
    product_id         bigint NOT NULL,
    similar_product_id bigint NOT NULL,
    score              double precision NOT NULL CHECK (score > 0 AND score <= 1.000001),
    PRIMARY KEY (product_id, similar_product_id)
);
COMMENT ON TABLE popularity_engine.item_similarity IS
  'Top-K similar products per product (cosine over user-product interaction weights, each user''s vector normalised), rebuilt by refresh_item_similarity().';
COMMENT ON COLUMN popularity_engine.item_similarity.score IS 'Cosine similarity in (0, 1].';

SELECT pg_catalog.pg_extension_config_dump('popularity_engine.item_similarity', '');

CREATE TABLE popularity_engine.category_prices (
    category     text PRIMARY KEY,
    median_price double precision NOT NULL CHECK (median_price > 0),
    products     bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE popularity_engine.category_prices IS
  'Median catalog price per category, rebuilt by refresh_item_similarity(): the ranking compares a product''s price with its category''s (relative_price) and with the user''s usual place in a category''s range.';
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.category_prices', '');

CREATE FUNCTION popularity_engine.refresh_category_prices() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_categories bigint;
BEGIN
    DELETE FROM popularity_engine.category_prices;
    INSERT INTO popularity_engine.category_prices (category, median_price, products)
    SELECT c.category, percentile_cont(0.5) WITHIN GROUP (ORDER BY c.price::float8), count(*)
      FROM popularity_engine.catalog c
     WHERE c.category IS NOT NULL AND c.price > 0
     GROUP BY c.category;
    GET DIAGNOSTICS v_categories = ROW_COUNT;
    RETURN v_categories;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.refresh_category_prices() IS
  'Internal: recomputes category_prices from the catalog; returns how many categories have a price level.';

CREATE FUNCTION popularity_engine.refresh_item_similarity_step(
    OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    -- one run at a time; a second one waits and then recomputes from fresh data
    PERFORM pg_advisory_xact_lock(hashtext('popularity_engine.refresh_item_similarity'));
    processed := popularity_engine.compute_item_similarity();
    more := false;
    note := format('%s similar-product pairs (top %s per product); price levels of %s categories', processed,
                   popularity_engine.similarity_top_k(), popularity_engine.refresh_category_prices());
END
$fn$;
COMMENT ON FUNCTION popularity_engine.refresh_item_similarity_step() IS
  'Internal: the work of refresh_item_similarity, in one transaction.';

CREATE PROCEDURE popularity_engine.refresh_item_similarity()
LANGUAGE plpgsql AS $proc$
BEGIN
    CALL popularity_engine.run_job('refresh_item_similarity', NULL, NULL, NULL);
END
$proc$;
COMMENT ON PROCEDURE popularity_engine.refresh_item_similarity() IS
  'Recomputes item_similarity (the top similarity_top_k products per product by cosine similarity of co-interactions, from user_item_weights kept by refresh_user_preferences, shrunk by similarity_shrinkage) and category_prices. Logs to job_runs.';

-- LANGUAGE sql: the argument and an output column are both called product_id.
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
