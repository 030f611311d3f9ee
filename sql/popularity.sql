-- popularity_engine: incremental, exactly-once popularity aggregation.
--
-- How "exactly once" works. Every log row records the transaction that wrote it (writer_xid).
-- Each refresh reads the new rows and captures pg_current_snapshot() in ONE statement, so the
-- rows it aggregates are exactly those visible in that snapshot, and stores the snapshot. A row
-- was aggregated by an earlier refresh iff its writer_xid is visible in the stored snapshot, so the
-- next refresh takes the rows with writer_xid >= xmax of that snapshot, plus those whose xid was
-- still in progress in it (its xip list): a transaction that commits late, out of id order or
-- after several refreshes is picked up by the first refresh that can see it, and never twice.
-- Nothing waits for the oldest open transaction in the cluster (the xmin horizon is not used).
--
-- Restores into another cluster: transaction ids restart there, so the stored snapshot means
-- nothing for new rows. refresh_state records the cluster's system identifier; the first
-- tracking call or refresh in a different cluster "rebases" (see rebase_if_restored): rows that
-- exist at that moment keep the old snapshot's meaning, rows after them (higher ids) are judged
-- against snapshots of the new cluster.

CREATE TABLE popularity_engine.job_runs (
    id             bigserial PRIMARY KEY,
    job            text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    status         text NOT NULL CHECK (status IN ('running', 'success', 'error', 'skipped')),
    rows_processed bigint,
    message        text
);
CREATE INDEX job_runs_job_time ON popularity_engine.job_runs (job, started_at DESC);
COMMENT ON TABLE popularity_engine.job_runs IS
  'One row per run of a refresh or maintenance procedure: when, how it ended, how many rows it processed, and what it said.';
COMMENT ON SEQUENCE popularity_engine.job_runs_id_seq IS 'Ids of job_runs rows.';

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
    last_refresh         timestamptz
);
COMMENT ON TABLE popularity_engine.refresh_state IS
  'Internal: what refresh_popularity has aggregated (a transaction snapshot), the as_of and landmark of the trending sums, and the cluster the snapshot belongs to. One row.';
COMMENT ON COLUMN popularity_engine.refresh_state.aggregated_snapshot IS
  'Log rows whose writer_xid is visible in this snapshot are aggregated; the others are not yet.';
COMMENT ON COLUMN popularity_engine.refresh_state.legacy_snapshot IS
  'After a restore into another cluster: the old cluster''s snapshot, which still decides for rows with ids up to the legacy floors. NULL once they are all aggregated.';
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
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.job_runs_id_seq', '');
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
            THEN s.trend_fwd * power(2::float8, extract(epoch FROM r.landmark - r.as_of)
                                               / extract(epoch FROM r.trending_half_life))
            ELSE 0 END AS trending_score,
       s.last_interaction, s.last_updated
  FROM popularity_engine.product_stats s
 CROSS JOIN popularity_engine.refresh_state r;
COMMENT ON VIEW popularity_engine.product_popularity IS
  'Per product: counters, average rating, popularity_score = sum(counter x popularity_weight), and trending_score = sum(popularity_weight x 0.5^(hours_ago / half_life)) over the trending window at the as_of of the last refresh_popularity().';

-- Helpers --------------------------------------------------------------------------------------

-- Was a log row aggregated as of `snap`? Rows up to the legacy floor (restored from another
-- cluster) are judged by the legacy snapshot.
CREATE FUNCTION popularity_engine.row_aggregated(
    row_id bigint, writer_xid xid8, snap pg_snapshot, legacy_floor bigint, legacy pg_snapshot)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN row_id <= legacy_floor
                THEN legacy IS NULL OR pg_visible_in_snapshot(writer_xid, legacy)
                ELSE pg_visible_in_snapshot(writer_xid, snap) END
$$;
COMMENT ON FUNCTION popularity_engine.row_aggregated(bigint, xid8, pg_snapshot, bigint, pg_snapshot) IS
  'Internal: whether a log row was aggregated by the refresh that stored snapshot snap.';

CREATE FUNCTION popularity_engine.weights_signature() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT md5(string_agg(format('%s:%s:%s', interaction_type, counter, popularity_weight), ','
                          ORDER BY interaction_type))
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
           aggregated_snapshot = '1:1:';
    -- every other consumer of the log re-anchors the same way
    UPDATE popularity_engine.preference_state
       SET legacy_snapshot = aggregated_snapshot, aggregated_snapshot = '1:1:';
    RAISE NOTICE 'popularity_engine: restored from another cluster; unaggregated rows will be counted by the next refresh';
    RETURN true;
END $$;
COMMENT ON FUNCTION popularity_engine.rebase_if_restored() IS
  'Internal: re-anchors exactly-once aggregation after a restore into another cluster (transaction ids restart there).';

