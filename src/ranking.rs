//! recommend() and rank_products(): the seed's blended ranking, computed in Rust from a handful
//! of indexed lookups. Read-only, so both run in READ ONLY transactions and on hot standbys.
//!
//! score = w_base x base_relevance + w_pers x personalization + w_pop x popularity (GUC weights),
//! each component in [0, 1]:
//! * base_relevance = 0.5 x stock + 0.5 x price_fit, stock = 1 - e^(-inventory / 5) (0.5 when
//!   unknown), price_fit = e^(-|ln(price / user's median price)|) (0.5 without a price band);
//! * personalization = 0.5 x category affinity + 0.3 x brand affinity + 0.2 x similarity, the
//!   affinities divided by the user's strongest one, similarity the best item_similarity score
//!   to one of the user's 20 most recent products;
//! * popularity = ln(1 + popularity_score) / ln(1 + the highest popularity_score).
//!
//! Products ordered within recent_order_window score x (1 - recent_order_penalty); the reported
//! components are before the penalty.

use std::collections::{HashMap, HashSet};

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::gucs;
use crate::spi_util::raise;
use crate::validation::{Rejection, Sqlstate};

/// rank, product_id, score, base_relevance, personalization, popularity, reason
type RankedRow = (i32, i64, f64, f64, f64, f64, String);

/// What the ranking knows about a user.
#[derive(Default)]
struct UserContext {
    interactions: i64,
    category_affinity: HashMap<String, f64>,
    brand_affinity: HashMap<String, f64>,
    recent_products: Vec<i64>,
    median_price: Option<f64>,
    recent_orders: HashSet<i64>,
}

/// Catalog and popularity facts about one candidate product.
#[derive(Clone, Debug)]
struct Product {
    id: i64,
    category: Option<String>,
    brand: Option<String>,
    price: Option<f64>,
    inventory: Option<i32>,
    is_active: bool,
    popularity_score: f64,
    in_catalog: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    Personal,
    Trending,
    Popular,
}

struct Scored {
    product: Product,
    score: f64,
    base: f64,
    personalization: f64,
    popularity: f64,
    reason: String,
}

fn rows<'c>(
    client: &SpiClient<'c>,
    sql: &str,
    args: &[DatumWithOid],
) -> pgrx::spi::SpiTupleTable<'c> {
    client
        .select(sql, None, args)
        .unwrap_or_else(|e| panic!("ranking query failed: {e}"))
}

fn load_user(client: &SpiClient, user_id: i64) -> UserContext {
    // the aggregated count, or the log's rows counted up to the threshold (enough to decide cold start)
    let threshold = i64::from(gucs::COLD_START_THRESHOLD.get());
    let mut ctx = UserContext {
        interactions: rows(
            client,
            "SELECT greatest(
                 coalesce((SELECT interaction_count FROM popularity_engine.user_profiles WHERE user_id = $1), 0),
                 (SELECT count(*) FROM (SELECT 1 FROM popularity_engine.product_interactions
                                         WHERE user_id = $1 AND product_id IS NOT NULL LIMIT $2) AS live))",
            &[user_id.into(), threshold.into()],
        )
        .first()
        .get_one::<i64>()
        .ok()
        .flatten()
        .unwrap_or(0),
        ..Default::default()
    };
    for row in rows(
        client,
        "SELECT dimension, value, affinity FROM popularity_engine.user_preferences
          WHERE user_id = $1 AND affinity > 0",
        &[user_id.into()],
    ) {
        let dimension: String = row.get(1).ok().flatten().unwrap_or_default();
        let value: String = row.get(2).ok().flatten().unwrap_or_default();
        let affinity: f64 = row.get(3).ok().flatten().unwrap_or(0.0);
        match dimension.as_str() {
            "category" => ctx.category_affinity.insert(value, affinity),
            _ => ctx.brand_affinity.insert(value, affinity),
        };
    }
    normalise(&mut ctx.category_affinity);
    normalise(&mut ctx.brand_affinity);
    for row in rows(
        client,
        "SELECT product_id FROM (
             SELECT DISTINCT ON (product_id) product_id, occurred_at
               FROM (SELECT product_id, occurred_at FROM popularity_engine.product_interactions
                      WHERE user_id = $1 AND product_id IS NOT NULL
                      ORDER BY occurred_at DESC LIMIT 100) r
              ORDER BY product_id, occurred_at DESC) d
          ORDER BY occurred_at DESC, product_id LIMIT 20",
        &[user_id.into()],
    ) {
        if let Ok(Some(p)) = row.get::<i64>(1) {
            ctx.recent_products.push(p);
        }
    }
    ctx.median_price = rows(
        client,
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY c.price::float8)
           FROM (SELECT product_id FROM popularity_engine.product_interactions
                  WHERE user_id = $1 AND product_id IS NOT NULL
                  ORDER BY occurred_at DESC LIMIT 100) r
           JOIN popularity_engine.catalog c ON c.product_id = r.product_id
          WHERE c.price > 0",
        &[user_id.into()],
    )
    .first()
    .get_one::<f64>()
    .ok()
    .flatten();
    let window = f64::from(gucs::RECENT_ORDER_WINDOW.get());
    for row in rows(
        client,
        "SELECT DISTINCT product_id FROM popularity_engine.purchase_history
          WHERE user_id = $1 AND purchased_at >= now() - make_interval(secs => $2)",
        &[user_id.into(), window.into()],
    ) {
        if let Ok(Some(p)) = row.get::<i64>(1) {
            ctx.recent_orders.insert(p);
        }
    }
    ctx
}

