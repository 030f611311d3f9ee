//! Every read entry point works as the FIRST statement of a FRESH connection, on the primary and
//! on a real hot standby (a `pg_basebackup -R` copy of the test cluster, streaming from it).
//!
//! A new backend has not loaded the extension's library yet, so the `popularity_engine.*`
//! settings it defines do not exist until something calls one of its C functions: SQL that reads
//! such a setting with `current_setting(...)` before that fails with `unrecognized configuration
//! parameter`. The other tests call `track()` or a refresh first, which loads the library and
//! hides the problem; here each entry point gets a connection of its own and runs first.
//!
//! Covered: popular_products (no window, a window, a category, both, trending), recommend for a
//! warm and a cold user, rank_products, similar_products, user_profile (warm and cold),
//! aggregation_lag, and `SELECT *` from every view of the schema (listed from pg_views, so a new
//! view is covered without touching this file). Each result is checked for plausible content.
//!
//! Needs PE_TEST_URL (the primary) and PE_TEST_DATA (its data directory, for the settings the
//! base backup copies); the standby runs as the `postgres` OS user on a free port near the
//! primary's, with its data under /tmp/popularity_engine/, and is always stopped and removed.

use std::collections::BTreeSet;

use pgrx_test::servers::*;
use postgres::{Client, Config, NoTls};
use serde_json::Value;

const WARM_USER: i64 = 1001;
const COLD_USER: i64 = 2001;
/// Interactions tracked for WARM_USER (well above the default cold_start_threshold of 5).
const WARM_INTERACTIONS: i64 = 12;
/// Interactions tracked for COLD_USER (below the threshold).
const COLD_INTERACTIONS: i64 = 2;

/// The views the schema has at least; each must return rows with the data set up here.
const EXPECTED_VIEWS: [&str; 8] = [
    "product_popularity",
    "user_preferences",
    "popularity_report",
    "trending_products",
    "daily_interaction_stats",
    "user_affinity",
    "search_analytics",
    "job_health",
];

// Data, entry points and checks
// ---------------------------------------------------------------------------------------------

/// A catalog over three categories and two brands, a warm user with WARM_INTERACTIONS
/// interactions, other users that co-interact (for item similarity), a cold user, a search with
/// a click, and every refresh.
fn set_up(c: &mut Client) {
    c.batch_execute(
        "CREATE EXTENSION popularity_engine;
         INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory)
         SELECT p, (ARRAY['electronics', 'books', 'toys'])[1 + (p - 1) % 3],
                CASE WHEN p % 2 = 1 THEN 'acme' ELSE 'globex' END, 10 * p, 100
           FROM generate_series(1, 12) AS p;",
    )
    .expect("CREATE EXTENSION and the catalog");

    // the warm user: 8 views, a click, a cart add, an order and a wishlist add, over 3 categories
    let warm = [
        (1, "view"),
        (2, "view"),
        (3, "view"),
        (4, "view"),
        (5, "view"),
        (6, "view"),
        (7, "view"),
        (8, "view"),
        (1, "click"),
        (4, "add_to_cart"),
        (7, "order"),
        (2, "wishlist_add"),
    ];
    assert_eq!(warm.len() as i64, WARM_INTERACTIONS);
    for (product, kind) in warm {
        c.execute(
            "SELECT popularity_engine.track($1, $2, $3::text::popularity_engine.interaction_type)",
            &[&WARM_USER, &(product as i64), &kind],
        )
        .unwrap_or_else(|e| panic!("track({WARM_USER}, {product}, {kind}): {e}"));
    }
    // other users view overlapping sets of products, so the products co-occur
    c.batch_execute(
        "SELECT popularity_engine.track(u, p, 'view')
           FROM generate_series(1002, 1006) AS u, generate_series(1, 6) AS p
          WHERE (u + p) % 3 <> 0;
         SELECT popularity_engine.track(1003, 1, 'add_to_cart');
         SELECT popularity_engine.track(1004, 2, 'order');",
    )
    .expect("tracking the other users");
    for product in 1..=COLD_INTERACTIONS {
        c.execute(
            "SELECT popularity_engine.track($1, $2, 'view')",
            &[&COLD_USER, &(product + 8)],
        )
        .expect("tracking the cold user");
    }
    c.batch_execute(
        "SELECT popularity_engine.track_search(1003, 'usb cable', ARRAY[1, 4, 7]::bigint[]);
         SELECT popularity_engine.track_search_click(1003, 'usb cable', 4);",
    )
    .expect("tracking a search and a click");

    for refresh in [
        "refresh_popularity",
        "refresh_user_preferences",
        "refresh_item_similarity",
    ] {
        c.batch_execute(&format!("CALL popularity_engine.{refresh}()"))
            .unwrap_or_else(|e| panic!("CALL popularity_engine.{refresh}(): {}", describe(&e)));
    }
}

