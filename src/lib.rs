//! popularity_engine: interaction tracking, popularity and personalization for e-commerce,
//! inside PostgreSQL. The SQL surface is documented in README.md and docs/.

use pgrx::prelude::*;

mod batch;
mod candidates;
mod cluster;
mod collaborative;
mod error;
mod gucs;
mod interaction;
mod ranking;
mod similarity;
mod spi_util;
mod tracking;
mod transactions;
mod user_context;
mod validation;

::pgrx::pg_module_magic!();

extension_sql_file!(
    "../sql/schema.sql",
    name = "schema",
    requires = [interaction::interaction_type]
);
extension_sql_file!(
    "../sql/formulas.sql",
    name = "formulas",
    requires = ["schema"]
);
extension_sql_file!(
    "../sql/exactly_once.sql",
    name = "exactly_once",
    requires = [
        "formulas",
        transactions::next_transaction_id,
        transactions::own_transaction_ids
    ]
);
extension_sql_file!(
    "../sql/popularity.sql",
    name = "popularity",
    requires = ["exactly_once", cluster::system_identifier]
);
extension_sql_file!(
    "../sql/refresh_popularity.sql",
    name = "refresh_popularity",
    requires = [
        "popularity",
        gucs::trending_half_life_seconds,
        gucs::trending_window_seconds
    ]
);
extension_sql_file!(
    "../sql/popular_products.sql",
    name = "popular_products",
    requires = ["refresh_popularity", validation::checked_limit]
);
extension_sql_file!(
    "../sql/window_lists.sql",
    name = "window_lists",
    requires = ["popular_products"]
);
extension_sql_file!(
    "../sql/span_lists.sql",
    name = "span_lists",
    requires = ["window_lists"]
);
extension_sql_file!(
    "../sql/rating_hours.sql",
    name = "rating_hours",
    requires = ["window_lists"]
);
extension_sql_file!(
    "../sql/preferences.sql",
    name = "preferences",
    requires = ["popularity"]
);
extension_sql_file!(
    "../sql/refresh_user_preferences.sql",
    name = "refresh_user_preferences",
    requires = [
        "preferences",
        "refresh_popularity",
        gucs::preference_half_life_seconds
    ]
);
extension_sql_file!(
    "../sql/similarity.sql",
    name = "similarity",
    requires = [
        "refresh_user_preferences",
        similarity::compute_item_similarity,
        validation::checked_limit,
        gucs::similarity_top_k
    ]
);
extension_sql_file!(
    "../sql/personalization.sql",
    name = "personalization",
    requires = ["similarity", gucs::cold_start_threshold]
);
extension_sql_file!(
    "../sql/maintenance.sql",
    name = "maintenance",
    requires = ["personalization", gucs::retention_seconds]
);
extension_sql_file!(
    "../sql/reporting.sql",
    name = "reporting",
    requires = ["maintenance", "popular_products"]
);
extension_sql_file!(
    "../sql/jobs.sql",
    name = "jobs",
    requires = ["reporting", transactions::may_commit]
);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[allow(non_snake_case)]
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries = 'pg_cron'",
            "cron.database_name = 'pgrx_tests'",
        ]
    }
}
