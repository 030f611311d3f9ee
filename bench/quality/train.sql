-- bench/quality.sh, step 2: the training events go in the way a shop's would, through
-- track_batch() in batches of 10,000 in time order, then the three refreshes run at the end of
-- the training period. Every catalog product is registered (a product without a catalog row is
-- never recommended); missing attributes stay NULL.
\set ON_ERROR_STOP on

INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory)
SELECT p.product_id, c.category, c.brand, c.price, c.inventory
  FROM (SELECT product_id FROM q.events UNION SELECT product_id FROM q.catalog) p
  LEFT JOIN q.catalog c USING (product_id);

CREATE TABLE q.batches AS
SELECT (row_number() OVER (ORDER BY s.occurred_at, s.line) - 1) / 10000 AS batch,
       jsonb_build_object('user_id', s.user_id, 'product_id', s.product_id, 'type', s.type,
                          'value', s.value, 'occurred_at', s.occurred_at) AS event,
       s.occurred_at, s.line
  FROM q.split s WHERE NOT s.held_out;

DO $$
DECLARE
    b bigint;
BEGIN
    FOR b IN SELECT DISTINCT batch FROM q.batches ORDER BY 1 LOOP
        PERFORM popularity_engine.track_batch(
            (SELECT jsonb_agg(event ORDER BY occurred_at, line) FROM q.batches WHERE batch = b));
    END LOOP;
END $$;

SELECT as_of FROM q.train_end \gset
CALL popularity_engine.refresh_popularity(:'as_of', NULL);
CALL popularity_engine.refresh_user_preferences(:'as_of', NULL);
CALL popularity_engine.refresh_item_similarity();
SELECT format('trained: %s interactions tracked, refreshed at %s', count(*), :'as_of') AS trained
  FROM popularity_engine.product_interactions;
