//! Validation of one interaction against the rules of its interaction type, and the checks of
//! other arguments shared by several functions (`n`, `user_id`). The checks make no Postgres call,
//! so they are tested exhaustively in plain Rust; entry points report a rejection
//! (`EngineError::Rejected`) as an ERROR with its SQLSTATE, and nothing is written for a rejected
//! event. `checked_limit` makes the `n` check callable from SQL.

use pgrx::prelude::*;

use crate::error::{EngineError, OrReport};
use crate::interaction::{interaction_type, ProductRule};

/// Largest accepted `metadata`, measured as its JSON text.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Largest accepted `session_id` and search query.
pub const MAX_TEXT_BYTES: usize = 1024;
/// How far in the future an `occurred_at` may lie (clock skew between app servers), in µs.
pub const MAX_FUTURE_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// An event as a caller handed it over. Timestamps are Postgres microseconds since 2000-01-01;
/// `i64::MIN`/`i64::MAX` are -infinity/infinity.
#[derive(Clone, Debug, Default)]
pub struct RawEvent {
    pub user_id: Option<i64>,
    pub product_id: Option<i64>,
    pub event_value: Option<f64>,
    pub metadata: Option<serde_json::Value>,
    pub occurred_at: Option<i64>,
    pub session_id: Option<String>,
}

/// An event that passed every rule, with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidEvent {
    pub user_id: Option<i64>,
    pub product_id: Option<i64>,
    pub itype: interaction_type,
    pub event_value: f64,
    pub metadata: Option<serde_json::Value>,
    pub occurred_at: i64,
    pub session_id: Option<String>,
}

pub fn check_positive_id(field: &str, id: Option<i64>, context: &str) -> Result<(), EngineError> {
    match id {
        Some(v) if v <= 0 => Err(EngineError::invalid(format!(
            "{field} {v} is not allowed{context}: ids must be positive integers"
        ))),
        _ => Ok(()),
    }
}

pub fn check_timestamp(field: &str, at: i64, now: i64) -> Result<(), EngineError> {
    if at == i64::MIN || at == i64::MAX {
        return Err(EngineError::invalid(format!(
            "{field} must be a finite timestamp, not infinity"
        )));
    }
    if at > now.saturating_add(MAX_FUTURE_SKEW_MICROS) {
        return Err(EngineError::invalid(format!(
            "{field} lies more than 5 minutes in the future"
        ))
        .with_hint(
            "Send the time the interaction happened, from a clock in sync with the database.",
        ));
    }
    Ok(())
}

pub fn check_text(field: &str, text: &str) -> Result<(), EngineError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(EngineError::invalid(format!(
            "{field} is {} bytes long; at most {MAX_TEXT_BYTES} bytes are allowed",
            text.len()
        )));
    }
    Ok(())
}

/// Applies every rule of the interaction table (interaction.rs) to one event. `now` is the current time
/// in the same unit as `occurred_at`; a missing `occurred_at` means `now`.
pub fn validate(
    itype: interaction_type,
    raw: RawEvent,
    now: i64,
) -> Result<ValidEvent, EngineError> {
    let label = itype.label();
    let of_type = format!(" for interaction type \"{label}\"");

    check_positive_id("user_id", raw.user_id, &of_type)?;
    check_positive_id("product_id", raw.product_id, &of_type)?;

    if raw.user_id.is_none() && itype.requires_user() {
        return Err(EngineError::missing(format!(
            "user_id is required{of_type}: it keeps per-user state, so anonymous events are not allowed"
        )));
    }

    match (itype.product_rule(), raw.product_id) {
        (ProductRule::Required, None) => {
            return Err(EngineError::missing(format!(
                "product_id is required{of_type}"
            )));
        }
        (ProductRule::Forbidden, Some(p)) => {
            return Err(EngineError::invalid(format!(
                "product_id must be NULL{of_type}, got {p}"
            )));
        }
        _ => {}
    }

    let event_value = check_value(itype, raw.event_value, &of_type)?;
    check_metadata(itype, raw.metadata.as_ref(), &of_type)?;

    if itype.state_sync() == crate::interaction::StateSync::Purchase {
        purchase_line(raw.metadata.as_ref())
            .map_err(|r| r.within(&format!("interaction type \"{label}\"")))?;
    }

    let occurred_at = raw.occurred_at.unwrap_or(now);
    check_timestamp("occurred_at", occurred_at, now)?;
    if let Some(s) = &raw.session_id {
        check_text("session_id", s)?;
    }

    Ok(ValidEvent {
        user_id: raw.user_id,
        product_id: raw.product_id,
        itype,
        event_value,
        metadata: raw.metadata,
        occurred_at,
        session_id: raw.session_id,
    })
}

