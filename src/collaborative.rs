//! The personalization formula of recommend() and rank_products(), free of server calls so that
//! unit tests pin it with hand-computed values.
//!
//! * History: the user's `history_length` most recent distinct products, newest first, the k-th
//!   (k = 0 for the newest) weighing h_k = 0.5^(k / history_half_life).
//! * Collaborative filtering: cf(j) = sqrt(s(j) / max s), s(j) = sum_k h_k x sim(history_k, j)
//!   over item_similarity: in [0, 1], 1 for the user's best candidate. The square root keeps the
//!   user's weaker neighbours closer to the best one, so that the fixed-weight popularity
//!   component does not push them out of the list (it measured better than the plain ratio on
//!   every data set of bench/RESULTS.md, and better than any power above 1).
//! * personalization = (w_sim x cf + w_cat x category affinity + w_brand x brand affinity)
//!   / (w_sim + w_cat + w_brand), the affinities divided by the user's strongest one: in [0, 1].

use std::collections::HashMap;

/// Candidate -> (cf in [0, 1], the history product that contributed most to it).
pub type Collaborative = HashMap<i64, (f64, i64)>;

/// Weight of the k-th most recent product of a history (k = 0: the newest).
pub fn recency_weight(k: usize, half_life: f64) -> f64 {
    0.5f64.powf(k as f64 / half_life)
}

/// cf of every product similar to one of `history` (newest first), from `similarities` rows
/// (product, similar product, score): the square root of its share of the largest sum.
pub fn collaborative_scores(
    history: &[i64],
    half_life: f64,
    similarities: &[(i64, i64, f64)],
) -> Collaborative {
    let weight: HashMap<i64, f64> = history
        .iter()
        .enumerate()
        .map(|(k, p)| (*p, recency_weight(k, half_life)))
        .collect();
    let mut sums: HashMap<i64, (f64, (f64, i64))> = HashMap::new();
    for &(from, to, score) in similarities {
        let Some(w) = weight.get(&from) else { continue };
        let part = w * score;
        let entry = sums.entry(to).or_insert((0.0, (part, from)));
        entry.0 += part;
        let best = &mut entry.1;
        if part > best.0 || (part == best.0 && from < best.1) {
            *best = (part, from);
        }
    }
    let max = sums.values().map(|(s, _)| *s).fold(0.0, f64::max);
    sums.into_iter()
        .filter(|(_, (s, _))| *s > 0.0)
        .map(|(p, (s, (_, from)))| (p, ((s / max).sqrt(), from)))
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
        let cf = collaborative_scores(&[10, 20], 1.0, &sims);
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
        let cf = collaborative_scores(&[20, 10], 1.0, &sims[1..4]);
        assert!((cf[&2].0 - 1.0).abs() < 1e-15);
        assert!((cf[&3].0 - (0.05f64 / 0.9).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn collaborative_of_nothing_is_empty() {
        assert!(collaborative_scores(&[], 10.0, &[(1, 2, 0.5)]).is_empty());
        assert!(collaborative_scores(&[1], 10.0, &[]).is_empty());
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