-- The WHERE clause (over alias t) that selects log rows not aggregated as of the stored state,
-- written so that the writer_xid index serves it: xids at or after the snapshot's xmax, or in
-- its in-progress list. own_xid, when given, is left out (the calling transaction's own rows).
CREATE FUNCTION popularity_engine.unaggregated_rows_clause(
    id_floor bigint, snap pg_snapshot, legacy pg_snapshot, own_xid xid8)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('(%s)%s',
        format('(t.id > %s AND (t.writer_xid >= %L::xid8 OR t.writer_xid = ANY (%L::xid8[])))',
               id_floor, pg_snapshot_xmax(snap), ARRAY(SELECT pg_snapshot_xip(snap)))
        || CASE WHEN legacy IS NULL THEN '' ELSE
           format(' OR (t.id <= %s AND (t.writer_xid >= %L::xid8 OR t.writer_xid = ANY (%L::xid8[])))',
                  id_floor, pg_snapshot_xmax(legacy), ARRAY(SELECT pg_snapshot_xip(legacy))) END,
        CASE WHEN own_xid IS NULL THEN '' ELSE format(' AND t.writer_xid <> %L::xid8', own_xid) END)
$$;
COMMENT ON FUNCTION popularity_engine.unaggregated_rows_clause(bigint, pg_snapshot, pg_snapshot, xid8) IS
  'Internal: SQL condition selecting the log rows (alias t) that the stored refresh state has not aggregated yet.';

-- The snapshot `snap` cut at xid `bound`: what it shows of the transactions before bound. Used
-- when a refresh step stops at a transaction boundary; with bound = xmax it is snap itself.
CREATE FUNCTION popularity_engine.snapshot_cut(snap pg_snapshot, bound xid8) RETURNS pg_snapshot
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN bound >= pg_snapshot_xmax(snap) THEN snap ELSE
        format('%s:%s:%s', least(pg_snapshot_xmin(snap), bound), bound,
               (SELECT string_agg(x::text, ',' ORDER BY x) FROM pg_snapshot_xip(snap) AS x WHERE x < bound))::pg_snapshot
    END
$$;
COMMENT ON FUNCTION popularity_engine.snapshot_cut(pg_snapshot, xid8) IS
  'Internal: the snapshot restricted to transactions before bound (xmax = bound).';

-- The snapshot `snap` with transaction `xid` still running in it. A refresh stores this when it
-- runs inside a transaction that has itself written to the log: those rows are left for the
-- first refresh after that transaction commits (an xid at or past xmax already is).
CREATE FUNCTION popularity_engine.snapshot_with_running(snap pg_snapshot, xid xid8) RETURNS pg_snapshot
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN xid IS NULL OR xid >= pg_snapshot_xmax(snap) THEN snap ELSE
        format('%s:%s:%s', least(pg_snapshot_xmin(snap), xid), pg_snapshot_xmax(snap),
               (SELECT string_agg(x::text, ',' ORDER BY x)
                  FROM (SELECT pg_snapshot_xip(snap) UNION SELECT xid) AS u(x)))::pg_snapshot
    END
$$;
COMMENT ON FUNCTION popularity_engine.snapshot_with_running(pg_snapshot, xid8) IS
  'Internal: the snapshot with transaction xid treated as still running.';

-- The `bound` CTE of a refresh step's reading statement: the first transaction after the one
-- that wrote the max_rows-th unaggregated row (the statement's $1; NULL = no limit), or the
-- snapshot's xmax. Rows of transactions before it are read now, the others by the next step, so
-- that a step never splits a transaction. Expects a `snap` CTE holding pg_current_snapshot().
CREATE FUNCTION popularity_engine.step_bound_cte(unaggregated text, id_floor bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format($cte$bound AS MATERIALIZED (
            SELECT CASE WHEN $1::int8 IS NULL THEN pg_snapshot_xmax((SELECT s FROM snap)) ELSE coalesce(
                (SELECT min(t.writer_xid) FROM popularity_engine.product_interactions t
                  WHERE t.id > %2$s AND (%1$s)
                    AND t.writer_xid > (SELECT t.writer_xid FROM popularity_engine.product_interactions t
                                         WHERE t.id > %2$s AND (%1$s)
                                         ORDER BY t.writer_xid OFFSET greatest($1 - 1, 0) LIMIT 1)),
                pg_snapshot_xmax((SELECT s FROM snap))) END AS b)$cte$, unaggregated, id_floor)
$$;
COMMENT ON FUNCTION popularity_engine.step_bound_cte(text, bigint) IS
  'Internal: SQL text of the CTE that cuts a refresh step at a transaction boundary after about max_rows log rows.';
