//! What the maintenance procedures need to know about the transaction they run in.

use pgrx::prelude::*;

/// Internal: whether the procedure that calls this may COMMIT: true when its CALL is not nested in
/// a transaction block, a function or another atomic context (pg_cron, psql in autocommit).
/// Postgres knows this from the SPI connection of the calling PL/pgSQL procedure.
#[pg_extern(volatile, parallel_unsafe)]
fn may_commit() -> bool {
    unsafe { pg_sys::SPI_inside_nonatomic_context() }
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.may_commit() IS
  'Internal: whether the calling procedure may COMMIT (its CALL is not inside a transaction block or a function).';"#,
    name = "may_commit_comment",
    requires = [may_commit]
);
