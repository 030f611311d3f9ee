//! SPI helpers: statements prepared once per backend and reused (the tracking hot path), and
//! raising a validation `Rejection` as a Postgres ERROR with its SQLSTATE.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::pg_sys::PgOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};

use crate::validation::{Rejection, Sqlstate};

thread_local! {
    /// Plans keyed by their SQL text. Postgres' plan cache re-plans them after DDL, so they stay
    /// valid across ALTER/DROP+CREATE EXTENSION within one backend.
    static PLANS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

/// Runs `sql` with `args`, preparing it on first use in this backend. Every statement here is
/// fully schema-qualified, so the plan does not depend on the caller's search_path.
pub fn run_cached<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &'static str,
    arg_types: &[PgOid],
    args: &[DatumWithOid],
) -> SpiTupleTable<'conn> {
    let plan = PLANS.with(|plans| plans.borrow().get(sql).cloned());
    let plan = match plan {
        Some(plan) => plan,
        None => {
            let prepared = client
                .prepare_mut(sql, arg_types)
                .unwrap_or_else(|e| panic!("preparing an internal statement failed: {e}"))
                .keep();
            let prepared = Rc::new(prepared);
            PLANS.with(|plans| plans.borrow_mut().insert(sql, prepared.clone()));
            prepared
        }
    };
    client
        .update(&*plan, None, args)
        .unwrap_or_else(|e| panic!("an internal statement failed: {e}"))
}

/// Raises `rejection` as an ERROR (22023 or 23502) from `function`.
pub fn raise(function: &'static str, rejection: Rejection) -> ! {
    let code = match rejection.sqlstate {
        Sqlstate::InvalidParameterValue => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        Sqlstate::NotNullViolation => PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION,
    };
    let mut report = ErrorReport::new(code, format!("{function}: {}", rejection.message), function);
    if let Some(hint) = rejection.hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

pub fn oid(builtin: pg_sys::PgBuiltInOids) -> PgOid {
    PgOid::BuiltIn(builtin)
}