fn normalise(map: &mut HashMap<String, f64>) {
    let max = map.values().copied().fold(0.0, f64::max);
    if max > 0.0 {
        map.values_mut().for_each(|v| *v /= max);
    }
}

fn ids(client: &SpiClient, sql: &str, args: &[DatumWithOid]) -> Vec<i64> {
    rows(client, sql, args)
        .filter_map(|r| r.get::<i64>(1).ok().flatten())
        .collect()
}

fn load_products(client: &SpiClient, product_ids: &[i64]) -> HashMap<i64, Product> {
    let mut out = HashMap::new();
    for row in rows(
        client,
        "SELECT p.id, c.category, c.brand, c.price::float8, c.inventory, coalesce(c.is_active, true),
                coalesce(s.popularity_score, 0), c.product_id IS NOT NULL
           FROM unnest($1::int8[]) AS p(id)
           LEFT JOIN popularity_engine.catalog c ON c.product_id = p.id
           LEFT JOIN popularity_engine.product_stats s ON s.product_id = p.id",
        &[product_ids.to_vec().into()],
    ) {
        let id: i64 = row.get(1).ok().flatten().expect("id");
        out.insert(
            id,
            Product {
                id,
                category: row.get(2).ok().flatten(),
                brand: row.get(3).ok().flatten(),
                price: row.get(4).ok().flatten(),
                inventory: row.get(5).ok().flatten(),
                is_active: row.get(6).ok().flatten().unwrap_or(true),
                popularity_score: row.get(7).ok().flatten().unwrap_or(0.0),
                in_catalog: row.get(8).ok().flatten().unwrap_or(false),
            },
        );
    }
    out
}

fn max_popularity(client: &SpiClient) -> f64 {
    rows(
        client,
        "SELECT popularity_score FROM popularity_engine.product_stats
          WHERE popularity_score > 0 ORDER BY popularity_score DESC LIMIT 1",
        &[],
    )
    .first()
    .get_one::<f64>()
    .ok()
    .flatten()
    .unwrap_or(0.0)
}

/// Best similarity of each product to one of `recent`: product -> (score, recent product).
fn similarities(client: &SpiClient, recent: &[i64]) -> HashMap<i64, (f64, i64)> {
    let mut best: HashMap<i64, (f64, i64)> = HashMap::new();
    if recent.is_empty() {
        return best;
    }
    for row in rows(
        client,
        "SELECT similar_product_id, product_id, score FROM popularity_engine.item_similarity
          WHERE product_id = ANY ($1::int8[])",
        &[recent.to_vec().into()],
    ) {
        let p: i64 = row.get(1).ok().flatten().expect("similar_product_id");
        let from: i64 = row.get(2).ok().flatten().expect("product_id");
        let score: f64 = row.get(3).ok().flatten().unwrap_or(0.0);
        let entry = best.entry(p).or_insert((score, from));
        if score > entry.0 || (score == entry.0 && from < entry.1) {
            *entry = (score, from);
        }
    }
    best
}

