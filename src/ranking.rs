//! recommend() and rank_products(): the blended ranking, computed in Rust from a handful of
//! indexed lookups. Read-only, so both run in READ ONLY transactions and on hot standbys.
//!
//! score = w_base x base_relevance + w_pers x personalization + w_pop x popularity (GUC weights),
//! each component in [0, 1]:
//! * base_relevance = 0.5 x stock + 0.5 x price_fit, stock = 1 - e^(-inventory / 5) (0.5 when
//!   unknown), price_fit = e^(-|r - the user's price band| / 4) with r = ln(price / the median price
//!   of the product's category) and the band the median r of the user's recent products, so that
//!   a taste for the cheap or the premium end carries across categories (0.5 without a band);
//! * personalization = (w_sim x cf + w_cat x category affinity + w_brand x brand affinity)
//!   / (w_sim + w_cat + w_brand), cf the item-to-item similarity summed over the user's recent
//!   products (recency-weighted) and over their whole history, each part as a share of the
//!   user's best, blended and square-rooted (src/collaborative.rs);
//! * popularity = ln(1 + popularity_score) / ln(1 + the highest popularity_score).
//!
//! Products ordered within recent_order_window score x (1 - recent_order_penalty); the reported
//! components are before the penalty. Cold-start users (decided by the SQL function
//! popularity_engine.is_cold_start, the one rule) get no personalization: the cold-start list.

use std::collections::{HashMap, HashSet};

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::collaborative::personal_components;
use crate::error::{During, EngineError, OrReport, Required};
use crate::gucs;
use crate::spi_util::{first_value, ids, ids_kept, rows_kept};
use crate::user_context::{load_user, UserContext};
use crate::validation::{check_limit, check_user};

/// rank, product_id, score, base_relevance, personalization, popularity, reason
type RankedRow = (i32, i64, f64, f64, f64, f64, String);

/// Largest `n` of recommend().
const MAX_N: i32 = 1000;
/// Largest candidate list of rank_products().
const MAX_CANDIDATES: usize = 10_000;
/// recommend() considers at least this many of the products most similar to the history. 100,
/// and 2n per other source, measured as good as 200 and 4n on every data set of
/// bench/QUALITY.md, at two thirds of the cached call's time (bench/PROFILE.md): each candidate
/// costs an index lookup in catalog and one in product_stats.
const COLLABORATIVE_CANDIDATES: usize = 100;

