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

/// Gives the calling transaction its id now, before the tracking statement draws a log id:
/// a refresh that finds the id sequences unchanged since its stored snapshot concludes that no
/// row was written since, which holds only if every row's transaction already had its id (and
/// so was running, or finished, in that snapshot) when the row's id was drawn. On a hot standby
/// nothing is assigned: the INSERT that follows fails with the usual read-only error.
pub fn assign_id_before_log_ids() {
    unsafe {
        if !pg_sys::RecoveryInProgress() {
            pg_sys::GetTopTransactionId();
        }
    }
}