fn base_relevance(p: &Product, ctx: &UserContext) -> f64 {
    let stock = match p.inventory {
        None => 0.5,
        Some(n) => 1.0 - (-(f64::from(n.max(0))) / 5.0).exp(),
    };
    let price_fit = match (p.price, ctx.median_price) {
        (Some(price), Some(median)) if price > 0.0 && median > 0.0 => {
            (-(price / median).ln().abs()).exp()
        }
        _ => 0.5,
    };
    0.5 * stock + 0.5 * price_fit
}

fn score(
    p: &Product,
    ctx: &UserContext,
    sims: &HashMap<i64, (f64, i64)>,
    max_pop: f64,
    relevance: Option<f64>,
    personalised: bool,
    fallback_reason: &str,
) -> Scored {
    let base = relevance.unwrap_or_else(|| base_relevance(p, ctx));
    let popularity = if max_pop > 0.0 {
        (1.0 + p.popularity_score).ln() / (1.0 + max_pop).ln()
    } else {
        0.0
    };
    let mut parts: Vec<(f64, String)> = Vec::new();
    if personalised {
        if let Some(c) = &p.category {
            parts.push((
                0.5 * ctx.category_affinity.get(c).copied().unwrap_or(0.0),
                format!("category:{c}"),
            ));
        }
        if let Some(b) = &p.brand {
            parts.push((
                0.3 * ctx.brand_affinity.get(b).copied().unwrap_or(0.0),
                format!("brand:{b}"),
            ));
        }
        if let Some((s, from)) = sims.get(&p.id) {
            parts.push((0.2 * s, format!("similar_to:{from}")));
        }
    }
    let sum: f64 = parts.iter().map(|(v, _)| v).sum();
    // (the empty sum is -0.0)
    let personalization = if sum > 0.0 { sum.min(1.0) } else { 0.0 };
    let reason = parts
        .iter()
        .filter(|(v, _)| *v > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| fallback_reason.to_string());
    let mut total = gucs::WEIGHT_BASE_RELEVANCE.get() * base
        + gucs::WEIGHT_PERSONALIZATION.get() * personalization
        + gucs::WEIGHT_POPULARITY.get() * popularity;
    if ctx.recent_orders.contains(&p.id) {
        total *= 1.0 - gucs::RECENT_ORDER_PENALTY.get();
    }
    Scored {
        product: p.clone(),
        score: total,
        base,
        personalization,
        popularity,
        reason,
    }
}

fn check_n(function: &'static str, n: Option<i32>) -> usize {
    match n {
        Some(n) if (1..=1000).contains(&n) => n as usize,
        _ => raise(
            function,
            Rejection {
                sqlstate: Sqlstate::InvalidParameterValue,
                message: format!(
                    "n = {} is not allowed: expected 1 to 1000",
                    n.map_or("NULL".into(), |v| v.to_string())
                ),
                hint: None,
            },
        ),
    }
}

fn required_user(function: &'static str, user_id: Option<i64>) -> i64 {
    match user_id {
        Some(u) if u > 0 => u,
        Some(u) => raise(
            function,
            Rejection {
                sqlstate: Sqlstate::InvalidParameterValue,
                message: format!("user_id {u} is not allowed: ids must be positive integers"),
                hint: None,
            },
        ),
        None => raise(
            function,
            Rejection {
                sqlstate: Sqlstate::NotNullViolation,
                message: "user_id is required".into(),
                hint: None,
            },
        ),
    }
}

fn output(rows: Vec<Scored>) -> TableIterator<'static, RankedRow> {
    TableIterator::new(rows.into_iter().enumerate().map(|(i, s)| {
        (
            (i + 1) as i32,
            s.product.id,
            s.score,
            s.base,
            s.personalization,
            s.popularity,
            s.reason,
        )
    }))
}