/// Catalog and popularity facts about one candidate product.
#[derive(Clone, Debug)]
struct Product {
    id: i64,
    category: Option<String>,
    brand: Option<String>,
    /// ln(price / median price of the product's category), when both are known.
    relative_price: Option<f64>,
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

fn load_products(
    client: &SpiClient,
    product_ids: &[i64],
) -> Result<HashMap<i64, Product>, EngineError> {
    const READING: &str = "reading the candidate products";
    let mut out = HashMap::new();
    for row in rows_kept(
        client,
        READING,
        "SELECT p.id, c.category, c.brand, popularity_engine.relative_price(c.price, cp.median_price),
                c.inventory, coalesce(c.is_active, true), coalesce(s.popularity_score, 0),
                c.product_id IS NOT NULL
           FROM unnest($1::int8[]) AS p(id)
           LEFT JOIN popularity_engine.catalog c ON c.product_id = p.id
           LEFT JOIN popularity_engine.category_prices cp ON cp.category = c.category
           LEFT JOIN popularity_engine.product_stats s ON s.product_id = p.id",
        &[product_ids.to_vec().into()],
    )? {
        let id: i64 = row.get(1).required(READING, "id")?;
        let product = Product {
            id,
            category: row.get(2).during(READING)?,
            brand: row.get(3).during(READING)?,
            relative_price: row.get(4).during(READING)?,
            inventory: row.get(5).during(READING)?,
            is_active: row.get(6).required(READING, "is_active")?,
            popularity_score: row.get(7).required(READING, "popularity_score")?,
            in_catalog: row.get(8).required(READING, "in_catalog")?,
        };
        out.insert(id, product);
    }
    Ok(out)
}

fn max_popularity(client: &SpiClient) -> Result<f64, EngineError> {
    const READING: &str = "reading the highest popularity_score";
    let top = rows_kept(
        client,
        READING,
        "SELECT popularity_score FROM popularity_engine.product_stats
          WHERE popularity_score > 0 ORDER BY popularity_score DESC LIMIT 1",
        &[],
    )?;
    Ok(first_value::<f64>(top, READING)?.unwrap_or(0.0))
}

/// How far, in ln(price) from the user's price band, the price fit falls to 1/e. Wide, because
/// a band read off a few products is a weak signal: a narrow fit (1) let price outweigh
/// collaborative filtering and lost 5 to 10 % of HR@10 on the generated shop, the only evaluated
/// data with both prices and categories (bench/QUALITY.md).
const PRICE_FIT_WIDTH: f64 = 4.0;

/// base_relevance = 0.5 x stock + 0.5 x price_fit (see the module comment).
fn base_relevance(p: &Product, price_band: Option<f64>) -> f64 {
    let stock = match p.inventory {
        None => 0.5,
        Some(n) => 1.0 - (-(f64::from(n.max(0))) / 5.0).exp(),
    };
    let price_fit = match (p.relative_price, price_band) {
        (Some(relative), Some(band)) => (-(relative - band).abs() / PRICE_FIT_WIDTH).exp(),
        _ => 0.5,
    };
    0.5 * stock + 0.5 * price_fit
}

/// What scoring a product needs to know besides the product.
struct Ranker<'a> {
    ctx: &'a UserContext,
    /// The highest popularity_score of all products.
    max_pop: f64,
}

impl Ranker<'_> {
    /// The blended score of `p`; `relevance` replaces the computed base relevance, and
    /// `fallback_reason` is the reason when no personal component contributes.
    fn score(&self, p: &Product, relevance: Option<f64>, fallback_reason: &str) -> Scored {
        let ctx = self.ctx;
        let base = relevance.unwrap_or_else(|| base_relevance(p, ctx.price_band));
        let popularity = if self.max_pop > 0.0 {
            (1.0 + p.popularity_score).ln() / (1.0 + self.max_pop).ln()
        } else {
            0.0
        };
        let parts = if ctx.cold {
            Vec::new()
        } else {
            self.personal_parts(p)
        };
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

    /// The personal components of `p` (src/collaborative.rs) with the reason each one gives.
    fn personal_parts(&self, p: &Product) -> Vec<(f64, String)> {
        let ctx = self.ctx;
        let (cf, from) = ctx.collaborative.get(&p.id).copied().unwrap_or((0.0, 0));
        let affinity = |map: &HashMap<String, f64>, key: &Option<String>| {
            key.as_ref()
                .and_then(|k| map.get(k))
                .copied()
                .unwrap_or(0.0)
        };
        let [similarity, category, brand] = personal_components(
            cf,
            affinity(&ctx.category_affinity, &p.category),
            affinity(&ctx.brand_affinity, &p.brand),
            gucs::personal_weights(),
        );
        let mut parts = vec![(similarity, format!("similar_to:{from}"))];
        if let Some(c) = &p.category {
            parts.push((category, format!("category:{c}")));
        }
        if let Some(b) = &p.brand {
            parts.push((brand, format!("brand:{b}")));
        }
        parts
    }
}

/// Best first, ties by product id.
fn by_score(a: &Scored, b: &Scored) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.product.id.cmp(&b.product.id))
}

