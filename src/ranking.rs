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

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::candidates::{candidate_sources, Candidate, Source};
use crate::collaborative::personal_components;
use crate::error::{During, EngineError, OrReport, Required};
use crate::gucs;
use crate::spi_util::{first_value, rows_kept};
use crate::user_context::{load_user, UserContext};
use crate::validation::{check_limit, check_user};

/// rank, product_id, score, base_relevance, personalization, popularity, reason
type RankedRow = (i32, i64, f64, f64, f64, f64, String);

/// Largest `n` of recommend().
const MAX_N: i32 = 1000;
/// Largest candidate list of rank_products().
const MAX_CANDIDATES: usize = 10_000;
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

#[derive(Clone)]
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

/// score = w_base x base_relevance + w_pers x personalization + w_pop x popularity, before the
/// recent-order penalty.
fn blend(base: f64, personalization: f64, popularity: f64) -> f64 {
    gucs::WEIGHT_BASE_RELEVANCE.get() * base
        + gucs::WEIGHT_PERSONALIZATION.get() * personalization
        + gucs::WEIGHT_POPULARITY.get() * popularity
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
        let popularity = self.popularity(p.popularity_score);
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
        let mut total = blend(base, personalization, popularity);
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

    /// popularity = ln(1 + popularity_score) / ln(1 + the highest popularity_score), at most 1
    /// (a statement of a transaction that has written sees the refreshes committed since the
    /// highest score was read).
    fn popularity(&self, popularity_score: f64) -> f64 {
        if self.max_pop > 0.0 {
            ((1.0 + popularity_score).ln() / (1.0 + self.max_pop).ln()).min(1.0)
        } else {
            0.0
        }
    }

    /// The highest score `c` can reach whatever its catalog facts: base relevance and both
    /// affinities at their maximum of 1, and popularity at 1 unless its popularity_score is
    /// known. Every part of the blend grows with each of its inputs and the recent-order penalty
    /// only lowers a score, so no product scores above its bound.
    fn score_bound(&self, c: &Candidate) -> f64 {
        let cf = self
            .ctx
            .collaborative
            .get(&c.id)
            .map_or(0.0, |entry| entry.0);
        let parts = personal_components(cf, 1.0, 1.0, gucs::personal_weights());
        let personalization = parts.iter().sum::<f64>().min(1.0);
        let popularity = c.popularity_score.map_or(1.0, |s| self.popularity(s));
        blend(1.0, personalization, popularity)
    }

    /// `p` scored as candidate `c`: with the popularity_score its source read, the one its bound
    /// was made of (the same as `p`'s, unless the caller's transaction has written: then each
    /// statement has a snapshot of its own); the reason when no personal component contributes
    /// names the cold start or the source.
    fn score_candidate(&self, p: &Product, c: &Candidate) -> Scored {
        let fallback = match (self.ctx.cold, c.source) {
            (true, _) => "cold_start",
            (false, Source::Trending) => "trending",
            (false, _) => "popular",
        };
        match c.popularity_score {
            Some(popularity_score) if popularity_score != p.popularity_score => {
                let read = Product {
                    popularity_score,
                    ..p.clone()
                };
                self.score(&read, None, fallback)
            }
            _ => self.score(p, None, fallback),
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

/// Whether recommend() may show `p`: catalogued, active, in stock (or stock unknown), not
/// excluded and in the requested category.
fn recommendable(p: &Product, excluded: &HashSet<i64>, category: Option<&str>) -> bool {
    p.in_catalog
        && p.is_active
        && p.inventory.is_none_or(|i| i > 0)
        && !excluded.contains(&p.id)
        && category.is_none_or(|c| p.category.as_deref() == Some(c))
}

/// 2n, at least 25: how many products each candidate source draws, and how many candidates are
/// looked up at a time (a statement each; at full scale a list of 20 took three, bench/PROFILE.md).
fn draw_size(n: usize) -> usize {
    (2 * n).max(25)
}

/// What a recommend() list must be.
struct ListRules<'a> {
    n: usize,
    per_category: usize,
    /// How many products the list can hold at most: n, or min(n, max_per_category) for a
    /// category's list.
    reachable: usize,
    excluded: &'a HashSet<i64>,
    category: Option<&'a str>,
}

impl ListRules<'_> {
    fn diversify(&self, scored: Vec<Scored>) -> Vec<Scored> {
        diversify(scored, self.n, self.per_category)
    }
}

/// A cold user's list: every candidate read, trending first, then popular, each in its own order.
fn cold_start_list(
    client: &SpiClient,
    ranker: &Ranker,
    candidates: &[Candidate],
    rules: &ListRules,
) -> Result<Vec<Scored>, EngineError> {
    let mut scored = score_recommendable(client, ranker, candidates.iter(), rules)?;
    scored.sort_by_key(|(source, _)| (*source != Source::Trending) as u8);
    Ok(rules.diversify(scored.into_iter().map(|(_, s)| s).collect()))
}

/// Looks `candidates` up (one statement) and scores those recommend() may show, each with the
/// source that found it.
fn score_recommendable<'c>(
    client: &SpiClient,
    ranker: &Ranker,
    candidates: impl Iterator<Item = &'c Candidate> + Clone,
    rules: &ListRules,
) -> Result<Vec<(Source, Scored)>, EngineError> {
    let ids: Vec<i64> = candidates.clone().map(|c| c.id).collect();
    let products = load_products(client, &ids)?;
    Ok(candidates
        .filter_map(|c| products.get(&c.id).map(|p| (c, p)))
        .filter(|(_, p)| recommendable(p, rules.excluded, rules.category))
        .map(|(c, p)| (c.source, ranker.score_candidate(p, c)))
        .collect())
}

