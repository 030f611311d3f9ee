-- popularity_engine: per-user aggregates kept by refresh_user_preferences(as_of), with the same
-- exactly-once mechanism as refresh_popularity (its own stored snapshot, see exactly_once.sql).
-- One concept, three names by role: user_preference_sums stores the decayed sums,
-- user_preferences is the view that evaluates them at the last refresh, and the reporting view
-- user_affinity ranks them per user.
--
-- affinity(user, dimension, value) = sum(affinity_weight x 0.5^(age / preference_half_life)) over
-- the user's interactions with products of that category or brand (from catalog, as it was when
-- the interaction was aggregated). Stored forward-decayed against a landmark, like trending.

CREATE TABLE popularity_engine.preference_state (
    singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    aggregated_snapshot pg_snapshot NOT NULL DEFAULT '1:1:',
    legacy_snapshot     pg_snapshot,
    as_of               timestamptz,
    landmark            timestamptz,
    half_life           interval,
    weights_signature   text,
    last_refresh        timestamptz,
    interaction_id_mark bigint,
    search_id_mark      bigint
);
COMMENT ON TABLE popularity_engine.preference_state IS
  'Internal: what refresh_user_preferences has aggregated (a transaction snapshot) and the landmark of the affinity sums. One row.';
COMMENT ON COLUMN popularity_engine.preference_state.interaction_id_mark IS
  'The last id drawn from product_interactions_id_seq before aggregated_snapshot was taken (NULL: unknown); see refresh_state.interaction_id_mark.';
COMMENT ON COLUMN popularity_engine.preference_state.search_id_mark IS
  'The same mark for search_interactions_id_seq.';
CREATE TRIGGER preference_state_replace BEFORE INSERT ON popularity_engine.preference_state
    FOR EACH ROW EXECUTE FUNCTION popularity_engine.singleton_replace();
COMMENT ON TRIGGER preference_state_replace ON popularity_engine.preference_state IS
  'Keeps preference_state at one row across pg_dump restores.';
INSERT INTO popularity_engine.preference_state DEFAULT VALUES;

CREATE TABLE popularity_engine.user_profiles (
    user_id           bigint PRIMARY KEY,
    interaction_count bigint NOT NULL DEFAULT 0,
    first_interaction timestamptz,
    last_interaction  timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE popularity_engine.user_profiles IS
  'Per user: how many interactions with a product were aggregated (all time), first and last interaction. Users with fewer than cold_start_threshold interactions get the cold-start list.';

CREATE TABLE popularity_engine.user_item_weights (
    user_id     bigint NOT NULL,
    product_id  bigint NOT NULL,
    weight      double precision NOT NULL DEFAULT 0,
    events      bigint NOT NULL DEFAULT 0,
    last_at     timestamptz,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX user_item_weights_product ON popularity_engine.user_item_weights (product_id);
COMMENT ON TABLE popularity_engine.user_item_weights IS
  'Per user and product: the sum of the affinity weights of the user''s interactions with it (undecayed), how many, and the last one. Input of refresh_item_similarity.';

CREATE TABLE popularity_engine.user_preference_sums (
    user_id    bigint NOT NULL,
    dimension  text NOT NULL CHECK (dimension IN ('category', 'brand')),
    value      text NOT NULL,
    fwd        double precision NOT NULL DEFAULT 0,
    events     bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, dimension, value)
);
COMMENT ON TABLE popularity_engine.user_preference_sums IS
  'Internal storage behind user_preferences: forward-decayed affinity sums against preference_state.landmark.';

SELECT pg_catalog.pg_extension_config_dump('popularity_engine.preference_state', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.user_profiles', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.user_item_weights', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.user_preference_sums', '');

CREATE VIEW popularity_engine.user_preferences AS
SELECT a.user_id, a.dimension, a.value,
       a.fwd * popularity_engine.decay_factor(s.landmark, s.as_of, extract(epoch FROM s.half_life)::float8)
           AS affinity,
       a.events, a.updated_at
  FROM popularity_engine.user_preference_sums a
 CROSS JOIN popularity_engine.preference_state s;
COMMENT ON VIEW popularity_engine.user_preferences IS
  'Per user, category and brand: affinity = sum(affinity_weight x 0.5^(age / preference_half_life)) at the as_of of the last refresh_user_preferences(), and how many interactions it sums.';
