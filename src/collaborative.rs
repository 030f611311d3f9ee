//! The personalization formula of recommend() and rank_products(), free of server calls so that
//! unit tests pin it with hand-computed values.
//!
//! * History: the user's most recent distinct products, newest first, each with k, the number of
//!   the user's products last seen strictly later (k = 0 for the newest). Products seen at the
//!   same moment, such as one basket's, share k, so they weigh alike and a part takes all of
//!   them or none, whatever their ids. The recent part is the products with k < `history_length`,
//!   each weighing h = 0.5^(k / history_half_life); the whole history is those with
//!   k < `long_history_length`, each weighing 1.
//! * Collaborative filtering: cf(j) = sqrt((1 - a) x r(j) / max r + a x l(j) / max l) with
//!   r(j) = sum_k h_k x sim(history_k, j) over the recent part, l(j) = sum_k sim(history_k, j)
//!   over the whole history and a = weight_long_history: in [0, 1]. A part with no similar
//!   product at all leaves cf to the other one. The recent part follows what the user is
//!   looking at now (the next click), the whole history their lasting tastes (what they buy
//!   over the following weeks); each is divided by its own maximum so that a long history does
//!   not drown the recent part. The square root keeps the user's weaker neighbours
//!   closer to the best one, so that the fixed-weight popularity component does not push them
//!   out of the list (it measured better than the plain ratio on every data set of
//!   bench/RESULTS.md, and better than any power above 1).
//! * personalization = (w_sim x cf + w_cat x category affinity + w_brand x brand affinity)
//!   / (w_sim + w_cat + w_brand), the affinities divided by the user's strongest one: in [0, 1].

use std::collections::HashMap;

/// Candidate -> (cf in [0, 1], the history product that contributed most to it).
pub type Collaborative = HashMap<i64, (f64, i64)>;

/// A product of a user's history, which is kept newest first.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistoryProduct {
    pub product: i64,
    /// How many of the user's products were last seen strictly after this one: its k.
    pub later: usize,
}

/// Weight of a history product with k products seen strictly later (k = 0: the newest).
pub fn recency_weight(k: usize, half_life: f64) -> f64 {
    0.5f64.powf(k as f64 / half_life)
}

/// How a history is read into cf: the recent part (the products with k < `recent`, recency
/// weighted with `half_life`) and the whole history (those with k < `long`, each weighing 1),
/// the latter's share of cf being `long_share`.
#[derive(Clone, Copy, Debug)]
pub struct HistoryWeights {
    pub recent: usize,
    pub half_life: f64,
    pub long: usize,
    pub long_share: f64,
}

impl HistoryWeights {
    /// How many of the most recent distinct products to read (and any seen at the same moment
    /// as the last of them).
    pub fn products_read(&self) -> usize {
        self.recent.max(self.long)
    }

    fn recent_weight(&self, entry: HistoryProduct) -> f64 {
        if entry.later < self.recent {
            recency_weight(entry.later, self.half_life)
        } else {
            0.0
        }
    }

    fn long_weight(&self, entry: HistoryProduct) -> f64 {
        if entry.later < self.long {
            1.0
        } else {
            0.0
        }
    }
}

