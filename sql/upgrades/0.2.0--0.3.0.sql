-- popularity_engine 0.2.0 -> 0.3.0 (ALTER EXTENSION popularity_engine UPDATE TO '0.3.0')
--
-- The DDL of this step only: new, renamed and dropped tables, columns, indexes and types, views
-- whose columns change, DROP FUNCTION of routines whose signature or result changed or that are
-- gone, data migrations. scripts/compose_upgrades.py puts every routine of 0.3.0's install
-- script at the marker below (what comes after it runs once they exist), then its privileges.

-- Routines that are gone, or whose signature changed (the new ones are created below).
DROP FUNCTION popularity_engine.unaggregated_anywhere_clause();
DROP FUNCTION popularity_engine.pending_rows_clause(text, text);
DROP FUNCTION popularity_engine.unaggregated_rows_clause(bigint, pg_snapshot, pg_snapshot, xid8);
DROP FUNCTION popularity_engine.step_bound_cte(text, bigint);
DROP FUNCTION popularity_engine.snapshot_cut(pg_snapshot, xid8);
DROP FUNCTION popularity_engine.snapshot_with_running(pg_snapshot, xid8);
DROP FUNCTION popularity_engine.row_aggregated(bigint, xid8, pg_snapshot, bigint, pg_snapshot);
DROP FUNCTION popularity_engine.user_interaction_count(bigint);
DROP PROCEDURE popularity_engine.run_job(text, text, bigint);

-- One name per concept: the stored sums behind user_preferences.
ALTER TABLE popularity_engine.user_affinity_sums RENAME TO user_preference_sums;
ALTER INDEX popularity_engine.user_affinity_sums_pkey RENAME TO user_preference_sums_pkey;
ALTER TABLE popularity_engine.user_preference_sums
    RENAME CONSTRAINT user_affinity_sums_dimension_check TO user_preference_sums_dimension_check;

-- The id marks that let a refresh with nothing new skip reading the log; NULL until the first
-- refresh after the update stores them.
ALTER TABLE popularity_engine.refresh_state
    ADD COLUMN interaction_id_mark bigint, ADD COLUMN search_id_mark bigint;
COMMENT ON COLUMN popularity_engine.refresh_state.interaction_id_mark IS
  'The last id drawn from product_interactions_id_seq before aggregated_snapshot was taken (0: none yet; NULL: unknown). While it is unchanged, no row was written since, and a refresh need not read the log to know it.';
COMMENT ON COLUMN popularity_engine.refresh_state.search_id_mark IS
  'The same mark for search_interactions_id_seq.';
ALTER TABLE popularity_engine.preference_state
    ADD COLUMN interaction_id_mark bigint, ADD COLUMN search_id_mark bigint;
COMMENT ON COLUMN popularity_engine.preference_state.interaction_id_mark IS
  'The last id drawn from product_interactions_id_seq before aggregated_snapshot was taken (NULL: unknown); see refresh_state.interaction_id_mark.';
COMMENT ON COLUMN popularity_engine.preference_state.search_id_mark IS
  'The same mark for search_interactions_id_seq.';

CREATE TYPE popularity_engine.job AS ENUM (
    'refresh_popularity', 'refresh_user_preferences', 'refresh_item_similarity', 'cleanup_interactions');
COMMENT ON TYPE popularity_engine.job IS
  'The maintenance jobs run_job knows; job_runs.job holds their names.';

