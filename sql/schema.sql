-- popularity_engine: tables of the interaction log and the per-user state it keeps.
-- Every table is marked with pg_extension_config_dump so pg_dump keeps its rows.

COMMENT ON SCHEMA popularity_engine IS
  'popularity_engine: interaction tracking, popularity and personalization for e-commerce';
COMMENT ON TYPE popularity_engine.interaction_type IS
  'Every interaction an application can log: the union of the names storefronts commonly send (view and product_view, wishlist and wishlist_add, ...). See interaction_weights for how each one counts.';

-------------------------------------------------------------------------------
-- Weights: one row per interaction type, editable by the DBA.
-------------------------------------------------------------------------------
CREATE TABLE popularity_engine.interaction_weights (
    interaction_type  popularity_engine.interaction_type PRIMARY KEY,
    counter           text CHECK (counter IN ('view_count', 'click_count', 'search_click_count',
                                              'wishlist_count', 'cart_add_count', 'order_count',
                                              'review_count')),
    popularity_weight double precision NOT NULL DEFAULT 0
                      CHECK (popularity_weight >= 0 AND popularity_weight < 'infinity'),
    affinity_weight   double precision NOT NULL DEFAULT 0
                      CHECK (affinity_weight >= 0 AND affinity_weight < 'infinity'),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE popularity_engine.interaction_weights IS
  'How each interaction type counts: the product_popularity counter it increments, its weight in popularity_score and trending_score, and its weight in user category/brand affinity. Edit freely; changes apply to everything computed afterwards. An INSERT of an existing type updates it (so a pg_dump restore keeps your values).';
COMMENT ON COLUMN popularity_engine.interaction_weights.counter IS
  'product_popularity column this type increments (NULL: none). wishlist counts only when event_value = 1 (an add).';
COMMENT ON COLUMN popularity_engine.interaction_weights.popularity_weight IS
  'Weight in popularity_score = sum(counter x weight) and in trending_score.';
COMMENT ON COLUMN popularity_engine.interaction_weights.affinity_weight IS
  'Weight of one interaction of this type in a user''s category and brand affinity.';

INSERT INTO popularity_engine.interaction_weights
    (interaction_type, counter, popularity_weight, affinity_weight) VALUES
    ('view',                 'view_count',         2.0, 1.0),
    ('product_view',         'view_count',         2.0, 1.0),
    ('page_view',            NULL,                 0,   0),
    ('click',                'click_count',        1.0, 1.2),
    ('search_click',         'search_click_count', 1.0, 1.2),
    ('search',               NULL,                 0,   1.0),
    ('wishlist',             'wishlist_count',     3.0, 1.3),
    ('wishlist_add',         'wishlist_count',     3.0, 1.3),
    ('wishlist_remove',      NULL,                 0,   0),
    ('add_to_cart',          'cart_add_count',     5.0, 1.5),
    ('cart_add',             'cart_add_count',     5.0, 1.5),
    ('remove_from_cart',     NULL,                 0,   0),
    ('cart_remove',          NULL,                 0,   0),
    ('update_cart_quantity', NULL,                 0,   0),
    ('cart_update',          NULL,                 0,   0),
    ('purchase',             'order_count',        10.0, 2.0),
    ('order',                'order_count',        10.0, 2.0),
    ('review',               'review_count',       0,   1.6),
    ('login',                NULL,                 0,   0),
    ('logout',               NULL,                 0,   0);

-- A restore replays the dumped rows with INSERT/COPY on top of the defaults above; turning a
-- duplicate into an update keeps the DBA's values instead of failing on the primary key.
CREATE FUNCTION popularity_engine.interaction_weights_upsert() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE popularity_engine.interaction_weights w
       SET counter = NEW.counter,
           popularity_weight = NEW.popularity_weight,
           affinity_weight = NEW.affinity_weight,
           updated_at = NEW.updated_at
     WHERE w.interaction_type = NEW.interaction_type;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION popularity_engine.interaction_weights_upsert() IS
  'Trigger: an INSERT of an interaction type that already has weights updates them instead.';
CREATE TRIGGER interaction_weights_upsert BEFORE INSERT ON popularity_engine.interaction_weights
    FOR EACH ROW EXECUTE FUNCTION popularity_engine.interaction_weights_upsert();
COMMENT ON TRIGGER interaction_weights_upsert ON popularity_engine.interaction_weights IS
  'Makes INSERT of an existing type an update, so pg_dump restores keep edited weights.';

-------------------------------------------------------------------------------
-- The interaction log.
-------------------------------------------------------------------------------
CREATE SEQUENCE popularity_engine.product_interactions_id_seq AS bigint;
COMMENT ON SEQUENCE popularity_engine.product_interactions_id_seq IS
  'Ids of product_interactions rows.';

-- The log is partitioned by week of occurred_at (ensure_partitions() creates the partitions
-- ahead, cleanup_interactions() drops whole old ones). The parent has no index of its own: each
-- partition carries its own (index_log_partition), so that a pg_dump of the weekly partitions
-- (ordinary tables, while the parent belongs to the extension) restores without clashing with
-- index clones. A unique index on a partitioned table would also have to contain the partition
-- key, so idempotency on event_id lives in interaction_event_ids.
CREATE TABLE popularity_engine.product_interactions (
    id               bigint NOT NULL
                     DEFAULT nextval('popularity_engine.product_interactions_id_seq'),
    user_id          bigint CHECK (user_id > 0),
    product_id       bigint CHECK (product_id > 0),
    interaction_type popularity_engine.interaction_type NOT NULL,
    event_value      double precision NOT NULL,
    occurred_at      timestamptz NOT NULL,
    session_id       text,
    metadata         jsonb,
    event_id         uuid,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    -- The writing transaction: the refresh procedures use it to aggregate every committed row
    -- exactly once, whatever order transactions commit in.
    writer_xid       xid8 NOT NULL DEFAULT pg_current_xact_id()
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE popularity_engine.product_interactions_id_seq
    OWNED BY popularity_engine.product_interactions.id;

-- The indexes every partition of the log gets: its primary key, the lookups by user and by
-- product over time, the refresh's writer_xid scans, and trending's time slices.
CREATE FUNCTION popularity_engine.index_log_partition(part regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_name text := (SELECT relname FROM pg_class WHERE oid = part);
BEGIN
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (id)', part, v_name || '_pkey');
    EXECUTE format('CREATE INDEX %I ON %s (user_id, occurred_at) WHERE user_id IS NOT NULL', v_name || '_user_time', part);
    EXECUTE format('CREATE INDEX %I ON %s (product_id, occurred_at) WHERE product_id IS NOT NULL', v_name || '_product_time', part);
    EXECUTE format('CREATE INDEX %I ON %s (writer_xid)', v_name || '_writer_xid', part);
    EXECUTE format('CREATE INDEX %I ON %s (occurred_at)', v_name || '_occurred', part);
END $$;
COMMENT ON FUNCTION popularity_engine.index_log_partition(regclass) IS
  'Internal: creates the indexes of one partition of product_interactions.';

-- Rows outside every weekly partition (before ensure_partitions() first ran, or backfilled
-- from before the oldest partition) land here.
CREATE TABLE popularity_engine.product_interactions_default
    PARTITION OF popularity_engine.product_interactions DEFAULT;
COMMENT ON TABLE popularity_engine.product_interactions_default IS
  'Interactions outside every weekly partition of product_interactions.';
SELECT popularity_engine.index_log_partition('popularity_engine.product_interactions_default');

COMMENT ON TABLE popularity_engine.product_interactions IS
  'The raw interaction log, one row per tracked event. Write it through track(), track_batch(), track_order() and track_search_click(), never directly.';
COMMENT ON COLUMN popularity_engine.product_interactions.user_id IS 'The user; NULL for an anonymous visitor.';
COMMENT ON COLUMN popularity_engine.product_interactions.product_id IS 'The product; NULL for page views, searches, logins and logouts without one.';
COMMENT ON COLUMN popularity_engine.product_interactions.event_value IS 'Per type: 1, a quantity, a wishlist flag or a star rating (never a price).';
COMMENT ON COLUMN popularity_engine.product_interactions.occurred_at IS 'When the interaction happened, as the application reported it.';
COMMENT ON COLUMN popularity_engine.product_interactions.event_id IS 'Client-chosen idempotency key: a repeated event_id is stored once.';
COMMENT ON COLUMN popularity_engine.product_interactions.recorded_at IS 'When the database stored the row.';
COMMENT ON COLUMN popularity_engine.product_interactions.writer_xid IS 'Transaction that wrote the row; drives exactly-once incremental aggregation.';

CREATE TABLE popularity_engine.interaction_event_ids (
    event_id       uuid PRIMARY KEY,
    interaction_id bigint NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE popularity_engine.interaction_event_ids IS
  'Idempotency keys: the first interaction stored for each client event_id. A retry with the same event_id returns that interaction id and stores nothing.';

-------------------------------------------------------------------------------
-- Searches.
-------------------------------------------------------------------------------
CREATE TABLE popularity_engine.search_interactions (
    id                 bigserial PRIMARY KEY,
    user_id            bigint CHECK (user_id > 0),
    query              text NOT NULL,
    result_product_ids bigint[] NOT NULL DEFAULT '{}',
    occurred_at        timestamptz NOT NULL,
    session_id         text,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    writer_xid         xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX search_interactions_user_time
    ON popularity_engine.search_interactions (user_id, occurred_at) WHERE user_id IS NOT NULL;
CREATE INDEX search_interactions_time ON popularity_engine.search_interactions (occurred_at);
CREATE INDEX search_interactions_writer_xid ON popularity_engine.search_interactions (writer_xid);
COMMENT ON SEQUENCE popularity_engine.search_interactions_id_seq IS 'Ids of search_interactions rows.';
COMMENT ON TABLE popularity_engine.search_interactions IS
  'One row per search: the query and the products it showed (they feed product_popularity.search_count).';
COMMENT ON COLUMN popularity_engine.search_interactions.result_product_ids IS 'Products shown for the query, in the order shown.';
COMMENT ON COLUMN popularity_engine.search_interactions.writer_xid IS 'Transaction that wrote the row; drives exactly-once incremental aggregation.';

-------------------------------------------------------------------------------
-- Catalog: the product attributes ranking needs, maintained by the application.
-------------------------------------------------------------------------------
CREATE TABLE popularity_engine.catalog (
    product_id bigint PRIMARY KEY CHECK (product_id > 0),
    category   text,
    brand      text,
    price      numeric CHECK (price >= 0),
    inventory  integer CHECK (inventory >= 0),
    is_active  boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_category ON popularity_engine.catalog (category);
CREATE INDEX catalog_brand ON popularity_engine.catalog (brand);
COMMENT ON TABLE popularity_engine.catalog IS
  'Product attributes used for ranking and category filters; the application upserts it. Products without a row are still tracked.';
COMMENT ON COLUMN popularity_engine.catalog.inventory IS 'Units in stock; 0 means out of stock (never recommended). NULL means unknown.';
COMMENT ON COLUMN popularity_engine.catalog.is_active IS 'false hides the product from recommendations.';

-------------------------------------------------------------------------------
-- Per-user state, kept in sync by tracking in the caller's transaction.
-------------------------------------------------------------------------------
CREATE TABLE popularity_engine.user_cart (
    user_id    bigint NOT NULL CHECK (user_id > 0),
    product_id bigint NOT NULL CHECK (product_id > 0),
    quantity   integer NOT NULL CHECK (quantity > 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, product_id)
);
COMMENT ON TABLE popularity_engine.user_cart IS
  'Current cart per user, kept by add_to_cart (+quantity), remove_from_cart (-quantity, 0 = all) and update_cart_quantity (set, 0 deletes). Never negative.';

CREATE TABLE popularity_engine.user_wishlist (
    user_id    bigint NOT NULL CHECK (user_id > 0),
    product_id bigint NOT NULL CHECK (product_id > 0),
    added_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
COMMENT ON TABLE popularity_engine.user_wishlist IS
  'Current wishlist per user, kept by wishlist events (event_value 1 adds, 0 removes).';

CREATE TABLE popularity_engine.purchase_history (
    id             bigserial PRIMARY KEY,
    user_id        bigint NOT NULL CHECK (user_id > 0),
    product_id     bigint NOT NULL CHECK (product_id > 0),
    quantity       integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    order_ref      text,
    purchased_at   timestamptz NOT NULL,
    interaction_id bigint
);
CREATE INDEX purchase_history_user_time ON popularity_engine.purchase_history (user_id, purchased_at);
CREATE INDEX purchase_history_product ON popularity_engine.purchase_history (product_id);
COMMENT ON SEQUENCE popularity_engine.purchase_history_id_seq IS 'Ids of purchase_history rows.';
COMMENT ON TABLE popularity_engine.purchase_history IS
  'Every purchased line, from purchase/order events and track_order(). Drives the recent-order penalty.';
COMMENT ON COLUMN popularity_engine.purchase_history.interaction_id IS 'The order/purchase interaction that recorded the line.';

-------------------------------------------------------------------------------
-- pg_dump keeps all of it.
-------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.interaction_weights', '');
-- the weekly partitions are ordinary tables (not extension members), dumped with their data
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.product_interactions_default', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.product_interactions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.interaction_event_ids', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.search_interactions', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.search_interactions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.catalog', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.user_cart', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.user_wishlist', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.purchase_history', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.purchase_history_id_seq', '');
