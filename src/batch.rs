//! Parsing of `track_batch(events jsonb)`: a JSON array of event objects. Every element is
//! checked before anything is written, and an error names the index of the offending element.

use pgrx::prelude::*;
use pgrx::Uuid;
use serde_json::Value;

use crate::error::EngineError;
use crate::interaction::interaction_type;
use crate::validation::{self, RawEvent, ValidEvent};

/// Largest batch accepted in one call; bigger ones should be split by the client.
pub const MAX_BATCH_EVENTS: usize = 100_000;

const KEYS: [&str; 8] = [
    "user_id",
    "product_id",
    "type",
    "value",
    "metadata",
    "occurred_at",
    "session_id",
    "event_id",
];

pub struct BatchEvent {
    pub event: ValidEvent,
    pub event_id: Option<Uuid>,
}

pub fn parse_batch(events: &Value, now: i64) -> Result<Vec<BatchEvent>, EngineError> {
    let Value::Array(items) = events else {
        return Err(EngineError::invalid(
            "events must be a JSON array of event objects",
        ));
    };
    if items.len() > MAX_BATCH_EVENTS {
        return Err(EngineError::invalid(format!(
            "events has {} elements; at most {MAX_BATCH_EVENTS} are allowed per call",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_event(item, now).map_err(|r| r.within(&format!("events[{i}]"))))
        .collect()
}

fn parse_event(item: &Value, now: i64) -> Result<BatchEvent, EngineError> {
    let Value::Object(obj) = item else {
        return Err(EngineError::invalid("each event must be a JSON object"));
    };
    if let Some(unknown) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(EngineError::invalid(format!(
            "unknown key \"{unknown}\"; allowed keys are {}",
            KEYS.join(", ")
        )));
    }
    let field = |k: &str| obj.get(k).filter(|v| !v.is_null());

    let itype = match field("type") {
        None => return Err(EngineError::missing("type is required")),
        Some(Value::String(label)) => interaction_type::from_label(label).ok_or_else(|| {
            EngineError::invalid(format!(
                "type \"{label}\" is not an interaction type; allowed: {}",
                interaction_type::ALL
                    .iter()
                    .map(|t| t.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?,
        Some(other) => {
            return Err(EngineError::invalid(format!(
                "type must be a string, got {other}"
            )))
        }
    };
    let event_value = match field("value") {
        None => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => {
            return Err(EngineError::invalid(format!(
                "value must be a number, got {other}"
            )))
        }
    };
    let metadata = field("metadata").cloned();
    let occurred_at = match field("occurred_at") {
        None => None,
        Some(Value::String(s)) => Some(parse_timestamp(s)?),
        Some(other) => {
            return Err(EngineError::invalid(format!(
                "occurred_at must be a timestamp string, got {other}"
            )))
        }
    };
    let session_id = match field("session_id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(EngineError::invalid(format!(
                "session_id must be a string, got {other}"
            )))
        }
    };
    let event_id = event_id_field(field("event_id"))?;
    let raw = RawEvent {
        user_id: id_field(field("user_id"), "user_id")?,
        product_id: id_field(field("product_id"), "product_id")?,
        event_value,
        metadata,
        occurred_at,
        session_id,
    };
    Ok(BatchEvent {
        event: validation::validate(itype, raw, now)?,
        event_id,
    })
}

/// Ids may come as JSON integers or, for clients that cannot hold 64-bit integers, as strings.
fn id_field(value: Option<&Value>, name: &str) -> Result<Option<i64>, EngineError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| EngineError::invalid(format!("{name} must be an integer, got {n}"))),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| EngineError::invalid(format!("{name} must be an integer, got \"{s}\""))),
        Some(other) => Err(EngineError::invalid(format!(
            "{name} must be an integer, got {other}"
        ))),
    }
}

/// An idempotency key: a UUID string.
fn event_id_field(value: Option<&Value>) -> Result<Option<Uuid>, EngineError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => parse_uuid(s)
            .map(Some)
            .ok_or_else(|| EngineError::invalid(format!("event_id \"{s}\" is not a UUID"))),
        Some(other) => Err(EngineError::invalid(format!(
            "event_id must be a UUID string, got {other}"
        ))),
    }
}

fn parse_timestamp(s: &str) -> Result<i64, EngineError> {
    use std::str::FromStr;
    TimestampWithTimeZone::from_str(s)
        .map(|t| t.into_inner())
        .map_err(|_| EngineError::invalid(format!("occurred_at \"{s}\" is not a valid timestamp")))
}

/// Accepts the canonical 8-4-4-4-12 form and 32 bare hex digits, in either case.
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let dashes_ok = s.len() == 32
        || (s.len() == 36 && [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-'));
    if hex.len() != 32 || !dashes_ok {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        assert!(parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").is_some());
        assert!(parse_uuid("A0EEBC999C0B4EF8BB6D6BB9BD380A11").is_some());
        assert!(parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1").is_none());
        assert!(parse_uuid("a0eebc99x9c0b-4ef8-bb6d-6bb9bd380a11").is_none());
        assert!(parse_uuid("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").is_none());
    }

    #[test]
    fn ids_accept_integers_and_integer_strings() {
        assert_eq!(
            id_field(Some(&serde_json::json!(7)), "user_id"),
            Ok(Some(7))
        );
        assert_eq!(
            id_field(Some(&serde_json::json!("7")), "user_id"),
            Ok(Some(7))
        );
        assert!(id_field(Some(&serde_json::json!(7.5)), "user_id").is_err());
        assert!(id_field(Some(&serde_json::json!(true)), "user_id").is_err());
    }

    #[test]
    fn event_ids_are_uuid_strings() {
        assert_eq!(event_id_field(None), Ok(None));
        assert!(event_id_field(Some(&serde_json::json!(
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        )))
        .is_ok_and(|id| id.is_some()));
        assert_eq!(
            event_id_field(Some(&serde_json::json!("not-a-uuid"))),
            Err(EngineError::invalid(
                r#"event_id "not-a-uuid" is not a UUID"#
            ))
        );
        assert_eq!(
            event_id_field(Some(&serde_json::json!(5))),
            Err(EngineError::invalid(
                "event_id must be a UUID string, got 5"
            ))
        );
    }
}