-- The price level of each category, kept by refresh_item_similarity for the ranking's price fit.
CREATE TABLE popularity_engine.category_prices (
    category     text PRIMARY KEY,
    median_price double precision NOT NULL CHECK (median_price > 0),
    products     bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE popularity_engine.category_prices IS
  'Median catalog price per category, rebuilt by refresh_item_similarity(): the ranking compares a product''s price with its category''s (relative_price) and with the user''s usual place in a category''s range.';
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.category_prices', '');

-- A product's counters as one value (counter_delta names the counter mapping once).
CREATE TYPE popularity_engine.product_counters AS (
    search_click_count bigint, view_count bigint, click_count bigint, wishlist_count bigint,
    cart_add_count bigint, order_count bigint, review_count bigint,
    rating_sum double precision, popularity_score double precision);
COMMENT ON TYPE popularity_engine.product_counters IS
  'Internal: the counters and popularity_score of product_popularity, as one value.';

-- Catalog comments speak of this project alone.
COMMENT ON TYPE popularity_engine.interaction_type IS
  'Every interaction an application can log: the union of the names storefronts commonly send (view and product_view, wishlist and wishlist_add, ...). See interaction_weights for how each one counts.';

-- Windows answered from per-day lists (window_lists.sql). The horizon is NULL after the update:
-- until the first refresh builds the lists, popular_products sums the hourly buckets as before.
ALTER TABLE popularity_engine.refresh_state
    ADD COLUMN window_horizon date, ADD COLUMN window_signature text, ADD COLUMN window_span_through date;
COMMENT ON COLUMN popularity_engine.refresh_state.window_horizon IS
  'The first UTC day with daily roll-ups and window lists (NULL: not built yet; the next refresh builds them).';
COMMENT ON COLUMN popularity_engine.refresh_state.window_signature IS
  'window_signature() of the weights and half-life the window lists were computed with.';
COMMENT ON COLUMN popularity_engine.refresh_state.window_span_through IS
  'The last UTC day the span lists sum (they cover the days from window_horizon through it; NULL: not built yet).';
CREATE INDEX popularity_hourly_product ON popularity_engine.popularity_hourly (product_id, bucket_hour);
CREATE INDEX popularity_hourly_type ON popularity_engine.popularity_hourly (interaction_type, bucket_hour);
CREATE TABLE popularity_engine.popularity_daily (
    product_id      bigint NOT NULL,
    day             date NOT NULL,
    trending        double precision NOT NULL,
    most_viewed     double precision NOT NULL,
    most_carted     double precision NOT NULL,
    most_ordered    double precision NOT NULL,
    most_searched   double precision NOT NULL,
    overall         double precision NOT NULL,
    most_wishlisted double precision NOT NULL,
    PRIMARY KEY (product_id, day)
);
CREATE INDEX popularity_daily_day ON popularity_engine.popularity_daily (day);
COMMENT ON TABLE popularity_engine.popularity_daily IS
  'Internal: per product and UTC day since refresh_state.window_horizon, the day''s score in every mode that has window lists (a column per mode, see day_score), from popularity_hourly with the weights and half-life of refresh_state.window_signature. trending: the weighted sum of 2^((occurred_at - start of the day) / trending_half_life).';

CREATE TABLE popularity_engine.window_lists (
    day   date NOT NULL,
    mode  popularity_engine.popularity_mode NOT NULL,
    scope text NOT NULL,
    bound double precision NOT NULL,
    PRIMARY KEY (day, mode, scope)
);
COMMENT ON TABLE popularity_engine.window_lists IS
  'Internal: per UTC day, popular_products mode and scope, a bound on the day score of every product of the scope that is not in window_list_entries for that day, mode and scope. No row: no product of the scope scored in that mode that day.';
COMMENT ON COLUMN popularity_engine.window_lists.scope IS
  'Whose list: '''' for all products, else the catalog category of its products (see window_scopes).';

CREATE TABLE popularity_engine.window_list_entries (
    day        date NOT NULL,
    mode       popularity_engine.popularity_mode NOT NULL,
    scope      text NOT NULL,
    product_id bigint NOT NULL,
    score      double precision NOT NULL,
    PRIMARY KEY (day, mode, scope, product_id)
);
CREATE INDEX window_list_entries_rank
    ON popularity_engine.window_list_entries (day, mode, scope, score DESC, product_id);
COMMENT ON TABLE popularity_engine.window_list_entries IS
  'Internal: the leading products of a UTC day in a popular_products mode and scope, with their day score (trending: before the decay to the time of the query). A product that left the scope''s category may linger until the list is rebuilt; readers check the catalog.';

CREATE TABLE popularity_engine.window_category_moves (
    product_id bigint NOT NULL,
    category   text NOT NULL
);
CREATE INDEX window_category_moves_category ON popularity_engine.window_category_moves (category);
COMMENT ON TABLE popularity_engine.window_category_moves IS
  'Internal: products that joined a category in the catalog since refresh_popularity last entered their day scores into the window lists; popular_products counts them as candidates of that category meanwhile.';

SELECT pg_catalog.pg_extension_config_dump('popularity_engine.popularity_daily', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_lists', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_list_entries', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_category_moves', '');

-- Lists over all the days kept, for long windows (span_lists.sql); empty after the update,
-- filled by the first refresh with the day lists.
CREATE TABLE popularity_engine.window_span_lists (
    mode  popularity_engine.popularity_mode NOT NULL,
    scope text NOT NULL,
    bound double precision NOT NULL,
    PRIMARY KEY (mode, scope)
);
COMMENT ON COLUMN popularity_engine.window_span_lists.scope IS
  'Whose list: '''' for all products, else the catalog category of its products (see window_scopes).';
COMMENT ON TABLE popularity_engine.window_span_lists IS
  'Internal: per popular_products mode and scope, a bound on the span sum (days from refresh_state.window_horizon through window_span_through) of any product of the scope not in window_span_entries.';

CREATE TABLE popularity_engine.window_span_entries (
    mode       popularity_engine.popularity_mode NOT NULL,
    scope      text NOT NULL,
    product_id bigint NOT NULL,
    score      double precision NOT NULL,
    PRIMARY KEY (mode, scope, product_id)
);
CREATE INDEX window_span_entries_rank
    ON popularity_engine.window_span_entries (mode, scope, score DESC, product_id);
CREATE INDEX window_span_entries_product ON popularity_engine.window_span_entries (product_id);
COMMENT ON COLUMN popularity_engine.window_span_entries.scope IS
  'The list''s scope (see window_span_lists.scope).';
COMMENT ON TABLE popularity_engine.window_span_entries IS
  'Internal: the products with the best span sums (days from refresh_state.window_horizon through window_span_through), per mode and scope, with that sum (exact). A product that left the scope''s category may linger; readers check the catalog.';

SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_span_lists', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.window_span_entries', '');