/// The `n` of recommend(), checked like every other `n`.
fn check_n(n: Option<i32>) -> Result<usize, EngineError> {
    check_limit(n, MAX_N).map(|n| n as usize)
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

const TOP_IN_CATEGORY: &str = "SELECT s.product_id FROM popularity_engine.product_stats s
  WHERE s.category = $1 AND ($2::text IS NULL OR s.category = $2) AND s.popularity_score > 0
  ORDER BY s.popularity_score DESC, s.product_id LIMIT $3";
const TOP_OF_BRAND: &str = "SELECT s.product_id FROM popularity_engine.product_stats s
  WHERE s.brand = $1 AND ($2::text IS NULL OR s.category = $2) AND s.popularity_score > 0
  ORDER BY s.popularity_score DESC, s.product_id LIMIT $3";
const TRENDING: &str = "SELECT s.product_id FROM popularity_engine.product_stats s
   LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
  WHERE s.trend_fwd > 0 AND s.trend_events > 0 AND ($1::text IS NULL OR c.category = $1)
  ORDER BY s.trend_fwd DESC, s.product_id LIMIT $2";
const POPULAR: &str = "SELECT s.product_id FROM popularity_engine.product_stats s
   LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
  WHERE s.popularity_score > 0 AND ($1::text IS NULL OR c.category = $1)
  ORDER BY s.popularity_score DESC, s.product_id LIMIT $2";

/// The candidate sources of recommend(), each product with the source that found it first:
/// personal (the products most similar to the user's history, the top products of the user's 3
/// strongest categories and 2 strongest brands; not for a cold user), then trending, then popular
/// (for a warm user only when the personal ones are fewer than `pool`, a category is asked or
/// `fill` says that a first draw fell short). At most `pool` products per source query.
fn candidate_sources(
    client: &SpiClient,
    ranker: &Ranker,
    category: Option<&str>,
    pool: i64,
    fill: bool,
) -> Result<Vec<(i64, Source)>, EngineError> {
    let ctx = ranker.ctx;
    let cat = || -> DatumWithOid { category.map(str::to_owned).into() };
    let mut sources: Vec<(i64, Source)> = Vec::new();
    if !ctx.cold {
        let mut similar: Vec<(&i64, &(f64, i64))> = ctx.collaborative.iter().collect();
        similar.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then(a.0.cmp(b.0)));
        sources.extend(
            similar
                .into_iter()
                .take(COLLABORATIVE_CANDIDATES.max(pool as usize))
                .map(|(p, _)| (*p, Source::Personal)),
        );
        for (affinity, take, sql) in [
            (&ctx.category_affinity, 3, TOP_IN_CATEGORY),
            (&ctx.brand_affinity, 2, TOP_OF_BRAND),
        ] {
            let mut best: Vec<(&String, &f64)> = affinity.iter().collect();
            best.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
            for (value, _) in best.into_iter().take(take) {
                let args = [value.clone().into(), cat(), pool.into()];
                let found = ids_kept(client, "reading the user's top products", sql, &args)?;
                sources.extend(found.into_iter().map(|p| (p, Source::Personal)));
            }
        }
    }
    let mut seen = HashSet::new();
    sources.retain(|(p, _)| seen.insert(*p));
    // A warm user's list comes from their own signals; trending and popular products fill it
    // when those are too few (or may miss the requested category).
    if ctx.cold || category.is_some() || fill || sources.len() < pool as usize {
        // first source wins: personal before trending before popular
        for (doing, sql, source) in [
            ("reading trending products", TRENDING, Source::Trending),
            ("reading popular products", POPULAR, Source::Popular),
        ] {
            for p in ids(client, doing, sql, &[cat(), pool.into()])? {
                if seen.insert(p) {
                    sources.push((p, source));
                }
            }
        }
    }
    Ok(sources)
}

/// Whether recommend() may show `p`: catalogued, active, in stock (or stock unknown), not
/// excluded and in the requested category.
fn recommendable(p: &Product, excluded: &HashSet<i64>, category: Option<&str>) -> bool {
    p.in_catalog
        && p.is_active
        && p.inventory.is_none_or(|i| i > 0)
        && !excluded.contains(&p.id)
        && category.is_none_or(|c| p.category.as_deref() == Some(c))
}

