//! Validation of one interaction against the SPEC's rules, free of any Postgres call so that it
//! can be tested exhaustively in plain Rust. Tracking entry points turn a `Rejection` into an
//! ERROR with its SQLSTATE; nothing is written for a rejected event.

use crate::interaction::{interaction_type, ProductRule};

/// Largest accepted `metadata`, measured as its JSON text.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Largest accepted `session_id` and search query.
pub const MAX_TEXT_BYTES: usize = 1024;
/// How far in the future an `occurred_at` may lie (clock skew between app servers), in µs.
pub const MAX_FUTURE_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sqlstate {
    /// 22023 invalid_parameter_value
    InvalidParameterValue,
    /// 23502 not_null_violation: a required value is missing
    NotNullViolation,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub sqlstate: Sqlstate,
    pub message: String,
    pub hint: Option<String>,
}

impl Rejection {
    fn invalid(message: String) -> Self {
        Rejection {
            sqlstate: Sqlstate::InvalidParameterValue,
            message,
            hint: None,
        }
    }
    fn missing(message: String) -> Self {
        Rejection {
            sqlstate: Sqlstate::NotNullViolation,
            message,
            hint: None,
        }
    }
    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// Prefixes the message, e.g. with the index of a batch element.
    pub fn within(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

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

pub fn check_positive_id(field: &str, id: Option<i64>, context: &str) -> Result<(), Rejection> {
    match id {
        Some(v) if v <= 0 => Err(Rejection::invalid(format!(
            "{field} {v} is not allowed{context}: ids must be positive integers"
        ))),
        _ => Ok(()),
    }
}

pub fn check_timestamp(field: &str, at: i64, now: i64) -> Result<(), Rejection> {
    if at == i64::MIN || at == i64::MAX {
        return Err(Rejection::invalid(format!(
            "{field} must be a finite timestamp, not infinity"
        )));
    }
    if at > now.saturating_add(MAX_FUTURE_SKEW_MICROS) {
        return Err(
            Rejection::invalid(format!("{field} lies more than 5 minutes in the future"))
                .with_hint(
                "Send the time the interaction happened, from a clock in sync with the database.",
            ),
        );
    }
    Ok(())
}

pub fn check_text(field: &str, text: &str) -> Result<(), Rejection> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Rejection::invalid(format!(
            "{field} is {} bytes long; at most {MAX_TEXT_BYTES} bytes are allowed",
            text.len()
        )));
    }
    Ok(())
}

/// Applies every rule of the SPEC's interaction table to one event. `now` is the current time
/// in the same unit as `occurred_at`; a missing `occurred_at` means `now`.
pub fn validate(itype: interaction_type, raw: RawEvent, now: i64) -> Result<ValidEvent, Rejection> {
    let label = itype.label();
    let of_type = format!(" for interaction type \"{label}\"");

    check_positive_id("user_id", raw.user_id, &of_type)?;
    check_positive_id("product_id", raw.product_id, &of_type)?;

    if raw.user_id.is_none() && itype.requires_user() {
        return Err(Rejection::missing(format!(
            "user_id is required{of_type}: it keeps per-user state, so anonymous events are not allowed"
        )));
    }

    match (itype.product_rule(), raw.product_id) {
        (ProductRule::Required, None) => {
            return Err(Rejection::missing(format!(
                "product_id is required{of_type}"
            )));
        }
        (ProductRule::Forbidden, Some(p)) => {
            return Err(Rejection::invalid(format!(
                "product_id must be NULL{of_type}, got {p}"
            )));
        }
        _ => {}
    }

    let rule = itype.value_rule();
    let event_value = match raw.event_value {
        None => rule.default.ok_or_else(|| {
            Rejection::missing(format!(
                "event_value is required{of_type}: expected {}",
                rule.allowed
            ))
        })?,
        Some(v) => {
            let in_range = v.is_finite() && v >= rule.min && v <= rule.max;
            let integral = !rule.integer || v.fract() == 0.0;
            if !(in_range && integral) {
                return Err(Rejection::invalid(format!(
                    "event_value {v} is not allowed{of_type}: expected {}",
                    rule.allowed
                )));
            }
            v
        }
    };

    if let Some(meta) = &raw.metadata {
        if !meta.is_object() {
            return Err(Rejection::invalid(format!(
                "metadata must be a JSON object{of_type}, got a JSON {}",
                json_kind(meta)
            )));
        }
        let size = serde_json::to_string(meta)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if size > MAX_METADATA_BYTES {
            return Err(Rejection::invalid(format!(
                "metadata is {size} bytes{of_type}; at most {MAX_METADATA_BYTES} bytes are allowed"
            )));
        }
    }
    if itype.requires_search_query() {
        match raw.metadata.as_ref().and_then(|m| m.get("search_query")) {
            None | Some(serde_json::Value::Null) => {
                return Err(Rejection::missing(format!(
                    "metadata.search_query is required{of_type}"
                ))
                .with_hint(
                    "Pass the search term, e.g. metadata => '{\"search_query\": \"laptop\"}'.",
                ));
            }
            Some(serde_json::Value::String(q)) if !q.trim().is_empty() => {}
            Some(_) => {
                return Err(Rejection::invalid(format!(
                    "metadata.search_query must be a non-empty string{of_type}"
                )));
            }
        }
    }

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

/// The purchased quantity (`metadata.quantity`, default 1) and order reference
/// (`metadata.order_ref`) of a purchase/order event.
pub fn purchase_line(
    metadata: Option<&serde_json::Value>,
) -> Result<(i32, Option<String>), Rejection> {
    let quantity = match metadata.and_then(|m| m.get("quantity")) {
        None | Some(serde_json::Value::Null) => 1,
        Some(q) => match q.as_i64() {
            Some(n) if (1..=1_000_000).contains(&n) => n as i32,
            _ => {
                return Err(Rejection::invalid(format!(
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
            return Err(Rejection::invalid(format!(
                "metadata.order_ref must be a string, got {other}"
            )))
        }
    };
    Ok((quantity, order_ref))
}

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

    fn state(r: Result<ValidEvent, Rejection>) -> Result<f64, Sqlstate> {
        r.map(|e| e.event_value).map_err(|e| e.sqlstate)
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
}