/// The event value, or the type's default for NULL.
fn check_value(
    itype: interaction_type,
    value: Option<f64>,
    of_type: &str,
) -> Result<f64, EngineError> {
    let rule = itype.value_rule();
    let Some(v) = value else {
        return rule.default.ok_or_else(|| {
            EngineError::missing(format!(
                "event_value is required{of_type}: expected {}",
                rule.allowed
            ))
        });
    };
    let in_range = v.is_finite() && v >= rule.min && v <= rule.max;
    let integral = !rule.integer || v.fract() == 0.0;
    if !(in_range && integral) {
        return Err(EngineError::invalid(format!(
            "event_value {v} is not allowed{of_type}: expected {}",
            rule.allowed
        )));
    }
    Ok(v)
}

/// A JSON object of limited size; a search must name its search_query.
fn check_metadata(
    itype: interaction_type,
    metadata: Option<&serde_json::Value>,
    of_type: &str,
) -> Result<(), EngineError> {
    if let Some(meta) = metadata {
        if !meta.is_object() {
            return Err(EngineError::invalid(format!(
                "metadata must be a JSON object{of_type}, got a JSON {}",
                json_kind(meta)
            )));
        }
        let size = serde_json::to_string(meta)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if size > MAX_METADATA_BYTES {
            return Err(EngineError::invalid(format!(
                "metadata is {size} bytes{of_type}; at most {MAX_METADATA_BYTES} bytes are allowed"
            )));
        }
    }
    if itype.requires_search_query() {
        match metadata.and_then(|m| m.get("search_query")) {
            None | Some(serde_json::Value::Null) => {
                return Err(EngineError::missing(format!(
                    "metadata.search_query is required{of_type}"
                ))
                .with_hint(
                    "Pass the search term, e.g. metadata => '{\"search_query\": \"laptop\"}'.",
                ));
            }
            Some(serde_json::Value::String(q)) if !q.trim().is_empty() => {}
            Some(_) => {
                return Err(EngineError::invalid(format!(
                    "metadata.search_query must be a non-empty string{of_type}"
                )));
            }
        }
    }
    Ok(())
}

/// The purchased quantity (`metadata.quantity`, default 1) and order reference
/// (`metadata.order_ref`) of a purchase/order event.
pub fn purchase_line(
    metadata: Option<&serde_json::Value>,
) -> Result<(i32, Option<String>), EngineError> {
    let quantity = match metadata.and_then(|m| m.get("quantity")) {
        None | Some(serde_json::Value::Null) => 1,
        Some(q) => match q.as_i64() {
            Some(n) if (1..=1_000_000).contains(&n) => n as i32,
            _ => {
                return Err(EngineError::invalid(format!(
                    "metadata.quantity {q} is not allowed: expected an integer from 1 to 1000000"
                )))
            }
        },
    };
    let order_ref = match metadata.and_then(|m| m.get("order_ref")) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => {
            check_text("metadata.order_ref", s)?;
            Some(s.clone())
        }
        Some(other) => {
            return Err(EngineError::invalid(format!(
                "metadata.order_ref must be a string, got {other}"
            )))
        }
    };
    Ok((quantity, order_ref))
}

/// `n`, the length of a result list, when 1 <= n <= `max_n`. The one check behind every `n`
/// argument: recommend() (through check_n in ranking.rs) and, through the SQL function
/// `popularity_engine.checked_limit`, similar_products() and popular_products().
pub fn check_limit(n: Option<i32>, max_n: i32) -> Result<i32, EngineError> {
    match n {
        Some(n) if (1..=max_n).contains(&n) => Ok(n),
        _ => Err(EngineError::invalid(format!(
            "n = {} is not allowed: expected 1 to {max_n}",
            n.map_or_else(|| "NULL".to_string(), |v| v.to_string())
        ))),
    }
}

