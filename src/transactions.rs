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

/// Internal: the id the next transaction to get one will get (this one gets none).
#[pg_extern(volatile, parallel_unsafe)]
fn next_transaction_id() -> i64 {
    let next = unsafe { pg_sys::ReadNextFullTransactionId() };
    next.value as i64
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.next_transaction_id() IS
  'Internal: the transaction id the next transaction to get one will get (none is assigned to the caller).';"#,
    name = "next_transaction_id_comment",
    requires = [next_transaction_id]
);

/// Internal: whether every transaction id from `first` up to (not including) `end` is the calling
/// transaction's own or one of its subtransactions' (true for an empty range). A refresh that
/// runs in an exception block holds a subtransaction id next to its own.
#[pg_extern(volatile, parallel_unsafe)]
fn own_transaction_ids(first: i64, end: i64) -> bool {
    (first..end).all(|full| {
        // the low 32 bits are the transaction id (the range is a few recent ids)
        let xid = pg_sys::TransactionId::from_inner((full as u64 & 0xFFFF_FFFF) as u32);
        unsafe { pg_sys::TransactionIdIsCurrentTransactionId(xid) }
    })
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.own_transaction_ids(bigint, bigint) IS
  'Internal: whether every transaction id in [first, end) belongs to the calling transaction or one of its subtransactions.';"#,
    name = "own_transaction_ids_comment",
    requires = [own_transaction_ids]
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