/// Scores the recommendable candidates and orders them: by score, or for a cold user the
/// cold-start list (trending first, then popular, each in its own order).
fn score_candidates(
    ranker: &Ranker,
    sources: &[(i64, Source)],
    products: &HashMap<i64, Product>,
    excluded: &HashSet<i64>,
    category: Option<&str>,
) -> Vec<Scored> {
    let cold = ranker.ctx.cold;
    let mut scored: Vec<(Source, Scored)> = sources
        .iter()
        .filter_map(|(id, source)| products.get(id).map(|p| (*source, p)))
        .filter(|(_, p)| recommendable(p, excluded, category))
        .map(|(source, p)| {
            let fallback = match (cold, source) {
                (true, _) => "cold_start",
                (false, Source::Trending) => "trending",
                (false, _) => "popular",
            };
            (source, ranker.score(p, None, fallback))
        })
        .collect();
    if cold {
        scored.sort_by_key(|(source, _)| (*source != Source::Trending) as u8);
    } else {
        scored.sort_by(|a, b| by_score(&a.1, &b.1));
    }
    scored.into_iter().map(|(_, s)| s).collect()
}

/// The first `n` of `scored` with at most `per_category` per category. Products without a
/// category are not capped: they share no category to diversify, and counting them as one would
/// cut the list of a shop without categories to `per_category` products.
fn diversify(scored: Vec<Scored>, n: usize, per_category: usize) -> Vec<Scored> {
    let mut per_cat: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(n);
    for s in scored {
        if let Some(category) = &s.product.category {
            let used = per_cat.entry(category.clone()).or_insert(0);
            if *used >= per_category {
                continue;
            }
            *used += 1;
        }
        out.push(s);
        if out.len() == n {
            break;
        }
    }
    out
}

/// Personalised recommendations for user_id: score = w_base x base_relevance + w_pers x
/// personalization + w_pop x popularity, x (1 - recent_order_penalty) for recent orders, at most
/// max_per_category per category, never out-of-stock, inactive, uncatalogued or excluded
/// products. Users with fewer than cold_start_threshold interactions get the cold-start list
/// (trending, then popular). Read-only.
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
    output(recommendations(user_id, n, category, exclude).or_report("popularity_engine.recommend"))
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.recommend(bigint, integer, text, bigint[]) IS
  'Personalised recommendations for user_id: score = w_base x base_relevance + w_pers x personalization + w_pop x popularity, x (1 - recent_order_penalty) for recent orders, at most max_per_category per category, never out-of-stock, inactive, uncatalogued or excluded products. Users with fewer than cold_start_threshold interactions get the cold-start list (trending, then popular). Read-only.';"#,
    name = "recommend_comment",
    requires = [recommend]
);

fn recommendations(
    user_id: Option<i64>,
    n: Option<i32>,
    category: Option<&str>,
    exclude: Option<Vec<Option<i64>>>,
) -> Result<Vec<Scored>, EngineError> {
    let user_id = check_user(user_id)?;
    let n = check_n(n)?;
    let excluded: HashSet<i64> = exclude.unwrap_or_default().into_iter().flatten().collect();
    let per_category = gucs::MAX_PER_CATEGORY.get().max(1) as usize;
    Spi::connect(|client| {
        let ctx = load_user(client, user_id)?;
        let ranker = Ranker {
            ctx: &ctx,
            max_pop: max_popularity(client)?,
        };
        let draw = |pool: usize, fill: bool| -> Result<(Vec<Scored>, usize), EngineError> {
            let sources = candidate_sources(client, &ranker, category, pool as i64, fill)?;
            let all: Vec<i64> = sources.iter().map(|(p, _)| *p).collect();
            let products = load_products(client, &all)?;
            let scored = score_candidates(&ranker, &sources, &products, &excluded, category);
            Ok((diversify(scored, n, per_category), all.len()))
        };
        // A list of one category holds at most max_per_category products, whatever the pool.
        let reachable = if category.is_some() {
            n.min(per_category)
        } else {
            n
        };
        let pool = (n * 2).max(25);
        let (picked, drawn) = draw(pool, false)?;
        if picked.len() >= reachable || drawn < pool {
            return Ok(picked);
        }
        // Short (stock-outs, exclusions, the cap per category): once more from four times the
        // pool, trending and popular included. Once only: a list the cap keeps short (a shop with
        // few categories) must not read ever more of the catalog.
        Ok(draw(pool * 4, true)?.0)
    })
}

