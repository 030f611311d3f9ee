//! Property test: thousands of random events, valid and invalid, fed to track() and
//! track_batch(). An independent model of the documented rules predicts which are valid; valid ones
//! must be stored, invalid ones must raise the predicted SQLSTATE and store nothing.

use pgrx_test::{count, fresh_extension, sqlstate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const TYPES: [&str; 20] = [
    "view",
    "product_view",
    "page_view",
    "click",
    "search_click",
    "search",
    "wishlist",
    "wishlist_add",
    "wishlist_remove",
    "add_to_cart",
    "cart_add",
    "remove_from_cart",
    "cart_remove",
    "update_cart_quantity",
    "cart_update",
    "purchase",
    "order",
    "review",
    "login",
    "logout",
];

#[derive(Clone, Debug)]
struct Event {
    user_id: Option<i64>,
    product_id: Option<i64>,
    itype: &'static str,
    value: Option<f64>,
    metadata: Option<Value>,
    /// Offset from now in seconds, or None for "now".
    offset_secs: Option<i64>,
    infinite_time: bool,
}

/// The SQLSTATEs the documented rules allow for this event: empty when it is valid.
fn violations(e: &Event) -> Vec<&'static str> {
    const INVALID: &str = "22023";
    const MISSING: &str = "23502";
    let mut v = Vec::new();
    let state = matches!(
        e.itype,
        "wishlist"
            | "add_to_cart"
            | "remove_from_cart"
            | "update_cart_quantity"
            | "purchase"
            | "order"
    );
    if matches!(e.user_id, Some(u) if u <= 0) || matches!(e.product_id, Some(p) if p <= 0) {
        v.push(INVALID);
    }
    if state && e.user_id.is_none() {
        v.push(MISSING);
    }
    match e.itype {
        "page_view" | "search" => {}
        "login" | "logout" => {
            if e.product_id.is_some() {
                v.push(INVALID)
            }
        }
        _ => {
            if e.product_id.is_none() {
                v.push(MISSING)
            }
        }
    }
    let (lo, hi, default) = match e.itype {
        "wishlist" => (0.0, 1.0, true),
        "add_to_cart" => (1.0, 1e6, true),
        "remove_from_cart" => (0.0, 1e6, true),
        "update_cart_quantity" => (0.0, 1e6, false),
        "review" => (1.0, 5.0, false),
        _ => (1.0, 1.0, true),
    };
    match e.value {
        None if !default => v.push(MISSING),
        None => {}
        Some(x) if !(x.is_finite() && x >= lo && x <= hi && x.fract() == 0.0) => v.push(INVALID),
        Some(_) => {}
    }
    if let Some(m) = &e.metadata {
        if !m.is_object() {
            v.push(INVALID);
        }
    }
    if e.itype == "search" {
        match e.metadata.as_ref().and_then(|m| m.get("search_query")) {
            None => v.push(MISSING),
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(_) => v.push(INVALID),
        }
    }
    if matches!(e.itype, "purchase" | "order") {
        if let Some(q) = e.metadata.as_ref().and_then(|m| m.get("quantity")) {
            if !matches!(q.as_i64(), Some(1..=1_000_000)) {
                v.push(INVALID);
            }
        }
    }
    if e.infinite_time || e.offset_secs.is_some_and(|s| s > 300) {
        v.push(INVALID);
    }
    v
}

fn random_event(rng: &mut StdRng) -> Event {
    let id = |rng: &mut StdRng| match rng.gen_range(0..10) {
        0 => None,
        1 => Some(0),
        2 => Some(-rng.gen_range(1..100)),
        _ => Some(rng.gen_range(1..500)),
    };
    let value = match rng.gen_range(0..12) {
        0..=3 => None,
        4 => Some(0.0),
        5 => Some(1.0),
        6 => Some(2.0),
        7 => Some(5.0),
        8 => Some(6.0),
        9 => Some(-1.0),
        10 => Some(1.5),
        _ => Some(f64::NAN),
    };
    let metadata = match rng.gen_range(0..10) {
        0..=3 => None,
        4 => Some(json!({})),
        5 => Some(json!({"search_query": "red shoes"})),
        6 => Some(json!({"search_query": ""})),
        7 => Some(json!([1, 2])),
        8 => Some(json!({"quantity": rng.gen_range(-1..3)})),
        _ => Some(json!({"page_path": "/", "search_query": 3})),
    };
    let (offset_secs, infinite_time) = match rng.gen_range(0..10) {
        0..=5 => (None, false),
        6 => (Some(-rng.gen_range(0..90 * 86400)), false),
        7 => (Some(rng.gen_range(0..200)), false),
        8 => (Some(rng.gen_range(400..100_000)), false),
        _ => (None, true),
    };
    Event {
        user_id: id(rng),
        product_id: id(rng),
        itype: TYPES[rng.gen_range(0..TYPES.len())],
        value,
        metadata,
        offset_secs,
        infinite_time,
    }
}

