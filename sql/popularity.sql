-- popularity_engine: the aggregates refresh_popularity keeps (product_stats, hourly buckets) and
-- their state; see exactly_once.sql for how each log row is aggregated exactly once.

CREATE TABLE popularity_engine.refresh_state (
    singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    system_identifier    bigint NOT NULL,
    aggregated_snapshot  pg_snapshot NOT NULL DEFAULT '1:1:',
    legacy_snapshot      pg_snapshot,
    legacy_interaction_id_floor bigint NOT NULL DEFAULT 0,
    legacy_search_id_floor      bigint NOT NULL DEFAULT 0,
    as_of                timestamptz,
    landmark             timestamptz,
    trending_half_life   interval,
    trending_window      interval,
    weights_signature    text,
    last_refresh         timestamptz,
    interaction_id_mark  bigint,
    search_id_mark       bigint,
    window_horizon       date,
    window_signature     text,
    window_span_through  date
);
COMMENT ON TABLE popularity_engine.refresh_state IS
  'Internal: what refresh_popularity has aggregated (a transaction snapshot), the as_of and landmark of the trending sums, and the cluster the snapshot belongs to. One row.';
COMMENT ON COLUMN popularity_engine.refresh_state.aggregated_snapshot IS
  'Log rows whose writer_xid is visible in this snapshot are aggregated; the others are not yet.';
COMMENT ON COLUMN popularity_engine.refresh_state.legacy_snapshot IS
  'After a restore into another cluster: the old cluster''s snapshot, which still decides for rows with ids up to the legacy floors. NULL once they are all aggregated.';
COMMENT ON COLUMN popularity_engine.refresh_state.interaction_id_mark IS
  'The last id drawn from product_interactions_id_seq before aggregated_snapshot was taken (0: none yet; NULL: unknown). While it is unchanged, no row was written since, and a refresh need not read the log to know it.';
COMMENT ON COLUMN popularity_engine.refresh_state.search_id_mark IS
  'The same mark for search_interactions_id_seq.';
COMMENT ON COLUMN popularity_engine.refresh_state.window_horizon IS
  'The first UTC day with daily roll-ups and window lists (NULL: not built yet; the next refresh builds them).';
COMMENT ON COLUMN popularity_engine.refresh_state.window_signature IS
  'window_signature() of the weights and half-life the window lists were computed with.';
COMMENT ON COLUMN popularity_engine.refresh_state.window_span_through IS
  'The last UTC day the span lists sum (they cover the days from window_horizon through it; NULL: not built yet).';
COMMENT ON COLUMN popularity_engine.refresh_state.landmark IS
  'Forward-decay landmark L: product_stats.trend_fwd holds sum(w * 2^((t - L) / half_life)).';