/// A warm user's list, by score. The candidates are read best bound first, a batch at a time,
/// until the list is decided: it is full (`reachable` products) and its last product scores
/// above the bound of every candidate not read yet, which can then change neither the order
/// nor the cap per category of what comes before it. So the list is the one that scoring every
/// candidate gives, while the products of the category, brand and popular sources whose
/// popularity cannot lift them into it are never looked up. A list that stays short (the cap
/// per category, stock-outs, exclusions) looks every candidate up.
fn list_by_score(
    client: &SpiClient,
    ranker: &Ranker,
    candidates: &[Candidate],
    rules: &ListRules,
) -> Result<Vec<Scored>, EngineError> {
    let mut by_bound: Vec<(f64, &Candidate)> = candidates
        .iter()
        .map(|c| (ranker.score_bound(c), c))
        .collect();
    by_bound.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    let batch = draw_size(rules.n);
    let mut scored: Vec<Scored> = Vec::new();
    let mut picked = Vec::new();
    for (i, chunk) in by_bound.chunks(batch).enumerate() {
        let batch_scored =
            score_recommendable(client, ranker, chunk.iter().map(|(_, c)| *c), rules)?;
        scored.extend(batch_scored.into_iter().map(|(_, s)| s));
        scored.sort_by(by_score);
        picked = rules.diversify(scored.clone());
        let Some((next_bound, _)) = by_bound.get((i + 1) * batch) else {
            break;
        };
        if picked.len() >= rules.reachable && picked.last().is_some_and(|s| s.score > *next_bound) {
            break;
        }
    }
    Ok(picked)
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
    let rules = ListRules {
        n,
        per_category,
        // A list of one category holds at most max_per_category products, whatever the pool.
        reachable: if category.is_some() {
            n.min(per_category)
        } else {
            n
        },
        excluded: &excluded,
        category,
    };
    Spi::connect(|client| {
        let ctx = load_user(client, user_id)?;
        let ranker = Ranker {
            ctx: &ctx,
            max_pop: max_popularity(client)?,
        };
        let draw = |pool: usize, fill: bool| -> Result<(Vec<Scored>, usize), EngineError> {
            let sources = candidate_sources(client, &ctx, category, pool as i64, fill)?;
            let picked = if ctx.cold {
                cold_start_list(client, &ranker, &sources, &rules)?
            } else {
                list_by_score(client, &ranker, &sources, &rules)?
            };
            Ok((picked, sources.len()))
        };
        let pool = draw_size(n);
        let (picked, drawn) = draw(pool, false)?;
        if picked.len() >= rules.reachable || drawn < pool {
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
mod tests;