fn occurred_at_sql(e: &Event) -> Option<String> {
    if e.infinite_time {
        return Some("infinity".into());
    }
    e.offset_secs.map(|s| format!("{s} seconds"))
}

#[test]
fn random_events_through_track() {
    let mut c = fresh_extension();
    let mut rng = StdRng::seed_from_u64(20261121);
    let (mut valid, mut invalid) = (0i64, 0i64);
    for i in 0..3000 {
        let e = random_event(&mut rng);
        let expected = violations(&e);
        let when = occurred_at_sql(&e);
        let result = c.query_one(
            "SELECT popularity_engine.track($1, $2, $3::text::popularity_engine.interaction_type, $4,
                    $5::text::jsonb,
                    CASE WHEN $6::text = 'infinity' THEN 'infinity'::timestamptz
                         ELSE clock_timestamp() + $6::text::interval END)",
            &[&e.user_id, &e.product_id, &e.itype, &e.value, &e.metadata.as_ref().map(|m| m.to_string()), &when],
        );
        match (result, expected.is_empty()) {
            (Ok(_), true) => valid += 1,
            (Err(err), false) => {
                invalid += 1;
                let code = sqlstate(&err);
                assert!(
                    expected.contains(&code.as_str()),
                    "event {i} {e:?}: got {code} ({err}), expected one of {expected:?}"
                );
            }
            (Ok(_), false) => panic!("event {i} {e:?} was accepted but violates {expected:?}"),
            (Err(err), true) => panic!("event {i} {e:?} is valid but was rejected: {err}"),
        }
    }
    let stored = count(
        &mut c,
        "SELECT count(*) FROM popularity_engine.product_interactions",
    );
    println!("{valid} valid and {invalid} invalid events; {stored} stored");
    assert!(
        valid > 300 && invalid > 300,
        "the generator exercises both sides"
    );
    assert_eq!(stored, valid, "exactly the valid events are stored");
}

fn to_batch_json(e: &Event) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("type".into(), json!(e.itype));
    if let Some(u) = e.user_id {
        o.insert("user_id".into(), json!(u));
    }
    if let Some(p) = e.product_id {
        o.insert("product_id".into(), json!(p));
    }
    if let Some(v) = e.value {
        // JSON has no NaN: send it as a string, which the batch rejects as a non-number
        o.insert(
            "value".into(),
            if v.is_finite() {
                json!(v)
            } else {
                json!("NaN")
            },
        );
    }
    if let Some(m) = &e.metadata {
        o.insert("metadata".into(), m.clone());
    }
    Value::Object(o)
}

#[test]
fn random_batches_are_all_or_nothing() {
    let mut c = fresh_extension();
    let mut rng = StdRng::seed_from_u64(7);
    let mut expected_rows = 0i64;
    let (mut accepted, mut rejected) = (0, 0);
    for b in 0..400 {
        // mostly-valid batches: draw events until the batch has the wanted number of bad ones
        let len = rng.gen_range(1..12);
        let mut events: Vec<Event> = Vec::new();
        while events.len() < len {
            let e = random_event(&mut rng);
            let bad = !violations(&e).is_empty();
            if !bad || rng.gen_bool(0.04) {
                events.push(Event {
                    offset_secs: None,
                    infinite_time: false,
                    ..e
                });
            }
        }
        let first_bad = events.iter().position(|e| !violations(e).is_empty());
        let batch = Value::Array(events.iter().map(to_batch_json).collect());
        let before = count(
            &mut c,
            "SELECT count(*) FROM popularity_engine.product_interactions",
        );
        let result = c.query_one(
            "SELECT popularity_engine.track_batch($1::text::jsonb)",
            &[&batch.to_string()],
        );
        let after = count(
            &mut c,
            "SELECT count(*) FROM popularity_engine.product_interactions",
        );
        match (result, first_bad) {
            (Ok(row), None) => {
                accepted += 1;
                assert_eq!(
                    row.get::<_, i64>(0),
                    len as i64,
                    "batch {b}: returns how many were stored"
                );
                expected_rows += len as i64;
            }
            (Err(err), Some(i)) => {
                rejected += 1;
                let msg = err
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_default();
                assert!(
                    msg.contains(&format!("events[{i}]")),
                    "batch {b}: error names element {i}: {msg}"
                );
                assert_eq!(after, before, "batch {b}: a rejected batch stores nothing");
            }
            (Ok(_), Some(i)) => panic!("batch {b} accepted with bad element {i}: {:?}", events[i]),
            (Err(err), None) => panic!("batch {b} rejected but valid: {err}"),
        }
    }
    println!("{accepted} batches accepted, {rejected} rejected");
    assert!(accepted > 50 && rejected > 50);
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM popularity_engine.product_interactions"
        ),
        expected_rows
    );
}
