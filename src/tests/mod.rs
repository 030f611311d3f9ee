//! `#[pg_test]` unit tests: they run inside a transaction that is rolled back.
use pgrx::prelude::*;

#[pg_test]
fn tracks_a_view() {
    let id = Spi::get_one::<i64>("SELECT popularity_engine.track(1, 2, 'view')").unwrap().unwrap();
    assert!(id > 0);
}
