//! The one error type of the extension, and the one way an error reaches the client.
//!
//! * [`EngineError::Rejected`]: the caller's input broke a rule and nothing was written.
//!   SQLSTATE 22023 invalid_parameter_value ([`EngineError::invalid`]) or 23502
//!   not_null_violation for a missing required value ([`EngineError::missing`]), a message and
//!   sometimes a hint.
//! * [`EngineError::Spi`] and [`EngineError::NoValue`]: a statement the extension runs on its own
//!   objects failed inside SPI, or returned NULL (or no row) where the extension's own schema
//!   promises a value. Both are SQLSTATE 38000 external_routine_exception with a hint on what to
//!   check. (A Postgres ERROR raised by such a statement, e.g. a missing privilege, is not caught
//!   here: it reaches the client unchanged, with its own SQLSTATE.)
//!
//! The checks do not know which SQL function they serve (several entry points share them), so
//! the function's name is given once, when the error is reported: [`EngineError::report`]
//! prefixes it to the message, e.g. "popularity_engine.recommend: n = 0 is not allowed: expected
//! 1 to 1000".

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::SpiError;

/// Which rule a rejected input broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sqlstate {
    /// 22023 invalid_parameter_value
    InvalidParameterValue,
    /// 23502 not_null_violation: a required value is missing
    NotNullViolation,
}

/// Everything that can go wrong in a call into the extension.
#[derive(Debug, PartialEq)]
pub enum EngineError {
    /// Bad input; nothing was done.
    Rejected {
        sqlstate: Sqlstate,
        message: String,
        hint: Option<String>,
    },
    /// An internal statement failed while `doing` (e.g. "reading user preferences").
    Spi {
        doing: &'static str,
        cause: SpiError,
    },
    /// An internal statement returned NULL or no row for `column`, which it never should.
    NoValue {
        doing: &'static str,
        column: &'static str,
    },
}

/// Hint of both internal kinds.
const INTERNAL_HINT: &str = "Check that the extension is installed completely \
(ALTER EXTENSION popularity_engine UPDATE) and that its tables and functions were not changed by hand.";

impl EngineError {
    /// A value that is present but not allowed (22023).
    pub fn invalid(message: impl Into<String>) -> Self {
        EngineError::Rejected {
            sqlstate: Sqlstate::InvalidParameterValue,
            message: message.into(),
            hint: None,
        }
    }

    /// A required value that is NULL or absent (23502).
    pub fn missing(message: impl Into<String>) -> Self {
        EngineError::Rejected {
            sqlstate: Sqlstate::NotNullViolation,
            message: message.into(),
            hint: None,
        }
    }

    /// An internal statement that returned no value for `column` while `doing`.
    pub fn no_value(doing: &'static str, column: &'static str) -> Self {
        EngineError::NoValue { doing, column }
    }

    /// Adds a hint to a rejection (internal errors keep their fixed hint).
    pub fn with_hint(mut self, new_hint: impl Into<String>) -> Self {
        if let EngineError::Rejected { hint, .. } = &mut self {
            *hint = Some(new_hint.into());
        }
        self
    }

    /// Prefixes a rejection's message, e.g. with the index of a batch element.
    pub fn within(mut self, prefix: &str) -> Self {
        if let EngineError::Rejected { message, .. } = &mut self {
            *message = format!("{prefix}: {message}");
        }
        self
    }

    /// The kind of rejection; `None` for an internal error.
    pub fn rejection(&self) -> Option<Sqlstate> {
        match self {
            EngineError::Rejected { sqlstate, .. } => Some(*sqlstate),
            _ => None,
        }
    }

    /// The SQLSTATE the client sees.
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self.rejection() {
            Some(Sqlstate::InvalidParameterValue) => {
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
            }
            Some(Sqlstate::NotNullViolation) => PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION,
            None => PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
        }
    }

    /// The message the client sees, prefixed with the SQL function's name.
    pub fn message(&self, function: &str) -> String {
        match self {
            EngineError::Rejected { message, .. } => format!("{function}: {message}"),
            EngineError::Spi { doing, cause } => format!("{function}: {doing} failed: {cause}"),
            EngineError::NoValue { doing, column } => {
                format!("{function}: {doing} failed: it returned no {column}")
            }
        }
    }

    /// The hint the client sees, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            EngineError::Rejected { hint, .. } => hint.as_deref(),
            _ => Some(INTERNAL_HINT),
        }
    }

    /// Raises this error as a Postgres ERROR of `function` (its SQL name). Does not return.
    #[track_caller]
    pub fn report(self, function: &str) -> ! {
        let mut report =
            ErrorReport::new(self.sqlstate(), self.message(function), "popularity_engine");
        if let Some(hint) = self.hint() {
            report = report.set_hint(hint);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("an ERROR does not return")
    }
}

/// `result.or_report(function)`: the value, or the error raised as an ERROR of `function`.
pub trait OrReport<T> {
    fn or_report(self, function: &str) -> T;
}

impl<T> OrReport<T> for Result<T, EngineError> {
    #[track_caller]
    fn or_report(self, function: &str) -> T {
        match self {
            Ok(value) => value,
            Err(e) => e.report(function),
        }
    }
}

/// `spi_result.during("reading user preferences")`: an SPI failure as an [`EngineError::Spi`].
pub trait During<T> {
    fn during(self, doing: &'static str) -> Result<T, EngineError>;
}

impl<T> During<T> for Result<T, SpiError> {
    fn during(self, doing: &'static str) -> Result<T, EngineError> {
        self.map_err(|cause| EngineError::Spi { doing, cause })
    }
}

/// `row.get(1).required("reading the candidate products", "id")`: a column the statement never
/// returns NULL, or an [`EngineError`].
pub trait Required<T> {
    fn required(self, doing: &'static str, column: &'static str) -> Result<T, EngineError>;
}

impl<T> Required<T> for Result<Option<T>, SpiError> {
    fn required(self, doing: &'static str, column: &'static str) -> Result<T, EngineError> {
        self.during(doing)?
            .ok_or(EngineError::no_value(doing, column))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_keep_their_message_and_sqlstate() {
        let e = EngineError::missing("user_id is required").with_hint("Pass a user.");
        assert_eq!(
            e.message("popularity_engine.recommend"),
            "popularity_engine.recommend: user_id is required"
        );
        assert_eq!(e.sqlstate(), PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION);
        assert_eq!(e.hint(), Some("Pass a user."));
        let e = EngineError::invalid("n = 0 is not allowed").within("line 2");
        assert_eq!(e.message("f"), "f: line 2: n = 0 is not allowed");
        assert_eq!(
            e.sqlstate(),
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
        );
        assert_eq!(e.hint(), None);
    }

    #[test]
    fn internal_errors_say_what_failed_and_what_to_check() {
        let e: Result<i64, _> = Err(SpiError::NoTupleTable).during("reading user preferences");
        let e = e.unwrap_err();
        assert_eq!(
            e.message("popularity_engine.recommend"),
            "popularity_engine.recommend: reading user preferences failed: The active `SPI_tuptable` is NULL"
        );
        assert_eq!(
            e.sqlstate(),
            PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION
        );
        assert_eq!(e.hint(), Some(INTERNAL_HINT));
        let missing: Result<i64, _> = Ok(None).required("storing the interaction", "id");
        assert_eq!(
            missing.unwrap_err().message("popularity_engine.track"),
            "popularity_engine.track: storing the interaction failed: it returned no id"
        );
        // hints and prefixes belong to rejections only
        let e = EngineError::no_value("x", "id").with_hint("h").within("p");
        assert_eq!(e, EngineError::no_value("x", "id"));
    }
}
