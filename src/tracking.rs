//! Tracking entry points: validate in Rust, then one INSERT into the log (plus the user state
//! row for cart, wishlist and purchase types) in the caller's transaction. No per-product row is
//! touched here, so a hot product never serializes writers; aggregation happens in
//! refresh_popularity().

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::PgBuiltInOids as B;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::Value;

use crate::batch::{parse_batch, BatchEvent};
use crate::error::{EngineError, OrReport, Required};
use crate::interaction::{interaction_type, StateSync};
use crate::spi_util::{first_value, oid, run_cached};
use crate::transactions::assign_id_before_log_ids;
use crate::validation::{
    self, check_positive_id, check_text, check_timestamp, RawEvent, ValidEvent,
};

const INSERT_EVENT: &str = "\
INSERT INTO popularity_engine.product_interactions
    (user_id, product_id, interaction_type, event_value, occurred_at, session_id, metadata)
VALUES ($1, $2, $3::popularity_engine.interaction_type, $4, $5, $6, $7)
RETURNING id";

/// Claims the event_id first; the log row is written only when the claim is new.
const INSERT_KEYED_EVENT: &str = "\
WITH claim AS (
    INSERT INTO popularity_engine.interaction_event_ids (event_id, interaction_id)
    VALUES ($8, nextval('popularity_engine.product_interactions_id_seq'))
    ON CONFLICT (event_id) DO NOTHING
    RETURNING interaction_id)
INSERT INTO popularity_engine.product_interactions
    (id, user_id, product_id, interaction_type, event_value, occurred_at, session_id, metadata, event_id)
SELECT claim.interaction_id, $1, $2, $3::popularity_engine.interaction_type, $4, $5, $6, $7, $8
  FROM claim
RETURNING id";

const EXISTING_EVENT: &str =
    "SELECT interaction_id FROM popularity_engine.interaction_event_ids WHERE event_id = $1";

/// Stores a whole batch in one statement; returns (position, id) of the rows actually stored
/// (a repeated event_id, in the table or earlier in the batch, is skipped).
const INSERT_BATCH: &str = "\
WITH input AS (
    SELECT t.*, nextval('popularity_engine.product_interactions_id_seq') AS id
      FROM unnest($1::int8[], $2::int8[], $3::text[], $4::float8[], $5::timestamptz[],
                  $6::text[], $7::jsonb[], $8::uuid[])
           WITH ORDINALITY AS t(user_id, product_id, itype, event_value, occurred_at,
                                session_id, metadata, event_id, ord)
), claim AS (
    INSERT INTO popularity_engine.interaction_event_ids (event_id, interaction_id)
    SELECT event_id, id FROM input WHERE event_id IS NOT NULL ORDER BY ord
    ON CONFLICT (event_id) DO NOTHING
    RETURNING interaction_id
), stored AS (
    INSERT INTO popularity_engine.product_interactions
        (id, user_id, product_id, interaction_type, event_value, occurred_at, session_id, metadata, event_id)
    SELECT id, user_id, product_id, itype::popularity_engine.interaction_type, event_value,
           occurred_at, session_id, metadata, event_id
      FROM input
     WHERE event_id IS NULL OR id IN (SELECT interaction_id FROM claim)
     ORDER BY ord
    RETURNING id
)
SELECT input.ord, input.id FROM input JOIN stored ON stored.id = input.id ORDER BY input.ord";

const CART_ADD: &str = "\
INSERT INTO popularity_engine.user_cart AS c (user_id, product_id, quantity)
VALUES ($1, $2, $3)
ON CONFLICT (user_id, product_id) DO UPDATE
   SET quantity = LEAST(c.quantity::int8 + excluded.quantity, 2147483647)::int4, updated_at = now()";
const CART_SET: &str = "\
INSERT INTO popularity_engine.user_cart AS c (user_id, product_id, quantity)
VALUES ($1, $2, $3)
ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = excluded.quantity, updated_at = now()";
/// Removing at least what is in the cart (or 0 = everything) deletes the line.
const CART_REMOVE_LINE: &str = "\
DELETE FROM popularity_engine.user_cart
 WHERE user_id = $1 AND product_id = $2 AND ($3 = 0 OR quantity <= $3)";
const CART_DECREMENT: &str = "\
UPDATE popularity_engine.user_cart SET quantity = quantity - $3, updated_at = now()
 WHERE user_id = $1 AND product_id = $2 AND quantity > $3";
