//! What recommend() and rank_products() know about a user: the cold-start decision, category
//! and brand affinities, recent products and their similar products, price band and recent
//! orders, each read with one indexed lookup.

use std::collections::{HashMap, HashSet};

use pgrx::spi::SpiClient;

use crate::error::{EngineError, Required};
use crate::gucs;
use crate::spi_util::{first_value, ids, rows};

/// What the ranking knows about a user. A cold user's affinities, recent products and
/// similarities are not loaded (they are not used).
#[derive(Default)]
pub struct UserContext {
    /// The cold-start decision of SQL's popularity_engine.is_cold_start.
    pub cold: bool,
    /// Category -> affinity, divided by the strongest.
    pub category_affinity: HashMap<String, f64>,
    /// Brand -> affinity, divided by the strongest.
    pub brand_affinity: HashMap<String, f64>,
    /// The user's 20 most recent distinct products, most recent first.
    pub recent_products: Vec<i64>,
    /// Best similarity of each product to one of `recent_products`.
    pub similar: Similarities,
    /// Median price of the user's recent catalogued products.
    pub median_price: Option<f64>,
    /// Products ordered within recent_order_window.
    pub recent_orders: HashSet<i64>,
}

/// Best similarity of each product to one of the user's recent products:
/// product -> (score, recent product).
pub type Similarities = HashMap<i64, (f64, i64)>;

/// Everything the ranking needs to know about `user_id`.
pub fn load_user(client: &SpiClient, user_id: i64) -> Result<UserContext, EngineError> {
    const DECIDING: &str = "deciding cold start";
    let cold = rows(
        client,
        DECIDING,
        "SELECT popularity_engine.is_cold_start($1)",
        &[user_id.into()],
    )?;
    let mut ctx = UserContext {
        cold: first_value::<bool>(cold, DECIDING)?
            .ok_or(EngineError::no_value(DECIDING, "decision"))?,
        median_price: median_price(client, user_id)?,
        recent_orders: recent_orders(client, user_id)?,
        ..Default::default()
    };
    if !ctx.cold {
        load_affinities(client, user_id, &mut ctx)?;
        ctx.recent_products = recent_products(client, user_id)?;
        ctx.similar = similarities(client, &ctx.recent_products)?;
    }
    Ok(ctx)
}

/// The user's category and brand affinities, each divided by the strongest of its kind.
fn load_affinities(
    client: &SpiClient,
    user_id: i64,
    ctx: &mut UserContext,
) -> Result<(), EngineError> {
    const READING: &str = "reading user preferences";
    for row in rows(
        client,
        READING,
        "SELECT dimension, value, affinity FROM popularity_engine.user_preferences
          WHERE user_id = $1 AND affinity > 0",
        &[user_id.into()],
    )? {
        let dimension: String = row.get(1).required(READING, "dimension")?;
        let value: String = row.get(2).required(READING, "value")?;
        let affinity: f64 = row.get(3).required(READING, "affinity")?;
        match dimension.as_str() {
            "category" => ctx.category_affinity.insert(value, affinity),
            _ => ctx.brand_affinity.insert(value, affinity),
        };
    }
    normalise(&mut ctx.category_affinity);
    normalise(&mut ctx.brand_affinity);
    Ok(())
}

/// The user's 20 most recent distinct products, most recent first.
fn recent_products(client: &SpiClient, user_id: i64) -> Result<Vec<i64>, EngineError> {
    ids(
        client,
        "reading the user's recent products",
        "SELECT product_id FROM (
             SELECT DISTINCT ON (product_id) product_id, occurred_at
               FROM (SELECT product_id, occurred_at FROM popularity_engine.product_interactions
                      WHERE user_id = $1 AND product_id IS NOT NULL
                      ORDER BY occurred_at DESC LIMIT 100) r
              ORDER BY product_id, occurred_at DESC) d
          ORDER BY occurred_at DESC, product_id LIMIT 20",
        &[user_id.into()],
    )
}

/// The median price of the catalogued products among the user's last 100 interactions.
fn median_price(client: &SpiClient, user_id: i64) -> Result<Option<f64>, EngineError> {
    const READING: &str = "reading the user's price band";
    let median = rows(
        client,
        READING,
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY c.price::float8)
           FROM (SELECT product_id FROM popularity_engine.product_interactions
                  WHERE user_id = $1 AND product_id IS NOT NULL
                  ORDER BY occurred_at DESC LIMIT 100) r
           JOIN popularity_engine.catalog c ON c.product_id = r.product_id
          WHERE c.price > 0",
        &[user_id.into()],
    )?;
    first_value::<f64>(median, READING)
}

/// Products the user ordered within recent_order_window.
fn recent_orders(client: &SpiClient, user_id: i64) -> Result<HashSet<i64>, EngineError> {
    let window = f64::from(gucs::RECENT_ORDER_WINDOW.get());
    let ordered = ids(
        client,
        "reading the user's recent orders",
        "SELECT DISTINCT product_id FROM popularity_engine.purchase_history
          WHERE user_id = $1 AND purchased_at >= now() - make_interval(secs => $2)",
        &[user_id.into(), window.into()],
    )?;
    Ok(ordered.into_iter().collect())
}

fn normalise(map: &mut HashMap<String, f64>) {
    let max = map.values().copied().fold(0.0, f64::max);
    if max > 0.0 {
        map.values_mut().for_each(|v| *v /= max);
    }
}

/// Best similarity of each product to one of `recent`.
fn similarities(client: &SpiClient, recent: &[i64]) -> Result<Similarities, EngineError> {
    const READING: &str = "reading item_similarity";
    let mut best = Similarities::new();
    if recent.is_empty() {
        return Ok(best);
    }
    for row in rows(
        client,
        READING,
        "SELECT similar_product_id, product_id, score FROM popularity_engine.item_similarity
          WHERE product_id = ANY ($1::int8[])",
        &[recent.to_vec().into()],
    )? {
        let p: i64 = row.get(1).required(READING, "similar_product_id")?;
        let from: i64 = row.get(2).required(READING, "product_id")?;
        let score: f64 = row.get(3).required(READING, "score")?;
        let entry = best.entry(p).or_insert((score, from));
        if score > entry.0 || (score == entry.0 && from < entry.1) {
            *entry = (score, from);
        }
    }
    Ok(best)
}
