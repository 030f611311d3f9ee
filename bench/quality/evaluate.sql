-- bench/quality.sh, step 3: the top 10 of every method for every evaluated user, each user's
-- training history masked, then the metrics. Methods:
--   recommend()   the extension, default settings, history passed as `exclude`
--   most-popular  training events per product
--   item-kNN      cosine over the binary user-product matrix of the training events,
--                 sim(i, j) = users(i and j) / sqrt(users(i) x users(j)), a candidate's score
--                 summed over the user's history
-- Every method shows only what a shop may show: the baselines, like recommend(), skip products
-- that are uncatalogued, inactive or out of stock (inventory 0).
-- Metrics per user, averaged: HR@10 (a target in the top 10), NDCG@10 (binary relevance,
-- ideal = min(10, targets) hits at the top), recall@10 (targets found / targets); coverage =
-- distinct recommended products / catalog products; latency of each recommend() call.
--   :label   the line's name for the data set and protocol
\set ON_ERROR_STOP on

CREATE TABLE q.recs (method text, user_id bigint, products bigint[], ms double precision);

DO $$
DECLARE
    u  record;
    t0 timestamptz;
    r  bigint[];
BEGIN
    FOR u IN SELECT h.user_id, h.products FROM q.history h ORDER BY h.user_id LOOP
        t0 := clock_timestamp();
        r := ARRAY(SELECT x.product_id FROM popularity_engine.recommend(u.user_id, 10, NULL, u.products) x
                    ORDER BY x.rank);
        INSERT INTO q.recs VALUES ('recommend()', u.user_id, r,
                                   1000 * extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
END $$;

CREATE TABLE q.shown AS
SELECT product_id FROM popularity_engine.catalog WHERE is_active AND inventory IS DISTINCT FROM 0;
ALTER TABLE q.shown ADD PRIMARY KEY (product_id);

CREATE TABLE q.popular AS
SELECT product_id, count(*) AS n FROM q.split JOIN q.shown USING (product_id) WHERE NOT held_out GROUP BY 1;
CREATE INDEX ON q.popular (n DESC, product_id);
INSERT INTO q.recs
SELECT 'most-popular', h.user_id,
       ARRAY(SELECT p.product_id FROM q.popular p WHERE p.product_id <> ALL (h.products)
              ORDER BY p.n DESC, p.product_id LIMIT 10), NULL
  FROM q.history h;

CREATE TABLE q.user_items AS SELECT DISTINCT user_id, product_id FROM q.split WHERE NOT held_out;
CREATE INDEX ON q.user_items (product_id);
CREATE INDEX ON q.user_items (user_id, product_id);
CREATE TABLE q.item_users AS SELECT product_id, count(*)::float8 AS n FROM q.user_items GROUP BY 1;
ALTER TABLE q.item_users ADD PRIMARY KEY (product_id);
-- co-occurrences from the products in evaluated histories only: all a top 10 needs
CREATE TABLE q.co AS
SELECT a.product_id AS i, b.product_id AS j, count(*)::float8 AS c
  FROM (SELECT DISTINCT unnest(products) AS product_id FROM q.history) hp
  JOIN q.user_items a USING (product_id)
  JOIN q.user_items b ON b.user_id = a.user_id AND b.product_id <> a.product_id
 GROUP BY 1, 2;
CREATE INDEX ON q.co (i);
INSERT INTO q.recs
SELECT 'item-kNN', h.user_id,
       ARRAY(SELECT s.j FROM unnest(h.products) AS hp(i)
               JOIN q.co s ON s.i = hp.i
               JOIN q.item_users ni ON ni.product_id = s.i
               JOIN q.item_users nj ON nj.product_id = s.j
               JOIN q.shown sh ON sh.product_id = s.j
              WHERE NOT EXISTS (SELECT FROM q.user_items x WHERE x.user_id = h.user_id AND x.product_id = s.j)
              GROUP BY s.j ORDER BY sum(s.c / sqrt(ni.n * nj.n)) DESC, s.j LIMIT 10), NULL
  FROM q.history h;

CREATE TABLE q.scores AS
SELECT r.method, r.user_id, r.ms, t.n AS targets,
       (SELECT count(*) FROM unnest(r.products) x(p)
          JOIN q.targets tt ON tt.user_id = r.user_id AND tt.product_id = x.p) AS hits,
       (SELECT coalesce(sum(1 / log(2, k + 1)), 0) FROM unnest(r.products) WITH ORDINALITY x(p, k)
          JOIN q.targets tt ON tt.user_id = r.user_id AND tt.product_id = x.p) AS dcg,
       (SELECT sum(1 / log(2, k + 1)) FROM generate_series(1, least(10, t.n)) k) AS idcg
  FROM q.recs r
  JOIN (SELECT user_id, count(*) AS n FROM q.targets GROUP BY 1) t USING (user_id);

-- every method over all evaluated users, then over the users past cold start only (the ones
-- recommend() personalises), so that a gap can be told apart from the cold-start rule
SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s |', :'label', s.method || g.suffix, count(*),
              to_char(avg((s.hits > 0)::int), 'FM0.0000'), to_char(avg(s.dcg / s.idcg), 'FM0.0000'),
              to_char(avg(s.hits::float8 / s.targets), 'FM0.0000'),
              to_char((SELECT count(DISTINCT p) FROM q.recs r, unnest(r.products) p
                        WHERE r.method = s.method AND (NOT g.warm_only OR NOT popularity_engine.is_cold_start(r.user_id)))::float8
                      / (SELECT count(*) FROM popularity_engine.catalog), 'FM0.0000'),
              coalesce(to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY s.ms), 'FM990.0') || ' / '
                       || to_char(percentile_cont(0.99) WITHIN GROUP (ORDER BY s.ms), 'FM990.0'), '–'))
  FROM q.scores s
 CROSS JOIN (VALUES (false, ''), (true, ', warm users')) AS g(warm_only, suffix)
 WHERE NOT g.warm_only OR NOT popularity_engine.is_cold_start(s.user_id)
 GROUP BY g.warm_only, g.suffix, s.method
 ORDER BY g.warm_only, s.method DESC;