const WISHLIST_ADD: &str = "\
INSERT INTO popularity_engine.user_wishlist (user_id, product_id, added_at) VALUES ($1, $2, $3)
ON CONFLICT (user_id, product_id) DO NOTHING";
const WISHLIST_REMOVE: &str =
    "DELETE FROM popularity_engine.user_wishlist WHERE user_id = $1 AND product_id = $2";
const PURCHASE: &str = "\
INSERT INTO popularity_engine.purchase_history
    (user_id, product_id, quantity, order_ref, purchased_at, interaction_id)
VALUES ($1, $2, $3, $4, $5, $6)";

const INSERT_SEARCH: &str = "\
INSERT INTO popularity_engine.search_interactions
    (user_id, query, result_product_ids, occurred_at, session_id)
VALUES ($1, $2, $3, $4, $5)
RETURNING id";

const ORDER_EVENT_IDS: &str = "\
SELECT array_agg(md5(format('popularity_engine/order/%s/%s/%s', $1::int8, $2::text, i))::uuid ORDER BY i)
  FROM generate_series(1, $3::int4) AS i";

pub fn now_micros() -> i64 {
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// A validated time as a Postgres timestamptz (validated times are always in range).
pub fn timestamp(micros: i64) -> Result<TimestampWithTimeZone, EngineError> {
    TimestampWithTimeZone::try_from(micros)
        .map_err(|_| EngineError::invalid(format!("timestamp {micros} is out of range")))
}

fn micros(ts: Option<TimestampWithTimeZone>) -> Option<i64> {
    ts.map(|t| t.into_inner())
}

fn event_args(ev: &ValidEvent) -> Result<Vec<DatumWithOid<'static>>, EngineError> {
    Ok(vec![
        ev.user_id.into(),
        ev.product_id.into(),
        ev.itype.label().into(),
        ev.event_value.into(),
        timestamp(ev.occurred_at)?.into(),
        ev.session_id.clone().into(),
        ev.metadata.clone().map(JsonB).into(),
    ])
}

const EVENT_TYPES: [B; 7] = [
    B::INT8OID,
    B::INT8OID,
    B::TEXTOID,
    B::FLOAT8OID,
    B::TIMESTAMPTZOID,
    B::TEXTOID,
    B::JSONBOID,
];

const STORING: &str = "storing the interaction";

/// Stores one event; returns its id and whether it is new (false: a retry of a known event_id).
fn store_event(
    client: &mut SpiClient,
    ev: &ValidEvent,
    event_id: Option<Uuid>,
) -> Result<(i64, bool), EngineError> {
    let mut args = event_args(ev)?;
    let types: Vec<_> = EVENT_TYPES.iter().map(|t| oid(*t)).collect();
    assign_id_before_log_ids();
    let Some(event_id) = event_id else {
        let stored = run_cached(client, STORING, INSERT_EVENT, &types, &args)?;
        let id = first_value::<i64>(stored, STORING)?;
        return Ok((id.ok_or(EngineError::no_value(STORING, "id"))?, true));
    };
    args.push(event_id.into());
    let mut keyed_types = types;
    keyed_types.push(oid(B::UUIDOID));
    let stored = run_cached(client, STORING, INSERT_KEYED_EVENT, &keyed_types, &args)?;
    if let Some(id) = first_value::<i64>(stored, STORING)? {
        return Ok((id, true));
    }
    const LOOKING_UP: &str = "looking up the interaction of a repeated event_id";
    let existing = run_cached(
        client,
        LOOKING_UP,
        EXISTING_EVENT,
        &[oid(B::UUIDOID)],
        &[event_id.into()],
    )?;
    let id = first_value::<i64>(existing, LOOKING_UP)?;
    Ok((id.ok_or(EngineError::no_value(LOOKING_UP, "id"))?, false))
}

