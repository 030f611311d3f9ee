//! `#[pg_test]` tests: each runs inside a transaction that is rolled back, so they check what
//! one session sees. Cross-session behaviour is tested in pgrx-test/ and tests/isolation/.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap_or(0)
    }

    #[pg_test]
    fn track_stores_one_row_and_returns_its_id() {
        let id = Spi::get_one::<i64>("SELECT popularity_engine.track(1, 2, 'view')")
            .unwrap()
            .unwrap();
        let stored = count(&format!(
            "SELECT count(*) FROM popularity_engine.product_interactions WHERE id = {id} AND event_value = 1"
        ));
        assert_eq!(stored, 1);
    }
}