type Check = Box<dyn Fn(&Rows) -> Result<(), String>>;

struct EntryPoint {
    name: String,
    sql: String,
    check: Check,
}

fn entry(
    name: &str,
    sql: &str,
    check: impl Fn(&Rows) -> Result<(), String> + 'static,
) -> EntryPoint {
    EntryPoint {
        name: name.to_string(),
        sql: sql.to_string(),
        check: Box::new(check),
    }
}

fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg())
    }
}

/// rank is 1..=n in order, and every product appears once.
fn ranked(rows: &Rows) -> Result<(), String> {
    let ranks = rows.ints("rank")?;
    ensure(
        ranks == (1..=ranks.len() as i64).collect::<Vec<_>>(),
        || format!("ranks are not 1..{}: {ranks:?}", ranks.len()),
    )?;
    let products = rows.ints("product_id")?;
    let distinct: BTreeSet<i64> = products.iter().copied().collect();
    ensure(distinct.len() == products.len(), || {
        format!("a product appears twice: {products:?}")
    })
}

/// popular_products: some rows, ranked, positive scores, of `category` when given.
fn popular(category: Option<&'static str>) -> impl Fn(&Rows) -> Result<(), String> {
    move |rows| {
        ensure(rows.len() > 0, || "no rows".into())?;
        ranked(rows)?;
        let scores = rows.floats("score")?;
        ensure(scores.iter().all(|s| *s > 0.0), || {
            format!("a score is not positive: {scores:?}")
        })?;
        if let Some(cat) = category {
            let cats = rows.col("product_category")?;
            ensure(cats.iter().all(|c| *c == Some(cat)), || {
                format!("a product outside {cat}: {cats:?}")
            })?;
        }
        Ok(())
    }
}

/// The first (only) value of a one-row result, parsed as JSON.
fn json_value(rows: &Rows, column: &str) -> Result<Value, String> {
    ensure(rows.len() == 1, || {
        format!("{} rows, expected 1", rows.len())
    })?;
    let text = rows.texts(column)?.remove(0);
    serde_json::from_str(&text).map_err(|e| format!("{column} is not JSON ({e}): {text}"))
}

fn profile(user: i64, interactions: i64, cold: bool) -> impl Fn(&Rows) -> Result<(), String> {
    move |rows| {
        let p = json_value(rows, "profile")?;
        ensure(p["user_id"].as_i64() == Some(user), || {
            format!("user_id is not {user}: {p}")
        })?;
        ensure(
            p["interaction_count"].as_i64() == Some(interactions),
            || format!("interaction_count is not the {interactions} tracked: {p}"),
        )?;
        ensure(p["cold_start"].as_bool() == Some(cold), || {
            format!("cold_start is not {cold}: {p}")
        })?;
        ensure(!p["last_interaction"].is_null(), || {
            format!("no last_interaction: {p}")
        })?;
        if !cold {
            let top = p["top_categories"].as_array().map_or(0, Vec::len);
            ensure(top > 0, || format!("no top_categories: {p}"))?;
        }
        Ok(())
    }
}