/// Applies a stored event to the user's cart, wishlist or purchase history.
fn sync_state(
    client: &mut SpiClient,
    ev: &ValidEvent,
    interaction_id: i64,
) -> Result<(), EngineError> {
    let (Some(user), Some(product)) = (ev.user_id, ev.product_id) else {
        return Ok(()); // validation guarantees both for every state type
    };
    const CART: &str = "updating the cart";
    const WISHLIST: &str = "updating the wishlist";
    let qty = ev.event_value as i32;
    let key_qty = |client: &mut SpiClient, sql: &'static str| {
        run_cached(
            client,
            CART,
            sql,
            &[oid(B::INT8OID), oid(B::INT8OID), oid(B::INT4OID)],
            &[user.into(), product.into(), qty.into()],
        )
        .map(drop)
    };
    match ev.itype.state_sync() {
        StateSync::None => Ok(()),
        StateSync::CartAdd => key_qty(client, CART_ADD),
        StateSync::CartRemove => {
            key_qty(client, CART_REMOVE_LINE)?;
            key_qty(client, CART_DECREMENT)
        }
        StateSync::CartSet if qty == 0 => key_qty(client, CART_REMOVE_LINE),
        StateSync::CartSet => key_qty(client, CART_SET),
        StateSync::Wishlist if qty == 1 => run_cached(
            client,
            WISHLIST,
            WISHLIST_ADD,
            &[oid(B::INT8OID), oid(B::INT8OID), oid(B::TIMESTAMPTZOID)],
            &[
                user.into(),
                product.into(),
                timestamp(ev.occurred_at)?.into(),
            ],
        )
        .map(drop),
        StateSync::Wishlist => run_cached(
            client,
            WISHLIST,
            WISHLIST_REMOVE,
            &[oid(B::INT8OID), oid(B::INT8OID)],
            &[user.into(), product.into()],
        )
        .map(drop),
        StateSync::Purchase => record_purchase(client, ev, user, product, interaction_id),
    }
}

/// The purchase_history line of a purchase or order event.
fn record_purchase(
    client: &mut SpiClient,
    ev: &ValidEvent,
    user: i64,
    product: i64,
    interaction_id: i64,
) -> Result<(), EngineError> {
    let (quantity, order_ref) = validation::purchase_line(ev.metadata.as_ref())?;
    run_cached(
        client,
        "recording the purchase",
        PURCHASE,
        &[
            oid(B::INT8OID),
            oid(B::INT8OID),
            oid(B::INT4OID),
            oid(B::TEXTOID),
            oid(B::TIMESTAMPTZOID),
            oid(B::INT8OID),
        ],
        &[
            user.into(),
            product.into(),
            quantity.into(),
            order_ref.into(),
            timestamp(ev.occurred_at)?.into(),
            interaction_id.into(),
        ],
    )
    .map(drop)
}

/// Stores validated events in one statement and syncs state in their order; returns how many
/// were stored.
pub fn store_batch(client: &mut SpiClient, events: &[BatchEvent]) -> Result<i64, EngineError> {
    const STORING_BATCH: &str = "storing the events";
    if events.is_empty() {
        return Ok(0);
    }
    let user_ids: Vec<Option<i64>> = events.iter().map(|e| e.event.user_id).collect();
    let product_ids: Vec<Option<i64>> = events.iter().map(|e| e.event.product_id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event.itype.label()).collect();
    let values: Vec<f64> = events.iter().map(|e| e.event.event_value).collect();
    let times: Vec<TimestampWithTimeZone> = events
        .iter()
        .map(|e| timestamp(e.event.occurred_at))
        .collect::<Result<_, _>>()?;
    let sessions: Vec<Option<String>> = events.iter().map(|e| e.event.session_id.clone()).collect();
    let metadata: Vec<Option<JsonB>> = events
        .iter()
        .map(|e| e.event.metadata.clone().map(JsonB))
        .collect();
    let event_ids: Vec<Option<Uuid>> = events.iter().map(|e| e.event_id).collect();

    let arg_types = [
        oid(B::INT8ARRAYOID),
        oid(B::INT8ARRAYOID),
        oid(B::TEXTARRAYOID),
        oid(B::FLOAT8ARRAYOID),
        oid(B::TIMESTAMPTZARRAYOID),
        oid(B::TEXTARRAYOID),
        oid(B::JSONBARRAYOID),
        oid(B::UUIDARRAYOID),
    ];
    let args: Vec<DatumWithOid> = vec![
        user_ids.into(),
        product_ids.into(),
        types.into(),
        values.into(),
        times.into(),
        sessions.into(),
        metadata.into(),
        event_ids.into(),
    ];
    assign_id_before_log_ids();
    // (ord, id) of each stored event; ord is the 1-based position in `events`
    let stored: Vec<(i64, i64)> =
        run_cached(client, STORING_BATCH, INSERT_BATCH, &arg_types, &args)?
            .map(|row| {
                let ord: i64 = row.get(1).required(STORING_BATCH, "ord")?;
                let id: i64 = row.get(2).required(STORING_BATCH, "id")?;
                Ok((ord, id))
            })
            .collect::<Result<_, EngineError>>()?;
    for &(ord, id) in &stored {
        let ev = usize::try_from(ord - 1)
            .ok()
            .and_then(|position| events.get(position))
            .ok_or(EngineError::no_value(STORING_BATCH, "valid ord"))?;
        if ev.event.itype.state_sync() != StateSync::None {
            sync_state(client, &ev.event, id)?;
        }
    }
    Ok(stored.len() as i64)
}