/// Re-ranks an application's candidates (e.g. search results) for user_id with the recommend()
/// blend; `relevance`, when given, is each candidate's base relevance. Returns every candidate
/// once. Read-only.
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
    output(ranking(user_id, product_ids, relevance).or_report("popularity_engine.rank_products"))
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.rank_products(bigint, bigint[], double precision[]) IS
  'Re-ranks an application''s candidates (e.g. search results) for user_id with the recommend() blend; relevance, when given, is each candidate''s base relevance. Returns every candidate once. Read-only.';"#,
    name = "rank_products_comment",
    requires = [rank_products]
);

fn ranking(
    user_id: Option<i64>,
    product_ids: Option<Vec<Option<i64>>>,
    relevance: Option<Vec<Option<f64>>>,
) -> Result<Vec<Scored>, EngineError> {
    const READING: &str = "reading the candidate products";
    let user_id = check_user(user_id)?;
    let candidates = checked_candidates(product_ids, relevance)?;
    Spi::connect(|client| {
        let ctx = load_user(client, user_id)?;
        let candidate_ids: Vec<i64> = candidates.iter().map(|c| c.0).collect();
        let products = load_products(client, &candidate_ids)?;
        let ranker = Ranker {
            ctx: &ctx,
            max_pop: max_popularity(client)?,
        };
        let mut scored = candidates
            .iter()
            .map(|(id, rel)| {
                let p = products
                    .get(id)
                    .ok_or(EngineError::no_value(READING, "product"))?;
                let fallback = match (ctx.cold, rel) {
                    (true, _) => "cold_start",
                    (false, Some(_)) => "relevance",
                    (false, None) => "popular",
                };
                Ok(ranker.score(p, *rel, fallback))
            })
            .collect::<Result<Vec<Scored>, EngineError>>()?;
        scored.sort_by(by_score);
        Ok(scored)
    })
}