fn entry_points() -> Vec<EntryPoint> {
    let pe = "popularity_engine";
    vec![
        entry(
            "popular_products()",
            &format!("SELECT * FROM {pe}.popular_products()"),
            popular(None),
        ),
        entry(
            "popular_products(time_window => '7 days')",
            &format!("SELECT * FROM {pe}.popular_products(time_window => '7 days')"),
            popular(None),
        ),
        entry(
            "popular_products(category => 'electronics')",
            &format!("SELECT * FROM {pe}.popular_products(category => 'electronics')"),
            popular(Some("electronics")),
        ),
        entry(
            "popular_products(time_window => '7 days', category => 'books')",
            &format!(
                "SELECT * FROM {pe}.popular_products(time_window => '7 days', category => 'books')"
            ),
            popular(Some("books")),
        ),
        entry(
            "popular_products('trending')",
            &format!("SELECT * FROM {pe}.popular_products('trending')"),
            popular(None),
        ),
        entry(
            "recommend(warm user, 5)",
            &format!("SELECT * FROM {pe}.recommend({WARM_USER}, 5)"),
            |rows| {
                ensure((1..=5).contains(&rows.len()), || {
                    format!("{} rows, expected 1 to 5", rows.len())
                })?;
                ranked(rows)?;
                let reasons = rows.texts("reason")?;
                ensure(!reasons.iter().any(|r| r == "cold_start"), || {
                    format!("a warm user got the cold-start list: {reasons:?}")
                })?;
                let pers = rows.floats("personalization")?;
                ensure(pers.iter().any(|p| *p > 0.0), || {
                    format!("nothing is personalised for a warm user: {pers:?} ({reasons:?})")
                })
            },
        ),
        entry(
            "recommend(cold user, 5)",
            &format!("SELECT * FROM {pe}.recommend({COLD_USER}, 5)"),
            |rows| {
                ensure((1..=5).contains(&rows.len()), || {
                    format!("{} rows, expected 1 to 5", rows.len())
                })?;
                ranked(rows)?;
                let reasons = rows.texts("reason")?;
                ensure(reasons.iter().all(|r| r == "cold_start"), || {
                    format!("a cold user got something besides the cold-start list: {reasons:?}")
                })
            },
        ),
        entry(
            "rank_products(warm user, ARRAY[1, 2, 3, 4, 5])",
            &format!(
                "SELECT * FROM {pe}.rank_products({WARM_USER}, ARRAY[1, 2, 3, 4, 5]::bigint[])"
            ),
            |rows| {
                ranked(rows)?;
                let got: BTreeSet<i64> = rows.ints("product_id")?.into_iter().collect();
                ensure(got == (1..=5).collect(), || {
                    format!("not every candidate once: {got:?}")
                })
            },
        ),
        entry(
            "similar_products(1)",
            &format!("SELECT * FROM {pe}.similar_products(1)"),
            |rows| {
                ensure(rows.len() > 0, || {
                    "no similar products for product 1".into()
                })?;
                ranked(rows)?;
                let ids = rows.ints("product_id")?;
                ensure(!ids.contains(&1), || {
                    format!("product 1 is similar to itself: {ids:?}")
                })?;
                let scores = rows.floats("score")?;
                ensure(scores.iter().all(|s| *s > 0.0), || {
                    format!("a score is not positive: {scores:?}")
                })
            },
        ),
        entry(
            "user_profile(warm user)",
            &format!("SELECT {pe}.user_profile({WARM_USER}) AS profile"),
            profile(WARM_USER, WARM_INTERACTIONS, false),
        ),
        entry(
            "user_profile(cold user)",
            &format!("SELECT {pe}.user_profile({COLD_USER}) AS profile"),
            profile(COLD_USER, COLD_INTERACTIONS, true),
        ),
        entry(
            "aggregation_lag()",
            &format!("SELECT * FROM {pe}.aggregation_lag()"),
            |rows| {
                ensure(rows.len() == 1, || {
                    format!("{} rows, expected 1", rows.len())
                })?;
                ensure(rows.ints("pending_interactions")? == [0], || {
                    "interactions pending after refresh_popularity".into()
                })?;
                ensure(rows.ints("pending_searches")? == [0], || {
                    "searches pending after refresh_popularity".into()
                })?;
                ensure(rows.col("last_refresh")?[0].is_some(), || {
                    "no last_refresh after refresh_popularity".into()
                })
            },
        ),
    ]
}