/// Logs one interaction and returns its id; keeps user_cart, user_wishlist and purchase_history
/// in sync. A repeated non-NULL `event_id` stores nothing and returns the id of the interaction
/// first stored with it. Bad input raises SQLSTATE 22023 (23502 for a missing required value).
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn track(
    user_id: Option<i64>,
    product_id: Option<i64>,
    interaction_type: Option<interaction_type>,
    event_value: default!(Option<f64>, "NULL"),
    metadata: default!(Option<JsonB>, "NULL"),
    occurred_at: default!(Option<TimestampWithTimeZone>, "now()"),
    session_id: default!(Option<&str>, "NULL"),
    event_id: default!(Option<Uuid>, "NULL"),
) -> i64 {
    let raw = RawEvent {
        user_id,
        product_id,
        event_value,
        metadata: metadata.map(|j| j.0),
        occurred_at: micros(occurred_at),
        session_id: session_id.map(str::to_owned),
    };
    track_one(interaction_type, raw, event_id).or_report("popularity_engine.track")
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.track(bigint, bigint, popularity_engine.interaction_type, double precision, jsonb, timestamptz, text, uuid) IS
  'Logs one interaction and returns its id; keeps user_cart, user_wishlist and purchase_history in sync. A repeated event_id stores nothing and returns the first id. Bad input raises SQLSTATE 22023 (23502 for a missing required value).';"#,
    name = "track_comment",
    requires = [track]
);

fn track_one(
    itype: Option<interaction_type>,
    raw: RawEvent,
    event_id: Option<Uuid>,
) -> Result<i64, EngineError> {
    let Some(itype) = itype else {
        return Err(
            EngineError::missing("interaction_type is required").with_hint(
                "Pass one of the labels of popularity_engine.interaction_type, e.g. 'view'.",
            ),
        );
    };
    let ev = validation::validate(itype, raw, now_micros())?;
    crate::cluster::ensure_same_cluster()?;
    Spi::connect_mut(|client| {
        let (id, is_new) = store_event(client, &ev, event_id)?;
        if is_new {
            sync_state(client, &ev, id)?;
        }
        Ok(id)
    })
}

/// Logs a JSON array of events {user_id, product_id, type, value, metadata, occurred_at,
/// session_id, event_id}, all or nothing; returns how many were stored (repeated event_ids are
/// skipped). An error names the index of the bad element.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn track_batch(events: Option<JsonB>) -> i64 {
    track_json_batch(events).or_report("popularity_engine.track_batch")
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.track_batch(jsonb) IS
  'Logs a JSON array of events {user_id, product_id, type, value, metadata, occurred_at, session_id, event_id}, all or nothing; returns how many were stored. An error names the index of the bad element.';"#,
    name = "track_batch_comment",
    requires = [track_batch]
);

fn track_json_batch(events: Option<JsonB>) -> Result<i64, EngineError> {
    let Some(JsonB(events)) = events else {
        return Err(EngineError::missing(
            "events is required: pass a JSON array of event objects",
        ));
    };
    let parsed = parse_batch(&events, now_micros())?;
    crate::cluster::ensure_same_cluster()?;
    Spi::connect_mut(|client| store_batch(client, &parsed))
}

/// The payment-webhook path: one `order` interaction and one purchase_history line per product.
/// With an `order_ref`, a retried webhook stores nothing again. Returns how many lines were stored.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn track_order(
    user_id: Option<i64>,
    product_ids: Option<Vec<Option<i64>>>,
    quantities: default!(Option<Vec<Option<i32>>>, "NULL"),
    order_ref: default!(Option<&str>, "NULL"),
    occurred_at: default!(Option<TimestampWithTimeZone>, "now()"),
) -> i64 {
    let order = Order {
        user_id,
        order_ref,
        occurred_at: micros(occurred_at),
    };
    order_lines(&order, product_ids, quantities)
        .and_then(|lines| store_order(&order, lines))
        .or_report("popularity_engine.track_order")
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.track_order(bigint, bigint[], integer[], text, timestamptz) IS
  'Payment-webhook path: one order interaction and one purchase_history line per product. With order_ref, a retry stores nothing. Returns how many lines were stored.';"#,
    name = "track_order_comment",
    requires = [track_order]
);

