//! Where recommend() finds the products it scores: the products most similar to the user's
//! history, the most popular products of the user's strongest categories and brands, trending
//! and popular products. Each candidate keeps the source that found it first and, when a source
//! read it from product_stats, its popularity_score, which lets the ranking bound the candidate's
//! score before reading its catalog facts (src/ranking.rs).

use std::collections::HashMap;

use pgrx::datum::DatumWithOid;
use pgrx::spi::{SpiClient, SpiTupleTable};

use crate::error::{EngineError, Required};
use crate::spi_util::{rows, rows_kept};
use crate::user_context::UserContext;

/// recommend() considers at least this many of the products most similar to the history. 100,
/// and 2n per other source, measured as good as 200 and 4n on every data set of
/// bench/QUALITY.md, at two thirds of the cached call's time (bench/PROFILE.md).
const COLLABORATIVE_CANDIDATES: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    Personal,
    Trending,
    Popular,
}

/// A product recommend() may score.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub id: i64,
    pub source: Source,
    /// The product's popularity_score, when a source read it (those that rank product_stats);
    /// None for a product only similarity found.
    pub popularity_score: Option<f64>,
}

const TOP_IN_CATEGORY: &str =
    "SELECT s.product_id, s.popularity_score FROM popularity_engine.product_stats s
  WHERE s.category = $1 AND ($2::text IS NULL OR s.category = $2) AND s.popularity_score > 0
  ORDER BY s.popularity_score DESC, s.product_id LIMIT $3";
const TOP_OF_BRAND: &str =
    "SELECT s.product_id, s.popularity_score FROM popularity_engine.product_stats s
  WHERE s.brand = $1 AND ($2::text IS NULL OR s.category = $2) AND s.popularity_score > 0
  ORDER BY s.popularity_score DESC, s.product_id LIMIT $3";
const TRENDING: &str =
    "SELECT s.product_id, s.popularity_score FROM popularity_engine.product_stats s
   LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
  WHERE s.trend_fwd > 0 AND s.trend_events > 0 AND ($1::text IS NULL OR c.category = $1)
  ORDER BY s.trend_fwd DESC, s.product_id LIMIT $2";
const POPULAR: &str =
    "SELECT s.product_id, s.popularity_score FROM popularity_engine.product_stats s
   LEFT JOIN popularity_engine.catalog c ON c.product_id = s.product_id
  WHERE s.popularity_score > 0 AND ($1::text IS NULL OR c.category = $1)
  ORDER BY s.popularity_score DESC, s.product_id LIMIT $2";

/// The (product_id, popularity_score) rows of a source query as candidates of `source`.
fn ranked(
    table: SpiTupleTable,
    doing: &'static str,
    source: Source,
) -> Result<Vec<Candidate>, EngineError> {
    table
        .map(|row| {
            Ok(Candidate {
                id: row.get(1).required(doing, "product_id")?,
                source,
                popularity_score: Some(row.get(2).required(doing, "popularity_score")?),
            })
        })
        .collect()
}

/// The products most similar to the history, best first: at least COLLABORATIVE_CANDIDATES.
fn most_similar(ctx: &UserContext, pool: usize) -> Vec<Candidate> {
    let mut similar: Vec<(&i64, &(f64, i64))> = ctx.collaborative.iter().collect();
    similar.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then(a.0.cmp(b.0)));
    similar
        .into_iter()
        .take(COLLABORATIVE_CANDIDATES.max(pool))
        .map(|(p, _)| Candidate {
            id: *p,
            source: Source::Personal,
            popularity_score: None,
        })
        .collect()
}

/// The candidate sources of recommend(), each product with the source that found it first:
/// personal (the products most similar to the user's history, the top products of the user's 3
/// strongest categories and 2 strongest brands; not for a cold user), then trending, then popular
/// (for a warm user only when the personal ones are fewer than `pool`, a category is asked or
/// `fill` says that a first draw fell short). At most `pool` products per source query.
pub fn candidate_sources(
    client: &SpiClient,
    ctx: &UserContext,
    category: Option<&str>,
    pool: i64,
    fill: bool,
) -> Result<Vec<Candidate>, EngineError> {
    let cat = || -> DatumWithOid { category.map(str::to_owned).into() };
    let mut sources: Vec<Candidate> = Vec::new();
    let mut first = HashMap::new();
    if !ctx.cold {
        add_new(&mut sources, &mut first, most_similar(ctx, pool as usize));
        for (affinity, take, sql) in [
            (&ctx.category_affinity, 3, TOP_IN_CATEGORY),
            (&ctx.brand_affinity, 2, TOP_OF_BRAND),
        ] {
            let mut best: Vec<(&String, &f64)> = affinity.iter().collect();
            best.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
            for (value, _) in best.into_iter().take(take) {
                const DOING: &str = "reading the user's top products";
                let args = [value.clone().into(), cat(), pool.into()];
                let found = ranked(
                    rows_kept(client, DOING, sql, &args)?,
                    DOING,
                    Source::Personal,
                )?;
                add_new(&mut sources, &mut first, found);
            }
        }
    }
    // A warm user's list comes from their own signals; trending and popular products fill it
    // when those are too few (or may miss the requested category).
    if ctx.cold || category.is_some() || fill || sources.len() < pool as usize {
        // first source wins: personal before trending before popular
        for (doing, sql, source) in [
            ("reading trending products", TRENDING, Source::Trending),
            ("reading popular products", POPULAR, Source::Popular),
        ] {
            let found = ranked(
                rows(client, doing, sql, &[cat(), pool.into()])?,
                doing,
                source,
            )?;
            add_new(&mut sources, &mut first, found);
        }
    }
    Ok(sources)
}

/// Appends the products of `found` not yet in `sources` (`first`: product -> its position). A
/// product found again brings its popularity_score to the first finding when that had none.
fn add_new(sources: &mut Vec<Candidate>, first: &mut HashMap<i64, usize>, found: Vec<Candidate>) {
    for c in found {
        match first.get(&c.id) {
            Some(&i) => {
                let kept = &mut sources[i];
                kept.popularity_score = kept.popularity_score.or(c.popularity_score);
            }
            None => {
                first.insert(c.id, sources.len());
                sources.push(c);
            }
        }
    }
}