/// What a known view must contain; a view this test does not know only has to answer.
fn view_check(view: &str) -> Check {
    match view {
        "job_health" => Box::new(|rows: &Rows| {
            let jobs = rows.texts("job")?;
            let status = rows.col("last_status")?;
            for job in [
                "refresh_popularity",
                "refresh_user_preferences",
                "refresh_item_similarity",
            ] {
                let i = jobs
                    .iter()
                    .position(|j| j == job)
                    .ok_or_else(|| format!("no row for {job}: {jobs:?}"))?;
                ensure(status[i] == Some("success"), || {
                    format!("{job}: last_status {:?}, expected success", status[i])
                })?;
            }
            Ok(())
        }),
        "user_preferences" | "user_affinity" => Box::new(|rows: &Rows| {
            let users = rows.ints("user_id")?;
            ensure(users.contains(&WARM_USER), || {
                format!("no rows for the warm user {WARM_USER}: {users:?}")
            })
        }),
        "search_analytics" => Box::new(|rows: &Rows| {
            let queries = rows.texts("query")?;
            ensure(queries.iter().any(|q| q == "usb cable"), || {
                format!("the tracked search is missing: {queries:?}")
            })
        }),
        v if EXPECTED_VIEWS.contains(&v) => {
            Box::new(|rows: &Rows| ensure(rows.len() > 0, || "no rows".into()))
        }
        _ => Box::new(|_: &Rows| Ok(())),
    }
}

/// Runs every entry point as the first statement of a new connection; returns the failures as
/// "server: entry point: error" lines.
fn exercise(server: &str, cfg: &Config, points: &[EntryPoint]) -> Vec<String> {
    let mut failures = Vec::new();
    for p in points {
        let outcome =
            first_statement(cfg, &p.name, &p.sql).and_then(|rows| (p.check)(&rows).map(|()| rows));
        match outcome {
            Ok(rows) => println!("  ok   {server}: {} ({} rows)", p.name, rows.len()),
            Err(e) => {
                println!("  FAIL {server}: {}: {e}", p.name);
                failures.push(format!("{server}: {} [{}]: {e}", p.name, p.sql));
            }
        }
    }
    failures
}

#[test]
fn read_entry_points_work_first_in_a_new_connection_on_primary_and_hot_standby() {
    let database = TestDatabase::create();
    let mut primary = primary_config()
        .connect(NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {DB} on the primary: {e}"));
    set_up(&mut primary);

    // every view of the schema, the expected ones included
    let views: Vec<String> = primary
        .query(
            "SELECT viewname::text FROM pg_views WHERE schemaname = 'popularity_engine' ORDER BY 1",
            &[],
        )
        .expect("pg_views")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<&str> = EXPECTED_VIEWS
        .iter()
        .copied()
        .filter(|v| !views.iter().any(|w| w == v))
        .collect();
    assert!(
        missing.is_empty(),
        "views missing from schema popularity_engine: {missing:?} (has {views:?})"
    );

    let mut points = entry_points();
    for view in &views {
        points.push(EntryPoint {
            name: format!("view {view}"),
            sql: format!("SELECT * FROM popularity_engine.\"{view}\""),
            check: view_check(view),
        });
    }

    let standby = Standby::start(&mut primary);
    let lsn: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .unwrap()
        .get(0);
    standby.wait_for_replay(&lsn);
    {
        let mut s = standby.admin();
        let row = s
            .query_one(
                "SELECT pg_is_in_recovery(), current_setting('shared_preload_libraries'),
                        (SELECT count(*) FROM pg_extension WHERE extname = 'popularity_engine')",
                &[],
            )
            .expect("checking the standby");
        assert!(row.get::<_, bool>(0), "the standby is not in recovery");
        let preload: String = primary
            .query_one("SHOW shared_preload_libraries", &[])
            .unwrap()
            .get(0);
        assert_eq!(
            row.get::<_, String>(1),
            preload,
            "the standby's shared_preload_libraries differ from the primary's"
        );
        assert_eq!(
            row.get::<_, i64>(2),
            1,
            "the extension has not reached the standby"
        );
    }
    drop(primary);

    // whether a new backend has the library's settings before anything loads it (informational:
    // with the library not preloaded it has none, which is the situation tested)
    if let Ok(mut c) = fresh(&primary_config(), "the settings probe") {
        if let Ok(row) = c.query_one(
            "SELECT count(*) FROM pg_settings WHERE name LIKE 'popularity\\_engine.%'",
            &[],
        ) {
            println!(
                "read_entry_points: a new backend sees {} popularity_engine.* settings before the library loads",
                row.get::<_, i64>(0)
            );
        }
    }

    println!(
        "read_entry_points: {} entry points, each first in a new connection",
        points.len()
    );
    let mut failures = exercise("primary", &primary_config(), &points);
    failures.extend(exercise("standby", &standby_config(standby.port), &points));

    drop(standby);
    drop(database);
    assert!(
        failures.is_empty(),
        "{} read entry point call(s) failed as the first statement of a new connection:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
