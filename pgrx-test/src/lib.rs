//! Helpers for the integration tests: they run against the live cluster started by
//! scripts/test.sh (PE_TEST_URL), where pg_cron is preloaded.

use postgres::{Client, NoTls};

pub mod servers;

/// The connection string of the test cluster.
pub fn url() -> String {
    std::env::var("PE_TEST_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=28816 user=postgres dbname=pe_test".into())
}

pub fn connect() -> Client {
    Client::connect(&url(), NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot connect to {} ({e}); run the tests through scripts/test.sh",
            url()
        )
    })
}

/// A connection to a database where the extension is freshly created and empty.
pub fn fresh_extension() -> Client {
    let mut c = connect();
    c.batch_execute(
        "DROP EXTENSION IF EXISTS popularity_engine CASCADE;
         CREATE EXTENSION popularity_engine;",
    )
    .expect("CREATE EXTENSION popularity_engine");
    c
}

pub fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).expect(sql).get::<_, i64>(0)
}

/// The SQLSTATE of a failed statement ("" when the error did not come from the server).
pub fn sqlstate(e: &postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

/// Loads pg_temp.mismatches(as_of) (tests/reference/popularity_mismatches.sql): a brute-force
/// recount of the log straight from the documented formulas, compared with product_popularity.
pub fn load_reference(c: &mut Client) {
    c.batch_execute(include_str!(
        "../../tests/reference/popularity_mismatches.sql"
    ))
    .expect("loading the reference recount");
}

/// Products whose aggregates differ from the recount at the last refresh's as_of, as
/// "product: field" strings (empty when everything matches).
pub fn mismatches(c: &mut Client) -> Vec<String> {
    c.query(
        "SELECT m.product_id, m.what FROM popularity_engine.refresh_state r,
                LATERAL pg_temp.mismatches(r.as_of) m ORDER BY 1, 2",
        &[],
    )
    .expect("recount")
    .iter()
    .map(|r| format!("{}: {}", r.get::<_, i64>(0), r.get::<_, String>(1)))
    .collect()
}

pub fn refresh(c: &mut Client) {
    c.batch_execute("CALL popularity_engine.refresh_popularity()")
        .expect("refresh_popularity");
}