/// Personalised recommendations for a user, best first.
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn recommend(
    user_id: Option<i64>,
    n: default!(Option<i32>, 20),
    category: default!(Option<&str>, "NULL"),
    exclude: default!(Option<Vec<Option<i64>>>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(rank, i32),
        name!(product_id, i64),
        name!(score, f64),
        name!(base_relevance, f64),
        name!(personalization, f64),
        name!(popularity, f64),
        name!(reason, String),
    ),
> {
    const F: &str = "popularity_engine.recommend";
    let user_id = required_user(F, user_id);
    let n = check_n(F, n);
    let excluded: HashSet<i64> = exclude.unwrap_or_default().into_iter().flatten().collect();
    let per_category = gucs::MAX_PER_CATEGORY.get().max(1) as usize;

    let ranked = Spi::connect(|client| {
        let ctx = load_user(client, user_id);
        let cold = ctx.interactions < i64::from(gucs::COLD_START_THRESHOLD.get());
        let pool = (n * 4).max(50) as i64;
        let cat = || -> DatumWithOid { category.map(str::to_owned).into() };
        let trending = ids(
            client,
            "SELECT s.product_id FROM popularity_engine.product_stats s
               LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
              WHERE s.trend_fwd > 0 AND s.trend_events > 0 AND ($1::text IS NULL OR c.category = $1)
              ORDER BY s.trend_fwd DESC, s.product_id LIMIT $2",
            &[cat(), pool.into()],
        );
        let popular = ids(
            client,
            "SELECT s.product_id FROM popularity_engine.product_stats s
               LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
              WHERE s.popularity_score > 0 AND ($1::text IS NULL OR c.category = $1)
              ORDER BY s.popularity_score DESC, s.product_id LIMIT $2",
            &[cat(), pool.into()],
        );
        let mut sources: Vec<(i64, Source)> = Vec::new();
        let mut sims = HashMap::new();
        if !cold {
            sims = similarities(client, &ctx.recent_products);
            let mut sim_list: Vec<(&i64, &(f64, i64))> = sims.iter().collect();
            sim_list.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then(a.0.cmp(b.0)));
            sources.extend(
                sim_list
                    .into_iter()
                    .take(pool as usize)
                    .map(|(p, _)| (*p, Source::Personal)),
            );
            let mut top = |map: &HashMap<String, f64>, take: usize, sql: &str| {
                let mut best: Vec<(&String, &f64)> = map.iter().collect();
                best.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
                for (value, _) in best.into_iter().take(take) {
                    let found = ids(
                        client,
                        sql,
                        &[
                            value.clone().into(),
                            category.map(str::to_owned).into(),
                            pool.into(),
                        ],
                    );
                    sources.extend(found.into_iter().map(|p| (p, Source::Personal)));
                }
            };
            top(
                &ctx.category_affinity,
                3,
                "SELECT s.product_id FROM popularity_engine.product_stats s
                  WHERE s.category = $1 AND ($2::text IS NULL OR s.category = $2) AND s.popularity_score > 0
                  ORDER BY s.popularity_score DESC, s.product_id LIMIT $3",
            );
            top(
                &ctx.brand_affinity,
                2,
                "SELECT s.product_id FROM popularity_engine.product_stats s
                  WHERE s.brand = $1 AND ($2::text IS NULL OR s.category = $2) AND s.popularity_score > 0
                  ORDER BY s.popularity_score DESC, s.product_id LIMIT $3",
            );
        }
        sources.extend(trending.into_iter().map(|p| (p, Source::Trending)));
        sources.extend(popular.into_iter().map(|p| (p, Source::Popular)));

        // first source wins: personal before trending before popular
        let mut seen = HashSet::new();
        sources.retain(|(p, _)| seen.insert(*p));
        let all: Vec<i64> = sources.iter().map(|(p, _)| *p).collect();
        let products = load_products(client, &all);
        let max_pop = max_popularity(client);

        let mut scored: Vec<(Source, Scored)> = sources
            .iter()
            .filter_map(|(id, source)| products.get(id).map(|p| (*source, p)))
            .filter(|(_, p)| {
                p.in_catalog
                    && p.is_active
                    && p.inventory.is_none_or(|i| i > 0)
                    && !excluded.contains(&p.id)
                    && category.is_none_or(|c| p.category.as_deref() == Some(c))
            })
            .map(|(source, p)| {
                let fallback = match (cold, source) {
                    (true, _) => "cold_start",
                    (false, Source::Trending) => "trending",
                    (false, _) => "popular",
                };
                (
                    source,
                    score(p, &ctx, &sims, max_pop, None, !cold, fallback),
                )
            })
            .collect();
        if cold {
            // the cold-start list: trending first, then popular, each in its own order
            scored.sort_by_key(|(source, _)| (*source != Source::Trending) as u8);
        } else {
            scored.sort_by(|a, b| {
                b.1.score
                    .total_cmp(&a.1.score)
                    .then(a.1.product.id.cmp(&b.1.product.id))
            });
        }
        let mut per_cat: HashMap<Option<String>, usize> = HashMap::new();
        let mut out = Vec::with_capacity(n);
        for (_, s) in scored {
            let used = per_cat.entry(s.product.category.clone()).or_insert(0);
            if *used >= per_category {
                continue;
            }
            *used += 1;
            out.push(s);
            if out.len() == n {
                break;
            }
        }
        out
    });
    output(ranked)
}