/// cf of every product similar to one of `history` (newest first), from `similarities` rows
/// (product, similar product, score): cf(j) = sqrt((1 - a) x r(j) / max r + a x l(j) / max l),
/// r(j) the recency-weighted sum over the recent part, l(j) the plain sum over the whole history,
/// a = long_share. A part with no similar product at all leaves cf to the other one (a = 0 when
/// the whole history has none, a = 1 when the recent part has none), so that the user's best
/// candidate always has cf = 1. With each product, the history product that contributed most.
pub fn collaborative_scores(
    history: &[HistoryProduct],
    weights: HistoryWeights,
    similarities: &[(i64, i64, f64)],
) -> Collaborative {
    let part_weights: HashMap<i64, (f64, f64)> = history
        .iter()
        .map(|&entry| {
            let parts = (weights.recent_weight(entry), weights.long_weight(entry));
            (entry.product, parts)
        })
        .collect();
    let rows: Vec<(i64, (f64, f64), i64, f64)> = similarities
        .iter()
        .filter_map(|&(from, to, score)| part_weights.get(&from).map(|&w| (from, w, to, score)))
        .collect();
    let mut sums: HashMap<i64, (f64, f64)> = HashMap::new();
    for &(_, (recent, long), to, score) in &rows {
        let entry = sums.entry(to).or_insert((0.0, 0.0));
        entry.0 += recent * score;
        entry.1 += long * score;
    }
    let max_recent = sums.values().map(|s| s.0).fold(0.0, f64::max);
    let max_long = sums.values().map(|s| s.1).fold(0.0, f64::max);
    let long_share = match (max_recent > 0.0, max_long > 0.0) {
        (_, false) => 0.0,
        (false, true) => 1.0,
        (true, true) => weights.long_share,
    };
    let blend = |recent: f64, long: f64| {
        let recent_part = if max_recent > 0.0 {
            recent / max_recent
        } else {
            0.0
        };
        let long_part = if max_long > 0.0 { long / max_long } else { 0.0 };
        (1.0 - long_share) * recent_part + long_share * long_part
    };
    let mut strongest: HashMap<i64, (f64, i64)> = HashMap::new();
    for &(from, (recent, long), to, score) in &rows {
        let part = blend(recent * score, long * score);
        let entry = strongest.entry(to).or_insert((part, from));
        if part > entry.0 || (part == entry.0 && from < entry.1) {
            *entry = (part, from);
        }
    }
    strongest
        .into_iter()
        .map(|(p, (_, from))| {
            let (recent, long) = sums[&p];
            (p, (blend(recent, long).sqrt(), from))
        })
        .filter(|(_, (cf, _))| *cf > 0.0)
        .collect()
}

/// The weights of the three personal components (settings weight_similarity, weight_category,
/// weight_brand).
#[derive(Clone, Copy, Debug)]
pub struct PersonalWeights {
    pub similarity: f64,
    pub category: f64,
    pub brand: f64,
}

