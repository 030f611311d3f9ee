//! Every `popularity_engine.*` setting, in one place. All are USERSET: settable per session,
//! per role (ALTER ROLE ... SET) and per database (ALTER DATABASE ... SET). Durations are in
//! seconds internally and accept units ('72h', '7d').

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

pub static TRENDING_HALF_LIFE: GucSetting<i32> = GucSetting::<i32>::new(72 * 3600);
pub static TRENDING_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);
pub static WEIGHT_BASE_RELEVANCE: GucSetting<f64> = GucSetting::<f64>::new(0.5);
pub static WEIGHT_PERSONALIZATION: GucSetting<f64> = GucSetting::<f64>::new(0.3);
pub static WEIGHT_POPULARITY: GucSetting<f64> = GucSetting::<f64>::new(0.2);
pub static COLD_START_THRESHOLD: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static RECENT_ORDER_PENALTY: GucSetting<f64> = GucSetting::<f64>::new(0.7);
pub static RECENT_ORDER_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(30 * 24 * 3600);
pub static MAX_PER_CATEGORY: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static PREFERENCE_HALF_LIFE: GucSetting<i32> = GucSetting::<i32>::new(30 * 24 * 3600);
pub static SIMILARITY_TOP_K: GucSetting<i32> = GucSetting::<i32>::new(50);
pub static RETENTION: GucSetting<i32> = GucSetting::<i32>::new(90 * 24 * 3600);
pub static WEIGHT_SIMILARITY: GucSetting<f64> = GucSetting::<f64>::new(0.8);
pub static WEIGHT_CATEGORY: GucSetting<f64> = GucSetting::<f64>::new(0.15);
pub static WEIGHT_BRAND: GucSetting<f64> = GucSetting::<f64>::new(0.05);
pub static HISTORY_LENGTH: GucSetting<i32> = GucSetting::<i32>::new(20);
pub static HISTORY_HALF_LIFE: GucSetting<f64> = GucSetting::<f64>::new(1.0);
pub static LONG_HISTORY_LENGTH: GucSetting<i32> = GucSetting::<i32>::new(50);
pub static WEIGHT_LONG_HISTORY: GucSetting<f64> = GucSetting::<f64>::new(0.5);
pub static SIMILARITY_SHRINKAGE: GucSetting<f64> = GucSetting::<f64>::new(3.0);

const DAY: i32 = 24 * 3600;

