//! What recommend() and rank_products() know about a user: the cold-start decision, category
//! and brand affinities, the history and the products similar to it (collaborative filtering,
//! src/collaborative.rs), price band and recent orders, each read with one indexed
//! lookup. The history comes from the log itself, so the newest interactions count at once.

use std::collections::{HashMap, HashSet};

use pgrx::spi::SpiClient;

use crate::collaborative::{collaborative_scores, Collaborative, HistoryProduct};
use crate::error::{EngineError, Required};
use crate::gucs;
use crate::spi_util::{first_value, ids_kept, rows_kept};

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
    /// The user's most recent distinct products (history_length or long_history_length, the
    /// larger, and any seen at the same moment as the last of them), most recent first, each
    /// with how many were seen after it.
    pub history: Vec<HistoryProduct>,
    /// cf of each product similar to the history, and its strongest history product.
    pub collaborative: Collaborative,
    /// The user's price band: the median of ln(price / median price of the category) over the
    /// recent products whose category has a known price level.
    pub price_band: Option<f64>,
    /// Products ordered within recent_order_window.
    pub recent_orders: HashSet<i64>,
}

/// Everything the ranking needs to know about `user_id`.
pub fn load_user(client: &SpiClient, user_id: i64) -> Result<UserContext, EngineError> {
    const DECIDING: &str = "deciding cold start";
    let cold = rows_kept(
        client,
        DECIDING,
        "SELECT popularity_engine.is_cold_start($1)",
        &[user_id.into()],
    )?;
    let mut ctx = UserContext {
        cold: first_value::<bool>(cold, DECIDING)?
            .ok_or(EngineError::no_value(DECIDING, "decision"))?,
        price_band: price_band(client, user_id)?,
        recent_orders: recent_orders(client, user_id)?,
        ..Default::default()
    };
    if !ctx.cold {
        load_affinities(client, user_id, &mut ctx)?;
        let weights = gucs::history_weights();
        ctx.history = history(client, user_id, weights.products_read())?;
        let products: Vec<i64> = ctx.history.iter().map(|entry| entry.product).collect();
        let rows = similarity_rows(client, &products)?;
        ctx.collaborative = collaborative_scores(&ctx.history, weights, &rows);
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
    for row in rows_kept(
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

/// The user's `length` most recent distinct products and any seen at the same moment as the last
/// of them (a basket is read whole), most recent first (ties by id), each with the number of the
/// user's products last seen strictly after it (rank() - 1), so that the products of one moment
/// share their recency. Only the user's last 4 x `length` log rows are read, which bounds the
/// work; a basket that straddles that bound is read in part.
fn history(
    client: &SpiClient,
    user_id: i64,
    length: usize,
) -> Result<Vec<HistoryProduct>, EngineError> {
    const READING: &str = "reading the user's recent products";
    let length = i64::try_from(length).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for row in rows_kept(
        client,
        READING,
        "SELECT product_id, later FROM (
             SELECT product_id, rank() OVER (ORDER BY last_at DESC) - 1 AS later
               FROM (SELECT product_id, max(occurred_at) AS last_at
                       FROM (SELECT product_id, occurred_at FROM popularity_engine.product_interactions
                              WHERE user_id = $1 AND product_id IS NOT NULL
                              ORDER BY occurred_at DESC LIMIT $2 * 4) r
                      GROUP BY product_id) d
              ORDER BY last_at DESC FETCH FIRST $2 ROWS WITH TIES) h
          ORDER BY later, product_id",
        &[user_id.into(), length.into()],
    )? {
        let later: i64 = row.get(2).required(READING, "later")?;
        out.push(HistoryProduct {
            product: row.get(1).required(READING, "product_id")?,
            later: usize::try_from(later).unwrap_or(usize::MAX),
        });
    }
    Ok(out)
}

/// The user's price band over their last 100 interactions (see UserContext::price_band).
fn price_band(client: &SpiClient, user_id: i64) -> Result<Option<f64>, EngineError> {
    const READING: &str = "reading the user's price band";
    let median = rows_kept(
        client,
        READING,
        "SELECT percentile_cont(0.5) WITHIN GROUP (
                    ORDER BY popularity_engine.relative_price(c.price, cp.median_price))
           FROM (SELECT product_id FROM popularity_engine.product_interactions
                  WHERE user_id = $1 AND product_id IS NOT NULL
                  ORDER BY occurred_at DESC LIMIT 100) r
           JOIN popularity_engine.catalog c ON c.product_id = r.product_id
           JOIN popularity_engine.category_prices cp ON cp.category = c.category
          WHERE popularity_engine.relative_price(c.price, cp.median_price) IS NOT NULL",
        &[user_id.into()],
    )?;
    first_value::<f64>(median, READING)
}

/// Products the user ordered within recent_order_window.
fn recent_orders(client: &SpiClient, user_id: i64) -> Result<HashSet<i64>, EngineError> {
    let window = f64::from(gucs::RECENT_ORDER_WINDOW.get());
    let ordered = ids_kept(
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

/// The item_similarity rows (product, similar product, score) of the history's products.
fn similarity_rows(
    client: &SpiClient,
    history: &[i64],
) -> Result<Vec<(i64, i64, f64)>, EngineError> {
    const READING: &str = "reading item_similarity";
    let mut out = Vec::new();
    if history.is_empty() {
        return Ok(out);
    }
    for row in rows_kept(
        client,
        READING,
        "SELECT product_id, similar_product_id, score FROM popularity_engine.item_similarity
          WHERE product_id = ANY ($1::int8[])",
        &[history.to_vec().into()],
    )? {
        out.push((
            row.get(1).required(READING, "product_id")?,
            row.get(2).required(READING, "similar_product_id")?,
            row.get(3).required(READING, "score")?,
        ));
    }
    Ok(out)
}
