//! Identity of the cluster, so that aggregation state restored from another cluster (where
//! transaction ids mean something else) is noticed and re-anchored.

use std::cell::Cell;

use pgrx::prelude::*;

use crate::error::{During, EngineError};

/// The cluster's system identifier (pg_control), the same on physical replicas, different after
/// initdb, pg_upgrade or a logical restore into another cluster; refresh_state remembers it to
/// notice a restore into another cluster.
#[pg_extern(stable, parallel_safe)]
fn system_identifier() -> i64 {
    unsafe { pg_sys::GetSystemIdentifier() as i64 }
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.system_identifier() IS
  'The cluster''s system identifier; refresh_state remembers it to notice a restore into another cluster.';"#,
    name = "system_identifier_comment",
    requires = [system_identifier]
);

thread_local! {
    static CHECKED: Cell<bool> = const { Cell::new(false) };
}

/// Makes sure the refresh state belongs to this cluster before a tracking call writes a row.
/// Checked once per backend; a backend that performed the rebase checks again next time, in case
/// its transaction rolled the rebase back.
pub fn ensure_same_cluster() -> Result<(), EngineError> {
    if CHECKED.with(Cell::get) {
        return Ok(());
    }
    let rebased = Spi::get_one::<bool>("SELECT popularity_engine.rebase_if_restored()")
        .during("checking the cluster identity")?
        .unwrap_or(false);
    if !rebased {
        CHECKED.with(|c| c.set(true));
    }
    Ok(())
}
