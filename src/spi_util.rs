//! SPI helpers: statements prepared once per backend and reused (the tracking hot path), and
//! reading the single value of a one-row result. Failures come back as `EngineError`s that say
//! what was being done.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::datum::{DatumWithOid, FromDatum, IntoDatum};
use pgrx::pg_sys::PgOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};

use crate::error::{During, EngineError, Required};

thread_local! {
    /// Plans keyed by their SQL text and whether they may write. Postgres' plan cache re-plans
    /// them after DDL, so they stay valid across ALTER/DROP+CREATE EXTENSION within one backend.
    static PLANS: RefCell<HashMap<(&'static str, bool), Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

/// The plan kept for (`sql`, `mutating`), prepared by `prepare` on first use in this backend.
fn kept_plan(
    sql: &'static str,
    mutating: bool,
    prepare: impl FnOnce() -> Result<OwnedPreparedStatement, EngineError>,
) -> Result<Rc<OwnedPreparedStatement>, EngineError> {
    let key = (sql, mutating);
    if let Some(plan) = PLANS.with(|plans| plans.borrow().get(&key).cloned()) {
        return Ok(plan);
    }
    let plan = Rc::new(prepare()?);
    PLANS.with(|plans| plans.borrow_mut().insert(key, plan.clone()));
    Ok(plan)
}

/// Runs `sql` with `args`, preparing it on first use in this backend; `doing` names the step in
/// an error ("storing the interaction"). Every statement here is fully schema-qualified, so the
/// plan does not depend on the caller's search_path.
pub fn run_cached<'conn>(
    client: &mut SpiClient<'conn>,
    doing: &'static str,
    sql: &'static str,
    arg_types: &[PgOid],
    args: &[DatumWithOid],
) -> Result<SpiTupleTable<'conn>, EngineError> {
    let plan = kept_plan(sql, true, || {
        Ok(client.prepare_mut(sql, arg_types).during(doing)?.keep())
    })?;
    client.update(&*plan, None, args).during(doing)
}

/// The first column of the first row of `table`: `None` when there is no row or the value is
/// NULL.
pub fn first_value<T: FromDatum + IntoDatum>(
    table: SpiTupleTable,
    doing: &'static str,
) -> Result<Option<T>, EngineError> {
    if table.is_empty() {
        return Ok(None);
    }
    table.first().get_one::<T>().during(doing)
}

/// Runs a read-only query through a plan kept for the backend (prepared on first use, parameter
/// types taken from `args`), so that a statement run on every call plans once instead of every
/// time. For statements whose best plan does not depend on the parameters' values: after five
/// runs Postgres' plan cache settles on one generic plan. Schema-qualified SQL only, as in
/// `run_cached`.
pub fn rows_kept<'c>(
    client: &SpiClient<'c>,
    doing: &'static str,
    sql: &'static str,
    args: &[DatumWithOid],
) -> Result<SpiTupleTable<'c>, EngineError> {
    let plan = kept_plan(sql, false, || {
        let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
        Ok(client.prepare(sql, &types).during(doing)?.keep())
    })?;
    client.select(&*plan, None, args).during(doing)
}

/// The product ids in the first column of a `rows_kept` query's rows.
pub fn ids_kept(
    client: &SpiClient,
    doing: &'static str,
    sql: &'static str,
    args: &[DatumWithOid],
) -> Result<Vec<i64>, EngineError> {
    product_ids(rows_kept(client, doing, sql, args)?, doing)
}

/// Runs a read-only query; `doing` names the step in an error.
pub fn rows<'c>(
    client: &SpiClient<'c>,
    doing: &'static str,
    sql: &str,
    args: &[DatumWithOid],
) -> Result<SpiTupleTable<'c>, EngineError> {
    client.select(sql, None, args).during(doing)
}

/// The product ids in the first column of `table`.
fn product_ids(table: SpiTupleTable, doing: &'static str) -> Result<Vec<i64>, EngineError> {
    table
        .map(|r| r.get::<i64>(1).required(doing, "product_id"))
        .collect()
}

pub fn oid(builtin: pg_sys::PgBuiltInOids) -> PgOid {
    PgOid::BuiltIn(builtin)
}