-- top_rated within a window from the review hours and their totals (rating_hours.sql); empty
-- after the update, filled by the first refresh with the window lists.
CREATE TABLE popularity_engine.rating_hourly (
    product_id  bigint NOT NULL,
    bucket_hour timestamptz NOT NULL,
    category    text,
    reviews     double precision NOT NULL,
    rating_sum  double precision NOT NULL,
    PRIMARY KEY (product_id, bucket_hour)
);
-- Covering: a window's hours, of all products or of a category, read from the index alone.
CREATE INDEX rating_hourly_hour
    ON popularity_engine.rating_hourly (bucket_hour) INCLUDE (product_id, reviews, rating_sum);
CREATE INDEX rating_hourly_category_hour
    ON popularity_engine.rating_hourly (category, bucket_hour) INCLUDE (product_id, reviews, rating_sum);
COMMENT ON TABLE popularity_engine.rating_hourly IS
  'Internal: per product and UTC hour since refresh_state.window_horizon with a review (an interaction type whose counter is review_count), the number of reviews and their rating sum, from popularity_hourly, and the product''s catalog category (as of the last refresh that wrote the row; see window_category_moves). Read by popular_products for top_rated within a window.';

CREATE TABLE popularity_engine.rating_totals (
    product_id bigint PRIMARY KEY,
    category   text,
    reviews    double precision NOT NULL,
    rating_sum double precision NOT NULL,
    average    double precision NOT NULL
);
CREATE INDEX rating_totals_rank ON popularity_engine.rating_totals (average DESC, product_id);
CREATE INDEX rating_totals_category_rank
    ON popularity_engine.rating_totals (category, average DESC, product_id);