/// The personal components of a product, each weighted and divided by the sum of the weights,
/// in the order similarity, category, brand. Their sum is the personalization, in [0, 1].
pub fn personal_components(cf: f64, category: f64, brand: f64, w: PersonalWeights) -> [f64; 3] {
    let total = w.similarity + w.category + w.brand;
    if total <= 0.0 {
        return [0.0; 3];
    }
    [
        w.similarity * cf / total,
        w.category * category / total,
        w.brand * brand / total,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recency_halves_every_half_life() {
        assert_eq!(recency_weight(0, 4.0), 1.0);
        assert!((recency_weight(4, 4.0) - 0.5).abs() < 1e-15);
        assert!((recency_weight(2, 4.0) - 0.5f64.sqrt()).abs() < 1e-15);
        assert!((recency_weight(8, 4.0) - 0.25).abs() < 1e-15);
    }

    #[test]
    fn collaborative_sums_over_the_history_and_normalises() {
        // history newest first: 10 (h = 1), 20 (h = 0.5 with a half-life of 1)
        let sims = [
            (10, 1, 0.8),
            (20, 1, 0.4),
            (20, 2, 0.9),
            (10, 3, 0.1),
            (99, 1, 1.0),
        ];
        let cf = collaborative_scores(&in_order(&[10, 20]), recent_only(2, 1.0), &sims);
        // sums: 1 -> 0.8 + 0.5 x 0.4 = 1.0; 2 -> 0.5 x 0.9 = 0.45; 3 -> 0.1; 99 is not history;
        // cf = sqrt(sum / 1.0)
        assert_eq!(cf.len(), 3);
        assert!((cf[&1].0 - 1.0).abs() < 1e-15);
        assert_eq!(cf[&1].1, 10);
        assert!((cf[&2].0 - 0.670_820_393_249_936_9).abs() < 1e-15);
        assert_eq!(cf[&2].1, 20);
        assert!((cf[&3].0 - 0.316_227_766_016_837_94).abs() < 1e-15);
        // newest first 20 (h = 1), 10 (h = 0.5): sums 1 -> 0.4, 2 -> 0.9, 3 -> 0.05; the best
        // sum is below 1 and still maps to cf = 1
        let cf = collaborative_scores(&in_order(&[20, 10]), recent_only(2, 1.0), &sims[1..4]);
        assert!((cf[&2].0 - 1.0).abs() < 1e-15);
        assert!((cf[&3].0 - (0.05f64 / 0.9).sqrt()).abs() < 1e-15);
    }

    /// A history seen one product at a time, newest first: k = position.
    fn in_order(products: &[i64]) -> Vec<HistoryProduct> {
        products
            .iter()
            .enumerate()
            .map(|(later, &product)| HistoryProduct { product, later })
            .collect()
    }

    #[test]
    fn products_seen_together_weigh_alike() {
        // 10 newest, then 20 and 30 seen at the same moment (k = 1 for both), then 40 (k = 3)
        let history = [(10, 0), (20, 1), (30, 1), (40, 3)]
            .map(|(product, later)| HistoryProduct { product, later });
        let sims = [(10, 1, 0.2), (20, 1, 0.4), (30, 2, 0.4), (40, 3, 0.9)];
        let cf = collaborative_scores(&history, recent_only(4, 1.0), &sims);
        // recent sums: 1 -> 0.2 + 0.5 x 0.4 = 0.4, 2 -> 0.5 x 0.4 = 0.2 (by position, 30 would
        // weigh 0.25), 3 -> 0.5^3 x 0.9 = 0.1125 (three products seen later, as by position)
        assert!((cf[&1].0 - 1.0).abs() < 1e-15);
        assert!((cf[&2].0 - 0.5f64.sqrt()).abs() < 1e-15);
        assert!((cf[&3].0 - (0.1125f64 / 0.4).sqrt()).abs() < 1e-15);
        // a recent part of 2 takes 20 and 30 both (k = 1 < 2), whatever their ids, and not 40
        let cf = collaborative_scores(&history, recent_only(2, 1.0), &sims);
        assert!((cf[&1].0 - 1.0).abs() < 1e-15);
        assert!((cf[&2].0 - 0.5f64.sqrt()).abs() < 1e-15);
        assert!(!cf.contains_key(&3));
        // so does a whole history of 2, each weighing 1: sums 1 -> 0.6, 2 -> 0.4
        let cf = collaborative_scores(&history, history_weights(0, 1.0, 2, 1.0), &sims);
        assert!((cf[&2].0 - (0.4f64 / 0.6).sqrt()).abs() < 1e-15);
        assert!(!cf.contains_key(&3));
    }

    fn history_weights(
        recent: usize,
        half_life: f64,
        long: usize,
        long_share: f64,
    ) -> HistoryWeights {
        HistoryWeights {
            recent,
            half_life,
            long,
            long_share,
        }
    }

    fn recent_only(recent: usize, half_life: f64) -> HistoryWeights {
        history_weights(recent, half_life, 0, 0.0)
    }

    #[test]
    fn collaborative_blends_the_recent_part_and_the_whole_history() {
        // history newest first: 10 (h = 1), 20 (h = 0.5), 30 (past the recent part of 2)
        let sims = [
            (10, 1, 0.8),
            (20, 1, 0.4),
            (20, 2, 0.9),
            (10, 3, 0.1),
            (30, 3, 0.9),
        ];
        let weights = history_weights(2, 1.0, 3, 0.5);
        let cf = collaborative_scores(&in_order(&[10, 20, 30]), weights, &sims);
        // recent sums: 1 -> 0.8 + 0.5 x 0.4 = 1.0, 2 -> 0.45, 3 -> 0.1 (max 1.0);
        // whole-history sums: 1 -> 1.2, 2 -> 0.9, 3 -> 1.0 (max 1.2)
        assert!((cf[&1].0 - 1.0).abs() < 1e-15);
        assert!((cf[&2].0 - 0.6f64.sqrt()).abs() < 1e-15); // 0.5 x 0.45 + 0.5 x 0.75
        assert!((cf[&3].0 - (7.0f64 / 15.0).sqrt()).abs() < 1e-15); // 0.05 + 0.5 x 1.0 / 1.2
                                                                    // 3 owes 0.375 to 30 (whole history only) and 0.05 + 0.0417 to 10
        assert_eq!(cf[&3].1, 30);
        assert_eq!(cf[&1].1, 10);
        // with a whole history shorter than the recent part, 30 counts nowhere
        let short = HistoryWeights { long: 1, ..weights };
        let cf = collaborative_scores(&in_order(&[10, 20, 30]), short, &sims);
        // whole-history sums: 1 -> 0.8, 3 -> 0.1 (max 0.8); 2 only in the recent part
        assert!((cf[&2].0 - 0.225f64.sqrt()).abs() < 1e-15);
        assert!((cf[&3].0 - (0.05f64 + 0.5 * 0.125).sqrt()).abs() < 1e-15);
        assert_eq!(short.products_read(), 2);
    }

    #[test]
    fn an_empty_part_leaves_cf_to_the_other() {
        let sims = [(10, 1, 0.8), (20, 1, 0.4), (20, 2, 0.9), (30, 2, 0.5)];
        let recent = collaborative_scores(&in_order(&[10, 20]), recent_only(2, 1.0), &sims);
        // no whole history (long = 0) with the default share: the recent part alone, best = 1
        let no_long = history_weights(2, 1.0, 0, 0.5);
        let cf = collaborative_scores(&in_order(&[10, 20]), no_long, &sims);
        assert_eq!(cf, recent);
        assert!((cf[&1].0 - 1.0).abs() < 1e-15);
        // the recent part (10) has no similar product, the older 20 and 30 have: whole history
        // alone, sums 1 -> 0.4, 2 -> 1.4 (max), best = 1
        let weights = history_weights(1, 1.0, 3, 0.5);
        let cf = collaborative_scores(&in_order(&[10, 20, 30]), weights, &sims[1..]);
        assert!((cf[&2].0 - 1.0).abs() < 1e-15);
        assert!((cf[&1].0 - (0.4f64 / 1.4).sqrt()).abs() < 1e-15);
        assert_eq!(cf[&2].1, 20); // 0.9 from 20 against 0.5 from 30
                                  // a whole history of share 1: the plain sums, recency ignored
        let all = HistoryWeights {
            long_share: 1.0,
            ..weights
        };
        let cf = collaborative_scores(&in_order(&[20, 10, 30]), all, &sims);
        // sums 1 -> 0.8 + 0.4 = 1.2 (max), 2 -> 0.9 + 0.5 = 1.4 (max)
        assert!((cf[&2].0 - 1.0).abs() < 1e-15);
        assert!((cf[&1].0 - (1.2f64 / 1.4).sqrt()).abs() < 1e-15);
        assert_eq!(all.products_read(), 3);
    }

    #[test]
    fn equal_contributions_name_the_smaller_product() {
        let sims = [(20, 1, 0.5), (10, 1, 0.5)];
        let weights = history_weights(0, 1.0, 2, 1.0);
        let cf = collaborative_scores(&in_order(&[20, 10]), weights, &sims);
        assert_eq!(cf[&1], (1.0, 10));
    }

    #[test]
    fn collaborative_of_nothing_is_empty() {
        assert!(
            collaborative_scores(&in_order(&[]), recent_only(20, 10.0), &[(1, 2, 0.5)]).is_empty()
        );
        assert!(collaborative_scores(&in_order(&[1]), recent_only(20, 10.0), &[]).is_empty());
    }

    #[test]
    fn components_are_weighted_and_sum_to_at_most_one() {
        let w = PersonalWeights {
            similarity: 0.6,
            category: 0.3,
            brand: 0.1,
        };
        let [s, c, b] = personal_components(0.5, 1.0, 0.2, w);
        assert!((s - 0.3).abs() < 1e-15);
        assert!((c - 0.3).abs() < 1e-15);
        assert!((b - 0.02).abs() < 1e-15);
        let all = personal_components(1.0, 1.0, 1.0, w).iter().sum::<f64>();
        assert!((all - 1.0).abs() < 1e-15);
        // weights need not sum to 1: they are divided by their sum
        let w2 = PersonalWeights {
            similarity: 2.0,
            category: 1.0,
            brand: 1.0,
        };
        let [s2, ..] = personal_components(1.0, 0.0, 0.0, w2);
        assert!((s2 - 0.5).abs() < 1e-15);
        let zero = PersonalWeights {
            similarity: 0.0,
            category: 0.0,
            brand: 0.0,
        };
        assert_eq!(personal_components(1.0, 1.0, 1.0, zero), [0.0; 3]);
    }
}
