//! Soak: writers commit (and 10 % roll back) transactions of several events while refreshers
//! run in parallel; afterwards every aggregate equals a brute-force recount of the log.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pgrx_test::{connect, count, fresh_extension, load_reference, mismatches, refresh};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TYPES: [&str; 11] = [
    "view",
    "product_view",
    "click",
    "search_click",
    "wishlist",
    "wishlist_add",
    "add_to_cart",
    "cart_add",
    "purchase",
    "order",
    "review",
];

#[test]
fn writers_and_refreshers_stay_exact() {
    let mut admin = fresh_extension();
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicI64::new(0));
    let rolled_back = Arc::new(AtomicI64::new(0));
    let refreshes = Arc::new(AtomicI64::new(0));
    let seconds = std::env::var("PE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);

    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let (stop, committed, rolled_back) = (stop.clone(), committed.clone(), rolled_back.clone());
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(1000 + w);
                let mut c = connect();
                while !stop.load(Ordering::Relaxed) {
                    let mut tx = c.transaction().expect("begin");
                    let n = rng.gen_range(1..=5);
                    for _ in 0..n {
                        let itype = TYPES[rng.gen_range(0..TYPES.len())];
                        let user: i64 = rng.gen_range(1..200);
                        let product: i64 = 1 + (rng.gen_range(0.0f64..1.0).powi(3) * 300.0) as i64;
                        let value: Option<f64> = match itype {
                            "review" => Some(rng.gen_range(1..=5) as f64),
                            "wishlist" => Some(rng.gen_range(0..=1) as f64),
                            _ => None,
                        };
                        // spread over the last ten days, a few slightly in the future
                        let offset: i64 = rng.gen_range(-10 * 86400..120);
                        tx.execute(
                            "SELECT popularity_engine.track($1, $2, $3::text::popularity_engine.interaction_type,
                                    $4, occurred_at => now() + make_interval(secs => $5))",
                            &[&user, &product, &itype, &value, &(offset as f64)],
                        )
                        .expect("track");
                    }
                    if rng.gen_bool(0.1) {
                        tx.rollback().expect("rollback");
                        rolled_back.fetch_add(n, Ordering::Relaxed);
                    } else {
                        tx.commit().expect("commit");
                        committed.fetch_add(n, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let refreshers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, refreshes) = (stop.clone(), refreshes.clone());
            thread::spawn(move || {
                let mut c = connect();
                while !stop.load(Ordering::Relaxed) {
                    refresh(&mut c);
                    refreshes.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(50));
                }
            })
        })
        .collect();

    let started = Instant::now();
    thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in writers.into_iter().chain(refreshers) {
        t.join().expect("a soak thread failed");
    }
    refresh(&mut admin);
    load_reference(&mut admin);
    let wrong = mismatches(&mut admin);
    let logged = count(
        &mut admin,
        "SELECT count(*) FROM popularity_engine.product_interactions",
    );
    println!(
        "soak: {:.0}s, {} events committed, {} rolled back, {} refreshes, {} mismatches",
        started.elapsed().as_secs_f64(),
        committed.load(Ordering::Relaxed),
        rolled_back.load(Ordering::Relaxed),
        refreshes.load(Ordering::Relaxed) + 1,
        wrong.len()
    );
    assert_eq!(logged, committed.load(Ordering::Relaxed));
    assert!(refreshes.load(Ordering::Relaxed) > 10, "the refreshers ran");
    assert!(
        wrong.is_empty(),
        "aggregates differ from the recount: {wrong:?}"
    );
}
