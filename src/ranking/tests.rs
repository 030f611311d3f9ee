//! Unit tests of the ranking formula, the score bound and the cap per category.

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

fn user_with_tastes() -> UserContext {
    let mut ctx = UserContext::default();
    ctx.collaborative.insert(7, (0.5, 1));
    ctx.category_affinity.insert("a".into(), 1.0);
    ctx.brand_affinity.insert("b".into(), 0.4);
    ctx.price_band = Some(0.0);
    ctx
}

#[test]
fn score_bound_by_hand() {
    let ctx = user_with_tastes();
    let ranker = Ranker {
        ctx: &ctx,
        max_pop: 99.0,
    };
    // default weights, popularity ln(10) / ln(100) = 0.5:
    // 0.5 x 1 + 0.3 x (0.8 x 0.5 + 0.15 x 1 + 0.05 x 1) + 0.2 x 0.5 = 0.78
    let known = Candidate {
        id: 7,
        source: Source::Personal,
        popularity_score: Some(9.0),
    };
    assert!((ranker.score_bound(&known) - 0.78).abs() < 1e-12);
    // popularity unknown: at most 1, so 0.88
    let unknown = Candidate {
        popularity_score: None,
        ..known
    };
    assert!((ranker.score_bound(&unknown) - 0.88).abs() < 1e-12);
    // no similarity to the history, popularity unknown: 0.5 + 0.3 x 0.2 + 0.2 = 0.76
    let unrelated = Candidate { id: 8, ..unknown };
    assert!((ranker.score_bound(&unrelated) - 0.76).abs() < 1e-12);
    // the product with the best facts there are: base 1 (stock 1 - e^-200, on the band),
    // 0.5 x 1 + 0.3 x (0.4 + 0.15 + 0.05 x 0.4) + 0.2 x 0.5 = 0.771
    let best = Product {
        brand: Some("b".into()),
        relative_price: Some(0.0),
        inventory: Some(1000),
        popularity_score: 9.0,
        ..product(7, Some("a"))
    };
    assert!((ranker.score_candidate(&best, &known).score - 0.771).abs() < 1e-12);
    // scored with the popularity its source read, the one its bound was made of
    let newer = Product {
        popularity_score: 500.0,
        ..best.clone()
    };
    assert_eq!(
        ranker.score_candidate(&newer, &known).score,
        ranker.score_candidate(&best, &known).score
    );
}

#[test]
fn no_product_scores_above_its_bound() {
    let mut ctx = user_with_tastes();
    ctx.recent_orders.insert(8);
    let ranker = Ranker {
        ctx: &ctx,
        max_pop: 99.0,
    };
    let mut checked = 0;
    for id in [7, 8, 9] {
        for (category, brand) in [(Some("a"), Some("b")), (Some("z"), None), (None, None)] {
            for (inventory, relative_price) in
                [(None, None), (Some(1000), Some(0.0)), (Some(2), Some(1.5))]
            {
                // popularity above the highest one read too (a later snapshot): capped at 1
                for popularity_score in [0.0, 9.0, 99.0, 500.0] {
                    let p = Product {
                        brand: brand.map(str::to_owned),
                        inventory,
                        relative_price,
                        popularity_score,
                        ..product(id, category)
                    };
                    for known in [None, Some(popularity_score)] {
                        let c = Candidate {
                            id,
                            source: Source::Personal,
                            popularity_score: known,
                        };
                        let scored = ranker.score_candidate(&p, &c);
                        assert!(
                            scored.score <= ranker.score_bound(&c),
                            "{id} {category:?} {popularity_score}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 216);
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
