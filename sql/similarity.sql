-- popularity_engine: item-to-item similarity: the table, the job that rebuilds it (the
-- computation itself is compute_item_similarity, in Rust), and similar_products.

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

CREATE FUNCTION popularity_engine.refresh_item_similarity_step(
    OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    -- one run at a time; a second one waits and then recomputes from fresh data
    PERFORM pg_advisory_xact_lock(hashtext('popularity_engine.refresh_item_similarity'));
    processed := popularity_engine.compute_item_similarity();
    more := false;
    note := format('%s similar-product pairs (top %s per product)', processed,
                   popularity_engine.similarity_top_k());
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
  'Recomputes item_similarity: the top similarity_top_k products per product by cosine similarity of co-interactions (from user_item_weights, kept by refresh_user_preferences). Logs to job_runs.';

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