/// A required, positive user id.
pub fn check_user(user_id: Option<i64>) -> Result<i64, EngineError> {
    match user_id {
        Some(u) if u > 0 => Ok(u),
        Some(u) => Err(EngineError::invalid(format!(
            "user_id {u} is not allowed: ids must be positive integers"
        ))),
        None => Err(EngineError::missing("user_id is required")),
    }
}

/// Checks the `n` argument of the SQL read functions: `n` when 1 <= n <= `max_n`, else an
/// invalid_parameter_value error naming `caller`.
#[pg_extern(immutable, parallel_safe)]
fn checked_limit(n: Option<i32>, max_n: Option<i32>, caller: Option<&str>) -> i32 {
    // (max_n and caller are Option only so that a NULL is an error, not a crash)
    const F: &str = "popularity_engine.checked_limit";
    let (Some(max_n), Some(caller)) = (max_n, caller) else {
        EngineError::missing("max_n and caller are required").report(F)
    };
    check_limit(n, max_n).or_report(caller)
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.checked_limit(integer, integer, text) IS
  'Internal: n when 1 <= n <= max_n, else an invalid_parameter_value error naming the caller.';"#,
    name = "checked_limit_comment",
    requires = [checked_limit]
);

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Sqlstate;
    use interaction_type as T;

    const NOW: i64 = 800_000_000_000_000;

    fn ev(user: Option<i64>, product: Option<i64>, value: Option<f64>) -> RawEvent {
        RawEvent {
            user_id: user,
            product_id: product,
            event_value: value,
            ..Default::default()
        }
    }

    fn state(r: Result<ValidEvent, EngineError>) -> Result<f64, Sqlstate> {
        r.map(|e| e.event_value)
            .map_err(|e| e.rejection().expect("a rejection, not an internal error"))
    }

    #[test]
    fn defaults_per_type() {
        use Sqlstate::*;
        assert_eq!(
            state(validate(T::view, ev(None, Some(1), None), NOW)),
            Ok(1.0)
        );
        assert_eq!(
            state(validate(T::add_to_cart, ev(Some(1), Some(1), None), NOW)),
            Ok(1.0)
        );
        assert_eq!(
            state(validate(
                T::remove_from_cart,
                ev(Some(1), Some(1), None),
                NOW
            )),
            Ok(1.0)
        );
        assert_eq!(
            state(validate(T::wishlist, ev(Some(1), Some(1), None), NOW)),
            Ok(1.0)
        );
        assert_eq!(
            state(validate(
                T::update_cart_quantity,
                ev(Some(1), Some(1), None),
                NOW
            )),
            Err(NotNullViolation)
        );
        assert_eq!(
            state(validate(T::review, ev(None, Some(1), None), NOW)),
            Err(NotNullViolation)
        );
    }

    #[test]
    fn value_ranges() {
        use Sqlstate::*;
        let v = |t, x: f64| state(validate(t, ev(Some(1), Some(1), Some(x)), NOW));
        assert_eq!(v(T::review, 5.0), Ok(5.0));
        assert_eq!(v(T::review, 0.0), Err(InvalidParameterValue));
        assert_eq!(v(T::review, 4.5), Err(InvalidParameterValue));
        assert_eq!(v(T::add_to_cart, 0.0), Err(InvalidParameterValue));
        assert_eq!(v(T::add_to_cart, 3.0), Ok(3.0));
        assert_eq!(v(T::remove_from_cart, 0.0), Ok(0.0));
        assert_eq!(v(T::update_cart_quantity, -1.0), Err(InvalidParameterValue));
        assert_eq!(v(T::wishlist, 2.0), Err(InvalidParameterValue));
        assert_eq!(v(T::purchase, 19.99), Err(InvalidParameterValue));
        assert_eq!(v(T::view, f64::NAN), Err(InvalidParameterValue));
        assert_eq!(v(T::add_to_cart, f64::INFINITY), Err(InvalidParameterValue));
    }

    #[test]
    fn product_and_user_rules() {
        use Sqlstate::*;
        assert_eq!(
            state(validate(T::login, ev(Some(1), Some(2), None), NOW)),
            Err(InvalidParameterValue)
        );
        assert_eq!(
            state(validate(T::login, ev(Some(1), None, None), NOW)),
            Ok(1.0)
        );
        assert_eq!(
            state(validate(T::click, ev(Some(1), None, None), NOW)),
            Err(NotNullViolation)
        );
        assert_eq!(
            state(validate(T::page_view, ev(None, None, None), NOW)),
            Ok(1.0)
        );
        assert_eq!(
            state(validate(T::order, ev(None, Some(2), None), NOW)),
            Err(NotNullViolation)
        );
        assert_eq!(
            state(validate(T::view, ev(Some(0), Some(2), None), NOW)),
            Err(InvalidParameterValue)
        );
        assert_eq!(
            state(validate(T::view, ev(Some(1), Some(-2), None), NOW)),
            Err(InvalidParameterValue)
        );
    }

    #[test]
    fn metadata_and_search_rules() {
        use Sqlstate::*;
        let with_meta = |t, m: serde_json::Value| {
            state(validate(
                t,
                RawEvent {
                    metadata: Some(m),
                    ..ev(None, Some(1), None)
                },
                NOW,
            ))
        };
        assert_eq!(
            with_meta(T::view, serde_json::json!([1])),
            Err(InvalidParameterValue)
        );
        assert_eq!(
            with_meta(T::search, serde_json::json!({"search_query": "tv"})),
            Ok(1.0)
        );
        assert_eq!(
            with_meta(T::search, serde_json::json!({"search_query": " "})),
            Err(InvalidParameterValue)
        );
        assert_eq!(
            with_meta(T::search, serde_json::json!({"q": "tv"})),
            Err(NotNullViolation)
        );
        let big = "x".repeat(MAX_METADATA_BYTES);
        assert_eq!(
            with_meta(T::view, serde_json::json!({ "k": big })),
            Err(InvalidParameterValue)
        );
        assert_eq!(
            state(validate(T::search, ev(None, None, None), NOW)),
            Err(NotNullViolation)
        );
    }

    #[test]
    fn timestamps() {
        use Sqlstate::*;
        let at = |t: i64| {
            state(validate(
                T::view,
                RawEvent {
                    occurred_at: Some(t),
                    ..ev(None, Some(1), None)
                },
                NOW,
            ))
        };
        assert_eq!(at(NOW + MAX_FUTURE_SKEW_MICROS), Ok(1.0));
        assert_eq!(
            at(NOW + MAX_FUTURE_SKEW_MICROS + 1),
            Err(InvalidParameterValue)
        );
        assert_eq!(at(i64::MAX), Err(InvalidParameterValue));
        assert_eq!(at(i64::MIN), Err(InvalidParameterValue));
        assert_eq!(at(0), Ok(1.0));
    }

    #[test]
    fn limits() {
        assert_eq!(check_limit(Some(1), 1000), Ok(1));
        assert_eq!(check_limit(Some(1000), 1000), Ok(1000));
        let message = |n, max| match check_limit(n, max) {
            Err(EngineError::Rejected {
                sqlstate: Sqlstate::InvalidParameterValue,
                message,
                hint: None,
            }) => message,
            other => panic!("expected a 22023 rejection, got {other:?}"),
        };
        assert_eq!(
            message(Some(0), 1000),
            "n = 0 is not allowed: expected 1 to 1000"
        );
        assert_eq!(
            message(Some(1001), 1000),
            "n = 1001 is not allowed: expected 1 to 1000"
        );
        assert_eq!(
            message(Some(-5), 10000),
            "n = -5 is not allowed: expected 1 to 10000"
        );
        assert_eq!(
            message(None, 10000),
            "n = NULL is not allowed: expected 1 to 10000"
        );
        assert_eq!(message(Some(1), 0), "n = 1 is not allowed: expected 1 to 0");
    }

    #[test]
    fn users() {
        assert_eq!(check_user(Some(7)), Ok(7));
        assert_eq!(
            check_user(Some(0)),
            Err(EngineError::invalid(
                "user_id 0 is not allowed: ids must be positive integers"
            ))
        );
        assert_eq!(
            check_user(None),
            Err(EngineError::missing("user_id is required"))
        );
    }
}