COMMENT ON TABLE popularity_engine.rating_totals IS
  'Internal: per product, its rating_hourly rows summed (reviews, rating sum, average = rating_sum / reviews) and its category as there.';

SELECT pg_catalog.pg_extension_config_dump('popularity_engine.rating_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('popularity_engine.rating_totals', '');

-- @routines

-- weights_signature() and affinity_weights_signature() are the weights' text now, no longer its
-- md5: a state stored under the md5 of the same weights still describes them (else the first
-- refreshes would rebuild trending and every user's preferences).
UPDATE popularity_engine.refresh_state
   SET weights_signature = popularity_engine.weights_signature()
 WHERE weights_signature = md5(popularity_engine.weights_signature());
UPDATE popularity_engine.preference_state
   SET weights_signature = popularity_engine.affinity_weights_signature()
 WHERE weights_signature = md5(popularity_engine.affinity_weights_signature());

-- The catalog triggers call a routine created above.
CREATE TRIGGER catalog_inserts_note_category_moves
    AFTER INSERT ON popularity_engine.catalog REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION popularity_engine.note_category_moves();
COMMENT ON TRIGGER catalog_inserts_note_category_moves ON popularity_engine.catalog IS
  'Notes inserted products for the window lists of their category (see window_category_moves).';
CREATE TRIGGER catalog_updates_note_category_moves
    AFTER UPDATE ON popularity_engine.catalog REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION popularity_engine.note_category_moves();
COMMENT ON TRIGGER catalog_updates_note_category_moves ON popularity_engine.catalog IS
  'Notes products whose category changed for the window lists of their new category (see window_category_moves).';

-- Views whose definitions now call the shared formulas (same columns).
CREATE OR REPLACE VIEW popularity_engine.product_popularity AS
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

CREATE OR REPLACE VIEW popularity_engine.user_preferences AS
SELECT a.user_id, a.dimension, a.value,
       a.fwd * popularity_engine.decay_factor(s.landmark, s.as_of, extract(epoch FROM s.half_life)::float8)
           AS affinity,
       a.events, a.updated_at
  FROM popularity_engine.user_preference_sums a
 CROSS JOIN popularity_engine.preference_state s;

CREATE OR REPLACE VIEW popularity_engine.job_health AS
SELECT j.job,
       ok.finished_at AS last_success, ok.rows_processed AS last_success_rows,
       round(extract(epoch FROM ok.finished_at - ok.started_at)::numeric, 3) AS last_success_seconds,
       bad.finished_at AS last_error, bad.message AS last_error_message,
       last.status AS last_status,
       (SELECT count(*) FROM popularity_engine.job_runs r
         WHERE r.job = j.job AND r.started_at > now() - interval '24 hours') AS runs_last_24h,
       CASE WHEN j.job IN ('refresh_popularity', 'refresh_user_preferences')
            THEN popularity_engine.pending_interactions(j.job) END AS pending_interactions
  FROM unnest(enum_range(NULL::popularity_engine.job)::text[]) AS j(job)
  LEFT JOIN LATERAL (SELECT * FROM popularity_engine.job_runs r WHERE r.job = j.job AND r.status = 'success'
                      ORDER BY r.id DESC LIMIT 1) ok ON true
  LEFT JOIN LATERAL (SELECT * FROM popularity_engine.job_runs r WHERE r.job = j.job AND r.status = 'error'
                      ORDER BY r.id DESC LIMIT 1) bad ON true
  LEFT JOIN LATERAL (SELECT * FROM popularity_engine.job_runs r WHERE r.job = j.job
                      ORDER BY r.id DESC LIMIT 1) last ON true;