/// rank_products()' candidates, each once (its first position decides its relevance), with
/// their relevance if given.
fn checked_candidates(
    product_ids: Option<Vec<Option<i64>>>,
    relevance: Option<Vec<Option<f64>>>,
) -> Result<Vec<(i64, Option<f64>)>, EngineError> {
    let Some(product_ids) = product_ids else {
        return Err(EngineError::missing("product_ids is required"));
    };
    if product_ids.len() > MAX_CANDIDATES {
        return Err(EngineError::invalid(format!(
            "product_ids has {} elements; at most {MAX_CANDIDATES} are allowed",
            product_ids.len()
        )));
    }
    let mut firsts = Vec::with_capacity(product_ids.len());
    let mut seen = HashSet::new();
    for (i, p) in product_ids.iter().enumerate() {
        match p {
            Some(p) if *p > 0 => {
                if seen.insert(*p) {
                    firsts.push((i, *p));
                }
            }
            _ => {
                return Err(EngineError::invalid(format!(
                    "product_ids[{}] must be a positive product id",
                    i + 1
                )))
            }
        }
    }
    if let Some(r) = &relevance {
        if r.len() != product_ids.len() {
            return Err(EngineError::invalid(format!(
                "relevance has {} elements but product_ids has {}: give one relevance per product",
                r.len(),
                product_ids.len()
            )));
        }
        if let Some(i) = r
            .iter()
            .position(|v| !v.is_some_and(|v| (0.0..=1.0).contains(&v)))
        {
            return Err(EngineError::invalid(format!(
                "relevance[{}] must be a number from 0 to 1",
                i + 1
            )));
        }
    }
    let relevance_at = |i: usize| relevance.as_ref().and_then(|r| r.get(i).copied().flatten());
    Ok(firsts
        .into_iter()
        .map(|(i, p)| (p, relevance_at(i)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<Vec<(i64, Option<f64>)>, EngineError>) -> String {
        r.unwrap_err().message("popularity_engine.rank_products")
    }

    #[test]
    fn candidates_are_checked_in_order_and_kept_once() {
        assert_eq!(
            checked_candidates(None, None),
            Err(EngineError::missing("product_ids is required"))
        );
        assert_eq!(
            message(checked_candidates(Some(vec![Some(1), Some(2)]), Some(vec![Some(0.5)]))),
            "popularity_engine.rank_products: relevance has 1 elements but product_ids has 2: give one relevance per product"
        );
        assert_eq!(
            message(checked_candidates(
                Some(vec![Some(1)]),
                Some(vec![Some(1.5)])
            )),
            "popularity_engine.rank_products: relevance[1] must be a number from 0 to 1"
        );
        assert_eq!(
            message(checked_candidates(
                Some(vec![Some(1), Some(0)]),
                Some(vec![Some(9.0)])
            )),
            "popularity_engine.rank_products: product_ids[2] must be a positive product id"
        );
        // a repeated product keeps its first position's relevance
        assert_eq!(
            checked_candidates(
                Some(vec![Some(7), Some(3), Some(7)]),
                Some(vec![Some(0.1), None, Some(0.9)])
            )
            .map(|_| ()),
            Err(EngineError::invalid(
                "relevance[2] must be a number from 0 to 1"
            ))
        );
        assert_eq!(
            checked_candidates(
                Some(vec![Some(7), Some(3), Some(7)]),
                Some(vec![Some(0.1), Some(0.2), Some(0.9)])
            ),
            Ok(vec![(7, Some(0.1)), (3, Some(0.2))])
        );
        assert_eq!(
            check_n(Some(1001))
                .unwrap_err()
                .message("popularity_engine.recommend"),
            "popularity_engine.recommend: n = 1001 is not allowed: expected 1 to 1000"
        );
    }

    fn product(id: i64, category: Option<&str>) -> Product {
        Product {
            id,
            category: category.map(str::to_owned),
            brand: None,
            relative_price: None,
            inventory: None,
            is_active: true,
            popularity_score: 0.0,
            in_catalog: true,
        }
    }

    #[test]
    fn base_relevance_from_stock_and_price_fit() {
        let priced = |inventory, relative_price| Product {
            inventory,
            relative_price,
            ..product(1, Some("a"))
        };
        // unknown stock and no band: 0.5 x 0.5 + 0.5 x 0.5
        assert_eq!(base_relevance(&priced(None, Some(0.3)), None), 0.5);
        // inventory 5: stock 1 - e^-1 = 0.632121; on the band: price fit 1
        let on_band = base_relevance(&priced(Some(5), Some(0.3)), Some(0.3));
        assert!((on_band - 0.816_060_279_414_278_6).abs() < 1e-15);
        // ln(2) above the band: price fit e^(-0.693147 / 4) = 0.840896 (2^-0.25)
        let double = base_relevance(&priced(Some(5), Some(0.3 + 2f64.ln())), Some(0.3));
        assert!((double - (0.5 * (1.0 - (-1f64).exp()) + 0.5 * 0.5f64.powf(0.25))).abs() < 1e-15);
        assert!((0.5f64.powf(0.25) - 0.840_896_415_253_714_5).abs() < 1e-15);
        // out of stock, same distance below the band
        let below = base_relevance(&priced(Some(0), Some(0.3 - 2f64.ln())), Some(0.3));
        assert!((below - 0.420_448_207_626_857_25).abs() < 1e-15);
    }

    #[test]
    fn diversity_cap_counts_per_category() {
        let product = |id, category: Option<&str>| Scored {
            product: product(id, category),
            score: 0.0,
            base: 0.0,
            personalization: 0.0,
            popularity: 0.0,
            reason: String::new(),
        };
        let scored = vec![
            product(1, Some("a")),
            product(2, Some("a")),
            product(3, None),
            product(4, Some("b")),
            product(5, None),
            product(6, Some("b")),
            product(7, None),
        ];
        // one per category; products without a category are not capped
        let kept: Vec<i64> = diversify(scored, 4, 1)
            .iter()
            .map(|s| s.product.id)
            .collect();
        assert_eq!(kept, vec![1, 3, 4, 5]);
    }
}