-- A restore replays the dumped row on top of the one CREATE EXTENSION made: keep the dumped one.
CREATE FUNCTION popularity_engine.singleton_replace() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('DELETE FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    RETURN NEW;
END $$;
COMMENT ON FUNCTION popularity_engine.singleton_replace() IS
  'Trigger for one-row state tables: an INSERT replaces the existing row (so pg_dump restores keep the dumped state).';
CREATE TRIGGER refresh_state_replace BEFORE INSERT ON popularity_engine.refresh_state
    FOR EACH ROW EXECUTE FUNCTION popularity_engine.singleton_replace();
COMMENT ON TRIGGER refresh_state_replace ON popularity_engine.refresh_state IS
  'Keeps refresh_state at one row across pg_dump restores.';

INSERT INTO popularity_engine.refresh_state (system_identifier)
VALUES (popularity_engine.system_identifier());

-- Aggregates -----------------------------------------------------------------------------------

CREATE TABLE popularity_engine.product_type_totals (
    product_id       bigint NOT NULL,
    interaction_type popularity_engine.interaction_type NOT NULL,
    events           bigint NOT NULL DEFAULT 0,
    value_sum        double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (product_id, interaction_type)
);
COMMENT ON TABLE popularity_engine.product_type_totals IS
  'All-time events per product and interaction type (wishlist counts adds only) and the sum of their event_value. Counters and popularity_score are derived from it with interaction_weights, so a weight change needs no rescan of the log.';

CREATE TABLE popularity_engine.product_stats (
    product_id         bigint PRIMARY KEY,
    search_count       bigint NOT NULL DEFAULT 0,
    search_click_count bigint NOT NULL DEFAULT 0,
    view_count         bigint NOT NULL DEFAULT 0,
    click_count        bigint NOT NULL DEFAULT 0,
    wishlist_count     bigint NOT NULL DEFAULT 0,
    cart_add_count     bigint NOT NULL DEFAULT 0,
    order_count        bigint NOT NULL DEFAULT 0,
    review_count       bigint NOT NULL DEFAULT 0,
    rating_sum         double precision NOT NULL DEFAULT 0,
    popularity_score   double precision NOT NULL DEFAULT 0,
    trend_fwd          double precision NOT NULL DEFAULT 0,
    trend_events       bigint NOT NULL DEFAULT 0,
    last_interaction   timestamptz,
    last_updated       timestamptz NOT NULL DEFAULT now(),
    -- the catalog's category and brand when the product last changed: lets recommend() find a
    -- category's or brand's most popular products through one index
    category           text,
    brand              text
);
COMMENT ON TABLE popularity_engine.product_stats IS
  'Internal storage behind the product_popularity view. trend_fwd is the forward-decayed trending sum against refresh_state.landmark; trend_events counts the events in it.';
CREATE INDEX product_stats_popularity ON popularity_engine.product_stats (popularity_score DESC, product_id) WHERE popularity_score > 0;
CREATE INDEX product_stats_trending ON popularity_engine.product_stats (trend_fwd DESC, product_id) WHERE trend_fwd > 0;
CREATE INDEX product_stats_views ON popularity_engine.product_stats (view_count DESC, product_id) WHERE view_count > 0;
CREATE INDEX product_stats_carts ON popularity_engine.product_stats (cart_add_count DESC, product_id) WHERE cart_add_count > 0;
CREATE INDEX product_stats_orders ON popularity_engine.product_stats (order_count DESC, product_id) WHERE order_count > 0;
CREATE INDEX product_stats_search_clicks ON popularity_engine.product_stats (search_click_count DESC, product_id) WHERE search_click_count > 0;
CREATE INDEX product_stats_wishlists ON popularity_engine.product_stats (wishlist_count DESC, product_id) WHERE wishlist_count > 0;
CREATE INDEX product_stats_category ON popularity_engine.product_stats (category, popularity_score DESC, product_id) WHERE popularity_score > 0;
CREATE INDEX product_stats_brand ON popularity_engine.product_stats (brand, popularity_score DESC, product_id) WHERE popularity_score > 0;
CREATE INDEX product_stats_rating ON popularity_engine.product_stats ((rating_sum / review_count) DESC, product_id) WHERE review_count > 0;

CREATE TABLE popularity_engine.popularity_hourly (
    product_id       bigint NOT NULL,
    bucket_hour      timestamptz NOT NULL,
    interaction_type popularity_engine.interaction_type NOT NULL,
    events           bigint NOT NULL DEFAULT 0,
    value_sum        double precision NOT NULL DEFAULT 0,
    decay_sum        double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket_hour, product_id, interaction_type)
);
-- A product's buckets in time order: the exact window sums of the few candidates the window
-- lists name.
CREATE INDEX popularity_hourly_product ON popularity_engine.popularity_hourly (product_id, bucket_hour);
-- One type's buckets in time order: a mode that counts one kind of event sums only its buckets
-- (top_rated, which has no window lists, reads its reviews alone). No index may hold the counts,
-- not even a partial one: an update is HOT only if it changes no column of any index of the
-- table, so every bucket update would stop being one.
CREATE INDEX popularity_hourly_type ON popularity_engine.popularity_hourly (interaction_type, bucket_hour);
COMMENT ON TABLE popularity_engine.popularity_hourly IS
  'Events per product, hour and type (wishlist: adds only), for popular_products(time_window => ...). decay_sum = sum(2^((occurred_at - bucket_hour) / trending_half_life)).';

CREATE TABLE popularity_engine.search_hourly (
    product_id  bigint NOT NULL,
    bucket_hour timestamptz NOT NULL,
    appearances bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket_hour, product_id)
);
COMMENT ON TABLE popularity_engine.search_hourly IS
  'How often each product appeared in tracked search results, per hour.';


