//! Reference comparison on random data: after refreshes at as_of values that move forward in
//! small and large steps, backwards, and exactly onto window edges, every counter,
//! popularity_score and trending_score matches a brute-force recount of the documented formulas.

use pgrx_test::{fresh_extension, load_reference, mismatches};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TYPES: [&str; 9] = [
    "view",
    "click",
    "search_click",
    "wishlist",
    "add_to_cart",
    "order",
    "review",
    "page_view",
    "cart_remove",
];

/// 2026-03-01 00:00:00 UTC: far enough in the past that every as_of below is allowed.
const BASE: i64 = 1_772_323_200;

#[test]
fn random_logs_match_the_brute_force_recount() {
    let mut c = fresh_extension();
    load_reference(&mut c);
    let mut rng = StdRng::seed_from_u64(42);
    let mut as_of_hours: f64 = 0.0;
    let mut checks = 0;
    for round in 0..12 {
        // a burst of events around the current as_of, some on the exact window edge
        let mut events = Vec::new();
        for _ in 0..rng.gen_range(50..300) {
            let itype = TYPES[rng.gen_range(0..TYPES.len())];
            let hours: f64 = match rng.gen_range(0..10) {
                0 => as_of_hours - 168.0,        // exactly 168 h before the current as_of
                1 => as_of_hours - 168.0 - 1e-6, // just outside
                2 => as_of_hours + rng.gen_range(0.0..30.0), // ahead of as_of
                _ => as_of_hours - rng.gen_range(0.0..240.0),
            };
            let value = match itype {
                "review" => format!("{}", rng.gen_range(1..=5)),
                "wishlist" => format!("{}", rng.gen_range(0..=1)),
                "add_to_cart" => format!("{}", rng.gen_range(1..=4)),
                _ => "null".into(),
            };
            let product = if itype == "page_view" {
                "null".to_string()
            } else {
                rng.gen_range(1..60).to_string()
            };
            events.push(format!(
                r#"{{"user_id": {}, "product_id": {product}, "type": "{itype}", "value": {value},
                    "occurred_at": "{}"}}"#,
                rng.gen_range(1..40),
                ts(BASE, hours)
            ));
        }
        c.query_one(
            "SELECT popularity_engine.track_batch($1::text::jsonb)",
            &[&format!("[{}]", events.join(","))],
        )
        .expect("track_batch");

        // next as_of: small step, big step, backwards, or the same
        as_of_hours = match round % 4 {
            0 => as_of_hours + rng.gen_range(0.1..3.0),
            1 => as_of_hours + rng.gen_range(20.0..100.0),
            2 => as_of_hours - rng.gen_range(1.0..50.0),
            _ => as_of_hours,
        };
        c.execute(
            "CALL popularity_engine.refresh_popularity($1::text::timestamptz)",
            &[&ts(BASE, as_of_hours)],
        )
        .expect("refresh");
        let wrong = mismatches(&mut c);
        assert!(
            wrong.is_empty(),
            "round {round}, as_of {}: {wrong:?}",
            ts(BASE, as_of_hours)
        );
        checks += 1;
    }
    println!("{checks} refreshes compared with the recount, all exact");
}

/// `base` (unix seconds) plus `hours`, as an ISO-8601 UTC timestamp with microseconds.
fn ts(base: i64, hours: f64) -> String {
    let micros = base * 1_000_000 + (hours * 3600.0 * 1e6).round() as i64;
    let (secs, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let (days, sod) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil date from days since 1970-01-01 (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[test]
fn timestamps_format_like_postgres() {
    assert_eq!(ts(BASE, 0.0), "2026-03-01T00:00:00.000000Z");
    assert_eq!(
        ts(BASE, -168.0 - 1e-6 / 3600.0),
        "2026-02-21T23:59:59.999999Z"
    );
    assert_eq!(ts(0, 24.0 * 366.0), "1971-01-02T00:00:00.000000Z");
}