fn duration(
    name: &'static std::ffi::CStr,
    short: &'static std::ffi::CStr,
    long: &'static std::ffi::CStr,
    setting: &'static GucSetting<i32>,
    min: i32,
    max: i32,
) {
    GucRegistry::define_int_guc(
        name,
        short,
        long,
        setting,
        min,
        max,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
}

fn weight(
    name: &'static std::ffi::CStr,
    short: &'static std::ffi::CStr,
    long: &'static std::ffi::CStr,
    setting: &'static GucSetting<f64>,
) {
    GucRegistry::define_float_guc(
        name,
        short,
        long,
        setting,
        0.0,
        1.0,
        GucContext::Userset,
        GucFlags::default(),
    );
}

pub fn init() {
    popularity_settings();
    recommendation_settings();
    personalization_settings();
    preference_and_retention_settings();
}

/// How popularity and trending scores are aggregated.
fn popularity_settings() {
    duration(
        c"popularity_engine.trending_half_life",
        c"Half-life of an interaction's weight in trending_score.",
        c"trending_score = sum(popularity_weight * 0.5^(hours_ago / half_life)).",
        &TRENDING_HALF_LIFE,
        60,
        365 * DAY,
    );
    duration(
        c"popularity_engine.trending_window",
        c"How far back trending_score looks.",
        c"Interactions older than this at as_of do not count in trending_score.",
        &TRENDING_WINDOW,
        3600,
        365 * DAY,
    );
}

/// The weights inside personalization (src/collaborative.rs).
pub fn personal_weights() -> crate::collaborative::PersonalWeights {
    crate::collaborative::PersonalWeights {
        similarity: WEIGHT_SIMILARITY.get(),
        category: WEIGHT_CATEGORY.get(),
        brand: WEIGHT_BRAND.get(),
    }
}

/// The history settings of collaborative filtering.
pub fn history_weights() -> crate::collaborative::HistoryWeights {
    let length = |setting: i32| usize::try_from(setting).unwrap_or(0);
    crate::collaborative::HistoryWeights {
        recent: length(HISTORY_LENGTH.get()),
        half_life: HISTORY_HALF_LIFE.get(),
        long: length(LONG_HISTORY_LENGTH.get()),
        long_share: WEIGHT_LONG_HISTORY.get(),
    }
}

/// What personalization is made of: collaborative filtering over the user's history (its recent
/// part and the whole of it), category and brand affinity.
fn personalization_settings() {
    const BLEND: &std::ffi::CStr = c"personalization = (w_sim * cf + w_cat * category affinity + w_brand * brand affinity) / (w_sim + w_cat + w_brand).";
    weight(
        c"popularity_engine.weight_similarity",
        c"Weight of collaborative filtering (similarity to the user's history) in personalization.",
        BLEND,
        &WEIGHT_SIMILARITY,
    );
    weight(
        c"popularity_engine.weight_category",
        c"Weight of the user's category affinity in personalization.",
        BLEND,
        &WEIGHT_CATEGORY,
    );
    weight(
        c"popularity_engine.weight_brand",
        c"Weight of the user's brand affinity in personalization.",
        BLEND,
        &WEIGHT_BRAND,
    );
    GucRegistry::define_int_guc(
        c"popularity_engine.history_length",
        c"How many of a user's most recent distinct products make up the recent, recency-weighted part of collaborative filtering.",
        c"Recent part r(j) = sum over these products of recency weight x item similarity to j; products seen at the same moment as the last of them count too.",
        &HISTORY_LENGTH,
        1,
        1000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"popularity_engine.history_half_life",
        c"Recency half-life of the history, in products: a product with k products seen after it weighs 0.5^(k / half_life).",
        c"The newest product weighs 1.",
        &HISTORY_HALF_LIFE,
        0.1,
        1000.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"popularity_engine.long_history_length",
        c"How many of a user's most recent distinct products make up the whole history of collaborative filtering.",
        c"Each weighs 1 in the whole-history sum, products seen at the same moment as the last of them too; 0 leaves only the recent part.",
        &LONG_HISTORY_LENGTH,
        0,
        1000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"popularity_engine.weight_long_history",
        c"Share of the whole-history sum in collaborative filtering, the recent part having the rest.",
        c"cf = sqrt((1 - share) x recent sum / its max + share x whole-history sum / its max).",
        &WEIGHT_LONG_HISTORY,
        0.0,
        1.0,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// How recommend() and rank_products() blend and filter.
fn recommendation_settings() {
    weight(
        c"popularity_engine.weight_base_relevance",
        c"Weight of base relevance (price, stock) in recommendation scores.",
        c"score = w_base * base_relevance + w_personalization * personalization + w_popularity * popularity.",
        &WEIGHT_BASE_RELEVANCE,
    );
    weight(
        c"popularity_engine.weight_personalization",
        c"Weight of the user's category/brand affinity in recommendation scores.",
        c"score = w_base * base_relevance + w_personalization * personalization + w_popularity * popularity.",
        &WEIGHT_PERSONALIZATION,
    );
    weight(
        c"popularity_engine.weight_popularity",
        c"Weight of global popularity in recommendation scores.",
        c"score = w_base * base_relevance + w_personalization * personalization + w_popularity * popularity.",
        &WEIGHT_POPULARITY,
    );
    GucRegistry::define_int_guc(
        c"popularity_engine.cold_start_threshold",
        c"Users with fewer interactions than this get the cold-start list.",
        c"The cold-start list is trending, then popular products, without personalization.",
        &COLD_START_THRESHOLD,
        0,
        1_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    weight(
        c"popularity_engine.recent_order_penalty",
        c"Score reduction for products the user ordered recently (0.7 = 70 %).",
        c"A product ordered within recent_order_window scores (1 - penalty) times its blend.",
        &RECENT_ORDER_PENALTY,
    );
    duration(
        c"popularity_engine.recent_order_window",
        c"How long after an order the recent-order penalty applies.",
        c"Orders older than this do not reduce a product's recommendation score.",
        &RECENT_ORDER_WINDOW,
        0,
        3650 * DAY,
    );
    GucRegistry::define_int_guc(
        c"popularity_engine.max_per_category",
        c"At most this many recommendations per category.",
        c"Diversity cap applied by recommend().",
        &MAX_PER_CATEGORY,
        1,
        10_000,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// The user-preference and item-similarity refreshes, and how long the raw log is kept.
fn preference_and_retention_settings() {
    duration(
        c"popularity_engine.preference_half_life",
        c"Half-life of an interaction's weight in user category/brand affinity.",
        c"affinity = sum(affinity_weight * 0.5^(age / half_life)) per category and brand.",
        &PREFERENCE_HALF_LIFE,
        3600,
        3650 * DAY,
    );
    GucRegistry::define_int_guc(
        c"popularity_engine.similarity_top_k",
        c"How many similar products refresh_item_similarity keeps per product.",
        c"Top-K neighbours by co-interaction similarity.",
        &SIMILARITY_TOP_K,
        1,
        1000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"popularity_engine.similarity_shrinkage",
        c"Shrinkage of item similarity towards 0 for products few users share.",
        c"similarity = cosine * shared_users / (shared_users + shrinkage).",
        &SIMILARITY_SHRINKAGE,
        0.0,
        10000.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    duration(
        c"popularity_engine.retention",
        c"How long raw interactions are kept by cleanup_interactions().",
        c"Aggregates keep their totals when raw interactions are dropped.",
        &RETENTION,
        DAY,
        24000 * DAY,
    );
}

/// Current `popularity_engine.trending_half_life`, in seconds, for the SQL refresh code (calling
/// it also loads the library, which defines the settings).
#[pgrx::pg_extern(stable, parallel_safe)]
fn trending_half_life_seconds() -> f64 {
    f64::from(TRENDING_HALF_LIFE.get())
}

pgrx::extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.trending_half_life_seconds() IS
  'The popularity_engine.trending_half_life setting in seconds (loads the library, which defines the settings).';"#,
    name = "trending_half_life_seconds_comment",
    requires = [trending_half_life_seconds]
);

/// Current `popularity_engine.trending_window`, in seconds.
#[pgrx::pg_extern(stable, parallel_safe)]
fn trending_window_seconds() -> f64 {
    f64::from(TRENDING_WINDOW.get())
}

pgrx::extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.trending_window_seconds() IS
  'The popularity_engine.trending_window setting in seconds.';"#,
    name = "trending_window_seconds_comment",
    requires = [trending_window_seconds]
);

/// Current `popularity_engine.preference_half_life`, in seconds.
#[pgrx::pg_extern(stable, parallel_safe)]
fn preference_half_life_seconds() -> f64 {
    f64::from(PREFERENCE_HALF_LIFE.get())
}

pgrx::extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.preference_half_life_seconds() IS
  'The popularity_engine.preference_half_life setting in seconds.';"#,
    name = "preference_half_life_seconds_comment",
    requires = [preference_half_life_seconds]
);

/// Current `popularity_engine.retention`, in seconds.
#[pgrx::pg_extern(stable, parallel_safe)]
fn retention_seconds() -> f64 {
    f64::from(RETENTION.get())
}

pgrx::extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.retention_seconds() IS
  'The popularity_engine.retention setting in seconds.';"#,
    name = "retention_seconds_comment",
    requires = [retention_seconds]
);

/// Current `popularity_engine.cold_start_threshold`: users with fewer interactions get the
/// cold-start list. For SQL: reading the setting with current_setting() fails in a session that
/// has not loaded the library yet; calling this loads it.
#[pgrx::pg_extern(stable, parallel_safe)]
fn cold_start_threshold() -> i32 {
    COLD_START_THRESHOLD.get()
}

pgrx::extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.cold_start_threshold() IS
  'The popularity_engine.cold_start_threshold setting: users with fewer interactions get the cold-start list (loads the library, which defines the settings).';"#,
    name = "cold_start_threshold_comment",
    requires = [cold_start_threshold]
);

/// Current `popularity_engine.similarity_top_k`: how many similar products
/// refresh_item_similarity keeps per product.
#[pgrx::pg_extern(stable, parallel_safe)]
fn similarity_top_k() -> i32 {
    SIMILARITY_TOP_K.get()
}

pgrx::extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.similarity_top_k() IS
  'The popularity_engine.similarity_top_k setting: how many similar products refresh_item_similarity keeps per product.';"#,
    name = "similarity_top_k_comment",
    requires = [similarity_top_k]
);
