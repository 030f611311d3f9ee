//! What the maintenance procedures need to know about the transaction they run in.

use pgrx::prelude::*;

/// Whether the procedure that calls this may COMMIT: true when its CALL is not nested in a
/// transaction block, a function or another atomic context (pg_cron, psql in autocommit).
/// Postgres knows this from the SPI connection of the calling PL/pgSQL procedure.
#[pg_extern(volatile, parallel_unsafe)]
fn may_commit() -> bool {
    unsafe { pg_sys::SPI_inside_nonatomic_context() }
}