/// What track_order's lines share.
struct Order<'a> {
    user_id: Option<i64>,
    order_ref: Option<&'a str>,
    occurred_at: Option<i64>,
}

/// Checks the arrays of track_order and validates one `order` event per line.
fn order_lines(
    order: &Order,
    product_ids: Option<Vec<Option<i64>>>,
    quantities: Option<Vec<Option<i32>>>,
) -> Result<Vec<BatchEvent>, EngineError> {
    let Some(product_ids) = product_ids else {
        return Err(EngineError::missing("product_ids is required"));
    };
    if product_ids.is_empty() {
        return Err(EngineError::invalid(
            "product_ids must list at least one product",
        ));
    }
    if product_ids.len() > 10_000 {
        return Err(EngineError::invalid(format!(
            "product_ids has {} elements; at most 10000 lines are allowed",
            product_ids.len()
        )));
    }
    if let Some(q) = &quantities {
        if q.len() != product_ids.len() {
            return Err(EngineError::invalid(format!(
                "quantities has {} elements but product_ids has {}: give one quantity per product",
                q.len(),
                product_ids.len()
            )));
        }
    }
    if let Some(r) = order.order_ref {
        check_text("order_ref", r)?;
    }
    let now = now_micros();
    let mut events = Vec::with_capacity(product_ids.len());
    for (i, product) in product_ids.iter().enumerate() {
        let Some(product) = *product else {
            return Err(EngineError::missing(format!(
                "product_ids[{}] is NULL",
                i + 1
            )));
        };
        let quantity = match quantities.as_ref().map(|q| q[i]) {
            None => 1,
            Some(None) => {
                return Err(EngineError::missing(format!(
                    "quantities[{}] is NULL",
                    i + 1
                )))
            }
            Some(Some(q)) if (1..=1_000_000).contains(&q) => q,
            Some(Some(q)) => {
                return Err(EngineError::invalid(format!(
                    "quantities[{}] = {q} is not allowed: expected an integer from 1 to 1000000",
                    i + 1
                )))
            }
        };
        let mut meta = serde_json::Map::new();
        meta.insert("quantity".into(), Value::from(quantity));
        if let Some(r) = order.order_ref {
            meta.insert("order_ref".into(), Value::from(r));
        }
        let raw = RawEvent {
            user_id: order.user_id,
            product_id: Some(product),
            event_value: None,
            metadata: Some(Value::Object(meta)),
            occurred_at: order.occurred_at,
            session_id: None,
        };
        let event = validation::validate(interaction_type::order, raw, now)
            .map_err(|r| r.within(&format!("line {}", i + 1)))?;
        events.push(BatchEvent {
            event,
            event_id: None,
        });
    }
    Ok(events)
}

/// Stores the lines of an order; with an order_ref, each line gets an event_id derived from
/// (user, order_ref, line number), so that a retried webhook stores nothing again.
fn store_order(order: &Order, mut events: Vec<BatchEvent>) -> Result<i64, EngineError> {
    const DERIVING: &str = "deriving the order's event ids";
    crate::cluster::ensure_same_cluster()?;
    Spi::connect_mut(|client| {
        if let Some(r) = order.order_ref {
            let ids = run_cached(
                client,
                DERIVING,
                ORDER_EVENT_IDS,
                &[oid(B::INT8OID), oid(B::TEXTOID), oid(B::INT4OID)],
                &[order.user_id.into(), r.into(), (events.len() as i32).into()],
            )?;
            let ids = first_value::<Vec<Uuid>>(ids, DERIVING)?
                .ok_or(EngineError::no_value(DERIVING, "event ids"))?;
            for (e, id) in events.iter_mut().zip(ids) {
                e.event_id = Some(id);
            }
        }
        store_batch(client, &events)
    })
}

/// Logs a search and the products it showed (they count in product_popularity.search_count);
/// returns the search_interactions id.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn track_search(
    user_id: Option<i64>,
    query: Option<&str>,
    result_product_ids: default!(Option<Vec<Option<i64>>>, "'{}'"),
    occurred_at: default!(Option<TimestampWithTimeZone>, "now()"),
    session_id: default!(Option<&str>, "NULL"),
) -> i64 {
    store_search(
        user_id,
        query,
        result_product_ids,
        micros(occurred_at),
        session_id,
    )
    .or_report("popularity_engine.track_search")
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.track_search(bigint, text, bigint[], timestamptz, text) IS
  'Logs a search and the products it showed (counted in product_popularity.search_count); returns the search_interactions id.';"#,
    name = "track_search_comment",
    requires = [track_search]
);

