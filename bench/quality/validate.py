#!/usr/bin/env python3
"""Checks the input files of bench/quality.sh and writes them as tab-separated files for COPY.

events CSV (header required; column order free, extra columns rejected):
  user_id      positive integer, required
  product_id   positive integer, required
  type         an interaction type of the extension (view, click, add_to_cart, order, review,
               wishlist, ...); optional, default `order`
  occurred_at  ISO-8601 timestamp with a time zone or a date (UTC assumed), or unix seconds;
               required
  value        optional event_value: a star rating 1-5 for review (default 5), a quantity for
               order/purchase/add_to_cart (default 1); empty = the type's default
catalog CSV (optional; header required): product_id (required), category, brand, price,
inventory (all optional).
Every error names the file, the line and what is wrong; the first 20 are printed and nothing is
written when there is any (exit status 2).
"""
import csv
import datetime
import math
import sys

TYPES = {
    "view", "product_view", "page_view", "click", "search_click", "search", "wishlist",
    "wishlist_add", "wishlist_remove", "add_to_cart", "cart_add", "remove_from_cart",
    "cart_remove", "update_cart_quantity", "cart_update", "purchase", "order", "review",
    "login", "logout",
}
# types a product is required for and that make sense in an offline evaluation
USABLE = {"view", "product_view", "click", "search_click", "wishlist", "wishlist_add",
          "add_to_cart", "cart_add", "purchase", "order", "review"}
EVENT_COLUMNS = {"user_id", "product_id", "type", "occurred_at", "value"}
CATALOG_COLUMNS = {"product_id", "category", "brand", "price", "inventory"}
MAX_ERRORS = 20


class Errors:
    def __init__(self):
        self.items = []

    def add(self, path, line, message):
        self.items.append(f"{path}:{line}: {message}")

    def __bool__(self):
        return bool(self.items)


def field(name, parse, text, *rest):
    """parse(text), with the field's name in the error."""
    try:
        return parse(text, *rest)
    except ValueError as e:
        raise ValueError(f"{name} '{text}': {e}") from None


def positive_int(text):
    if not text.isdigit() or int(text) <= 0 or int(text) > 2**63 - 1:
        raise ValueError("expected a positive integer")
    return int(text)


def timestamp(text):
    text = text.strip()
    if text.isdigit():
        moment = datetime.datetime.fromtimestamp(int(text), tz=datetime.timezone.utc)
    else:
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("expected an ISO-8601 timestamp (2024-05-01T12:00:00Z) or unix seconds")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
    if moment > datetime.datetime.now(datetime.timezone.utc):
        raise ValueError("is in the future")
    return moment.astimezone(datetime.timezone.utc).isoformat()


def event_value(text, kind):
    if text == "":
        return 5.0 if kind == "review" else 1.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number") from None
    if kind == "review" and value not in (1, 2, 3, 4, 5):
        raise ValueError("a review's value is a star rating from 1 to 5")
    if kind in ("order", "purchase", "add_to_cart", "cart_add") and (value < 1 or value != int(value)):
        raise ValueError(f"a {kind}'s value is a quantity of at least 1")
    if kind not in ("review", "order", "purchase", "add_to_cart", "cart_add") and value != 1:
        raise ValueError(f"type {kind} takes no value (leave it empty)")
    return value


def read(path, allowed, required, errors):
    handle = open(path, newline="", encoding="utf-8")
    reader = csv.DictReader(handle)
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in allowed]
    missing = [c for c in required if c not in header]
    if unknown or missing:
        errors.add(path, 1, "header " + ",".join(header) + ": "
                   + "; ".join(filter(None, [
                       unknown and "unknown columns " + ", ".join(unknown),
                       missing and "missing required columns " + ", ".join(missing)]))
                   + f" (allowed: {', '.join(sorted(allowed))})")
        return
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            errors.add(path, reader.line_num, f"expected {len(header)} fields")
            continue
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}


def events(path, errors):
    out = []
    for line, row in read(path, EVENT_COLUMNS, ["user_id", "product_id", "occurred_at"], errors):
        try:
            kind = row.get("type") or "order"
            if kind not in USABLE:
                raise ValueError(f"type '{kind}' is not one of {', '.join(sorted(USABLE))}")
            out.append((line, field("user_id", positive_int, row["user_id"]),
                        field("product_id", positive_int, row["product_id"]), kind,
                        field("occurred_at", timestamp, row["occurred_at"]),
                        field("value", event_value, row.get("value", ""), kind)))
        except ValueError as e:
            errors.add(path, line, str(e))
        if len(errors.items) >= MAX_ERRORS:
            break
    if not out and not errors:
        errors.add(path, 1, "no events")
    return out


def catalog(path, errors):
    out, seen = [], set()
    for line, row in read(path, CATALOG_COLUMNS, ["product_id"], errors):
        try:
            price = row.get("price", "")
            inventory = row.get("inventory", "")
            product = field("product_id", positive_int, row["product_id"])
            if product in seen:
                raise ValueError(f"product_id {product} appears twice")
            seen.add(product)
            try:
                if price and (float(price) < 0 or not math.isfinite(float(price))):
                    raise ValueError
            except ValueError:
                raise ValueError(f"price '{price}': expected a number >= 0") from None
            if inventory and (not inventory.isdigit() or int(inventory) > 2**31 - 1):
                raise ValueError(f"inventory '{inventory}': expected a whole number >= 0")
            out.append((line, product, row.get("category", ""),
                        row.get("brand", ""), price, inventory))
        except ValueError as e:
            errors.add(path, line, f"{e}")
        if len(errors.items) >= MAX_ERRORS:
            break
    return out


def copy_field(value):
    text = "" if value is None else str(value)
    if text == "":
        return "\\N"
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: validate.py OUT_DIR EVENTS.csv [CATALOG.csv]")
    out_dir, events_path = sys.argv[1], sys.argv[2]
    errors = Errors()
    rows = events(events_path, errors)
    products = catalog(sys.argv[3], errors) if len(sys.argv) == 4 else []
    if errors:
        print("\n".join(errors.items[:MAX_ERRORS]), file=sys.stderr)
        print("nothing was loaded: fix the lines above and run again", file=sys.stderr)
        sys.exit(2)
    with open(f"{out_dir}/events.tsv", "w") as f:
        for r in rows:
            f.write("\t".join(copy_field(v) for v in r) + "\n")
    with open(f"{out_dir}/catalog.tsv", "w") as f:
        for r in products:
            f.write("\t".join(copy_field(v) for v in r[1:]) + "\n")
    print(f"input: {len(rows)} events, {len(products)} catalog rows")


if __name__ == "__main__":
    main()