/// Re-ranks an application's candidates (e.g. search results) with the same blend; `relevance`,
/// when given, is the base relevance of each candidate.
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rank_products(
    user_id: Option<i64>,
    product_ids: Option<Vec<Option<i64>>>,
    relevance: default!(Option<Vec<Option<f64>>>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(rank, i32),
        name!(product_id, i64),
        name!(score, f64),
        name!(base_relevance, f64),
        name!(personalization, f64),
        name!(popularity, f64),
        name!(reason, String),
    ),
> {
    const F: &str = "popularity_engine.rank_products";
    let user_id = required_user(F, user_id);
    let invalid = |m: String| {
        raise(
            F,
            Rejection {
                sqlstate: Sqlstate::InvalidParameterValue,
                message: m,
                hint: None,
            },
        )
    };
    let Some(product_ids) = product_ids else {
        raise(
            F,
            Rejection {
                sqlstate: Sqlstate::NotNullViolation,
                message: "product_ids is required".into(),
                hint: None,
            },
        )
    };
    if product_ids.len() > 10_000 {
        invalid(format!(
            "product_ids has {} elements; at most 10000 are allowed",
            product_ids.len()
        ));
    }
    let mut candidates = Vec::with_capacity(product_ids.len());
    let mut seen = HashSet::new();
    for (i, p) in product_ids.iter().enumerate() {
        match p {
            Some(p) if *p > 0 => {
                if seen.insert(*p) {
                    candidates.push((i, *p));
                }
            }
            _ => invalid(format!(
                "product_ids[{}] must be a positive product id",
                i + 1
            )),
        }
    }
    if let Some(r) = &relevance {
        if r.len() != product_ids.len() {
            invalid(format!(
                "relevance has {} elements but product_ids has {}: give one relevance per product",
                r.len(),
                product_ids.len()
            ));
        }
        for (i, v) in r.iter().enumerate() {
            if !v.is_some_and(|v| (0.0..=1.0).contains(&v)) {
                invalid(format!("relevance[{}] must be a number from 0 to 1", i + 1));
            }
        }
    }
    let ranked = Spi::connect(|client| {
        let ctx = load_user(client, user_id);
        let cold = ctx.interactions < i64::from(gucs::COLD_START_THRESHOLD.get());
        let sims = if cold {
            HashMap::new()
        } else {
            similarities(client, &ctx.recent_products)
        };
        let ids: Vec<i64> = candidates.iter().map(|c| c.1).collect();
        let products = load_products(client, &ids);
        let max_pop = max_popularity(client);
        let mut scored: Vec<Scored> = candidates
            .iter()
            .map(|(i, id)| {
                let rel = relevance.as_ref().and_then(|r| r[*i]);
                let fallback = if cold {
                    "cold_start"
                } else if rel.is_some() {
                    "relevance"
                } else {
                    "popular"
                };
                score(&products[id], &ctx, &sims, max_pop, rel, !cold, fallback)
            })
            .collect();
        scored.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.product.id.cmp(&b.product.id))
        });
        scored
    });
    output(ranked)
}