fn store_search(
    user_id: Option<i64>,
    query: Option<&str>,
    result_product_ids: Option<Vec<Option<i64>>>,
    occurred_at: Option<i64>,
    session_id: Option<&str>,
) -> Result<i64, EngineError> {
    const STORING_SEARCH: &str = "storing the search";
    check_positive_id("user_id", user_id, "")?;
    let query = search_query(query)?;
    let ids = search_results(result_product_ids.unwrap_or_default())?;
    let now = now_micros();
    let at = occurred_at.unwrap_or(now);
    check_timestamp("occurred_at", at, now)?;
    if let Some(s) = session_id {
        check_text("session_id", s)?;
    }
    crate::cluster::ensure_same_cluster()?;
    assign_id_before_log_ids();
    Spi::connect_mut(|client| {
        let stored = run_cached(
            client,
            STORING_SEARCH,
            INSERT_SEARCH,
            &[
                oid(B::INT8OID),
                oid(B::TEXTOID),
                oid(B::INT8ARRAYOID),
                oid(B::TIMESTAMPTZOID),
                oid(B::TEXTOID),
            ],
            &[
                user_id.into(),
                query.into(),
                ids.into(),
                timestamp(at)?.into(),
                session_id.into(),
            ],
        )?;
        first_value::<i64>(stored, STORING_SEARCH)?
            .ok_or(EngineError::no_value(STORING_SEARCH, "id"))
    })
}

/// The products a search showed: at most 1000, each a positive id.
fn search_results(results: Vec<Option<i64>>) -> Result<Vec<i64>, EngineError> {
    if results.len() > 1000 {
        return Err(EngineError::invalid(format!(
            "result_product_ids has {} elements; at most 1000 are allowed",
            results.len()
        )));
    }
    results
        .iter()
        .enumerate()
        .map(|(i, id)| match id {
            Some(v) if *v > 0 => Ok(*v),
            _ => Err(EngineError::invalid(format!(
                "result_product_ids[{}] must be a positive product id",
                i + 1
            ))),
        })
        .collect()
}

/// Logs a click on a search result (type `search_click`, with the query in
/// metadata.search_query); returns the interaction id.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn track_search_click(
    user_id: Option<i64>,
    query: Option<&str>,
    product_id: Option<i64>,
    occurred_at: default!(Option<TimestampWithTimeZone>, "now()"),
    session_id: default!(Option<&str>, "NULL"),
) -> i64 {
    search_query(query)
        .and_then(|query| {
            let raw = RawEvent {
                user_id,
                product_id,
                event_value: None,
                metadata: Some(serde_json::json!({ "search_query": query })),
                occurred_at: micros(occurred_at),
                session_id: session_id.map(str::to_owned),
            };
            track_one(Some(interaction_type::search_click), raw, None)
        })
        .or_report("popularity_engine.track_search_click")
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.track_search_click(bigint, text, bigint, timestamptz, text) IS
  'Logs a click on a search result (type search_click, metadata.search_query = query); returns the interaction id.';"#,
    name = "track_search_click_comment",
    requires = [track_search_click]
);

fn search_query(query: Option<&str>) -> Result<&str, EngineError> {
    const MESSAGE: &str = "query is required and must not be blank";
    match query {
        None => Err(EngineError::missing(MESSAGE)),
        Some(q) if q.trim().is_empty() => Err(EngineError::invalid(MESSAGE)),
        Some(q) => {
            check_text("query", q)?;
            Ok(q)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_arguments() {
        let message = |e: EngineError| e.message("popularity_engine.track_search");
        assert_eq!(search_query(Some("tv")), Ok("tv"));
        assert_eq!(
            search_query(None).map_err(|e| e.rejection()),
            Err(Some(crate::error::Sqlstate::NotNullViolation))
        );
        assert_eq!(
            message(search_query(Some("  ")).unwrap_err()),
            "popularity_engine.track_search: query is required and must not be blank"
        );
        assert_eq!(search_results(vec![Some(3), Some(1)]), Ok(vec![3, 1]));
        assert_eq!(
            message(search_results(vec![Some(3), None]).unwrap_err()),
            "popularity_engine.track_search: result_product_ids[2] must be a positive product id"
        );
    }
}