SELECT pg_catalog.pg_extension_config_dump('popularity_engine.refresh_state', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.product_type_totals', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.product_stats', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.popularity_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.search_hourly', '');

CREATE VIEW popularity_engine.product_popularity AS
SELECT s.product_id, s.search_count, s.search_click_count, s.view_count, s.click_count,
       s.wishlist_count, s.cart_add_count, s.order_count, s.review_count,
       CASE WHEN s.review_count > 0 THEN s.rating_sum / s.review_count END AS rating_avg,
       s.popularity_score,
       CASE WHEN s.trend_events > 0
            THEN s.trend_fwd * popularity_engine.decay_factor(r.landmark, r.as_of,
                                   extract(epoch FROM r.trending_half_life)::float8)
            ELSE 0 END AS trending_score,
       s.last_interaction, s.last_updated
  FROM popularity_engine.product_stats s
 CROSS JOIN popularity_engine.refresh_state r;
COMMENT ON VIEW popularity_engine.product_popularity IS
  'Per product: counters, average rating, popularity_score = sum(counter x popularity_weight), and trending_score = sum(popularity_weight x 0.5^(hours_ago / half_life)) over the trending window at the as_of of the last refresh_popularity().';

-- State helpers ------------------------------------------------------------------------------

-- The settings themselves rather than a hash of them: md5's first call in a backend starts
-- OpenSSL, which every scheduled refresh (a new connection) paid (bench/PROFILE.md).
CREATE FUNCTION popularity_engine.weights_signature() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(format('%s:%s:%s', interaction_type, counter, popularity_weight), ','
                      ORDER BY interaction_type)
      FROM popularity_engine.interaction_weights
$$;
COMMENT ON FUNCTION popularity_engine.weights_signature() IS
  'Internal: fingerprint of the counters and popularity weights, to notice edits between refreshes.';

-- After a restore into another cluster, the first tracking call or refresh there calls this:
-- every row that exists now keeps the old cluster's snapshot semantics, later rows (higher ids)
-- use this cluster's. Returns true when it rebased.
CREATE FUNCTION popularity_engine.rebase_if_restored() RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_state popularity_engine.refresh_state;
BEGIN
    -- The common case takes no lock: tracking calls this and must never wait for a refresh.
    IF (SELECT system_identifier FROM popularity_engine.refresh_state)
       = popularity_engine.system_identifier() THEN
        RETURN false;
    END IF;
    SELECT * INTO v_state FROM popularity_engine.refresh_state FOR UPDATE;
    IF v_state.system_identifier = popularity_engine.system_identifier() THEN
        RETURN false;  -- another session rebased while this one waited
    END IF;
    IF v_state.legacy_snapshot IS NOT NULL THEN
        RAISE EXCEPTION 'popularity_engine: restored twice into new clusters without a refresh in between'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Restore the dump into the original cluster, CALL popularity_engine.refresh_popularity() there and dump again.';
    END IF;
    UPDATE popularity_engine.refresh_state
       SET system_identifier = popularity_engine.system_identifier(),
           legacy_snapshot = v_state.aggregated_snapshot,
           legacy_interaction_id_floor =
               coalesce((SELECT max(id) FROM popularity_engine.product_interactions), 0),
           legacy_search_id_floor =
               coalesce((SELECT max(id) FROM popularity_engine.search_interactions), 0),
           aggregated_snapshot = '1:1:', interaction_id_mark = NULL, search_id_mark = NULL;
    -- every other consumer of the log re-anchors the same way
    UPDATE popularity_engine.preference_state
       SET legacy_snapshot = aggregated_snapshot, aggregated_snapshot = '1:1:',
           interaction_id_mark = NULL, search_id_mark = NULL;
    RAISE NOTICE 'popularity_engine: restored from another cluster; unaggregated rows will be counted by the next refresh';
    RETURN true;
END $$;
COMMENT ON FUNCTION popularity_engine.rebase_if_restored() IS
  'Internal: re-anchors exactly-once aggregation after a restore into another cluster (transaction ids restart there).';
