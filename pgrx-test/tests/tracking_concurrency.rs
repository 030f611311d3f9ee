//! Eight connections hammer one hot product for ten seconds: no error, no deadlock, and every
//! committed call is in the log exactly once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pgrx_test::{connect, count, fresh_extension};

const WRITERS: i64 = 8;
const HOT_PRODUCT: i64 = 4242;

#[test]
fn eight_writers_on_one_hot_product() {
    let mut admin = fresh_extension();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (1..=WRITERS)
        .map(|user| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut c = connect();
                let mut events = 0i64;
                let mut orders = 0i64;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    match i % 4 {
                        0 => {
                            c.execute(
                                "SELECT popularity_engine.track($1, $2, 'view')",
                                &[&user, &HOT_PRODUCT],
                            )
                            .expect("view");
                        }
                        1 => {
                            c.execute(
                                "SELECT popularity_engine.track($1, $2, 'add_to_cart', 1)",
                                &[&user, &HOT_PRODUCT],
                            )
                            .expect("add_to_cart");
                        }
                        2 => {
                            c.execute(
                                "SELECT popularity_engine.track($1, $2, 'remove_from_cart', 1)",
                                &[&user, &HOT_PRODUCT],
                            )
                            .expect("remove_from_cart");
                        }
                        _ => {
                            c.execute(
                                "SELECT popularity_engine.track_order($1, ARRAY[$2::int8])",
                                &[&user, &HOT_PRODUCT],
                            )
                            .expect("track_order");
                            orders += 1;
                        }
                    }
                    events += 1;
                }
                (events, orders)
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(i64, i64)> = workers
        .into_iter()
        .map(|w| w.join().expect("a writer failed"))
        .collect();
    let elapsed = started.elapsed();

    let events: i64 = results.iter().map(|r| r.0).sum();
    let orders: i64 = results.iter().map(|r| r.1).sum();
    let logged = count(
        &mut admin,
        "SELECT count(*) FROM popularity_engine.product_interactions WHERE product_id = 4242",
    );
    let purchases = count(
        &mut admin,
        "SELECT count(*) FROM popularity_engine.purchase_history",
    );
    let negative_or_stale = count(
        &mut admin,
        "SELECT count(*) FROM popularity_engine.user_cart WHERE quantity <= 0 OR quantity > 1",
    );
    println!(
        "{WRITERS} writers, {events} calls in {:.1}s ({:.0}/s), {logged} logged",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
    assert!(events > 0);
    assert_eq!(
        logged, events,
        "every committed call is logged exactly once"
    );
    assert_eq!(purchases, orders);
    assert_eq!(
        negative_or_stale, 0,
        "each user's add/remove pairs keep the cart line at 0 or 1"
    );
}
