#!/usr/bin/env python3
"""A deterministic shop with structure, for bench/quality.sh: writes events.csv and catalog.csv.

  python3 bench/generate_shop.py OUT_DIR [--users N] [--products N] [--days N] [--seed N]

What makes its events worth evaluating on:
- products: a category and a brand each, a price around the category's typical price, a Zipf
  popularity within the category, and two or three complements in a paired category (bought
  together: a camera and its memory card);
- users: two or three favourite categories, one to three favourite brands, a price band;
- sessions: a user visits a favourite category (sometimes another), views a few products chosen
  by popularity, brand taste and price fit, may click, add one to the cart and order it, often
  with one of its complements; some categories are consumables that users re-order.
"""
import argparse
import bisect
import csv
import datetime
import itertools
import math
import os
import random


def zipf_weights(n, s=1.1):
    return [1 / (k + 1) ** s for k in range(n)]


def cumulative(weights):
    return list(itertools.accumulate(weights))


def pick(rng, items, cum):
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


class Shop:
    def __init__(self, rng, products):
        self.categories = max(4, products // 40)
        self.brands = max(6, products // 15)
        self.consumable = {c for c in range(self.categories) if c % 5 == 0}
        self.base_price = [round(5 * math.exp(rng.random() * 5), 2) for _ in range(self.categories)]
        self.by_category = {c: [] for c in range(self.categories)}
        self.products = []
        for p in range(1, products + 1):
            c = rng.randrange(self.categories)
            brand = (c * 3 + rng.randrange(4)) % self.brands if rng.random() < 0.8 else rng.randrange(self.brands)
            price = round(self.base_price[c] * math.exp(rng.gauss(0, 0.5)), 2)
            inventory = 0 if rng.random() < 0.03 else rng.randrange(1, 300)
            self.products.append((p, c, brand, price, inventory))
            self.by_category[c].append(p)
        self.info = {p[0]: p for p in self.products}
        self.cum = {}
        for c, items in self.by_category.items():
            rng.shuffle(items)
            self.cum[c] = cumulative(zipf_weights(len(items)))
        # complements live in a paired category
        self.complements = {}
        for p, c, *_ in self.products:
            partner = self.by_category[(c + 1 + c % 3) % self.categories] or self.by_category[c]
            self.complements[p] = rng.sample(partner, min(len(partner), rng.randint(2, 3)))


class User:
    def __init__(self, rng, shop):
        n = rng.randint(2, 3)
        self.categories = rng.sample(range(shop.categories), n)
        self.category_cum = cumulative([1 / (k + 1) for k in range(n)])
        self.brands = set(rng.sample(range(shop.brands), rng.randint(1, 3)))
        self.price_factor = math.exp(rng.gauss(0, 0.4))
        self.bought = []


def choose_product(rng, shop, user, category):
    items, cum = shop.by_category[category], shop.cum[category]
    if not items:
        return None
    best, best_score = None, -1.0
    for _ in range(4):  # a few looks, the one that suits the user best wins
        p = pick(rng, items, cum)
        _, _, brand, price, _ = shop.info[p]
        fit = math.exp(-abs(math.log(price / (shop.base_price[category] * user.price_factor))))
        score = (2.0 if brand in user.brands else 1.0) * fit * rng.random()
        if score > best_score:
            best, best_score = p, score
    return best


def session(rng, shop, user, start):
    """Events of one visit: (offset seconds, product, type)."""
    out, t = [], 0
    if user.bought and rng.random() < 0.25:
        again = rng.choice(user.bought)
        if shop.info[again][1] in shop.consumable:
            return [(0, again, "view"), (40, again, "add_to_cart"), (90, again, "order")]
    category = (pick(rng, user.categories, user.category_cum) if rng.random() < 0.85
                else rng.randrange(shop.categories))
    viewed = []
    for _ in range(rng.randint(2, 6)):
        p = choose_product(rng, shop, user, category)
        if p is None:
            break
        t += rng.randint(10, 120)
        out.append((t, p, "view"))
        viewed.append(p)
        if rng.random() < 0.3:
            out.append((t + 5, p, "click"))
    if viewed and rng.random() < 0.45:
        p = max(viewed, key=lambda v: (v in user.bought, shop.info[v][2] in user.brands, rng.random()))
        t += 30
        out.append((t, p, "add_to_cart"))
        if rng.random() < 0.6 and shop.info[p][4] > 0:
            t += 60
            out.append((t, p, "order"))
            user.bought.append(p)
            if rng.random() < 0.5:
                extra = rng.choice(shop.complements[p])
                out += [(t + 20, extra, "view"), (t + 50, extra, "add_to_cart"), (t + 80, extra, "order")]
                user.bought.append(extra)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    shop = Shop(rng, args.products)
    end = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - datetime.timedelta(days=args.days)
    events = []
    for u in range(1, args.users + 1):
        user = User(rng, shop)
        visits = min(40, 1 + int(rng.expovariate(1 / 6)))
        times = sorted(rng.uniform(0, args.days * 86400 - 3600) for _ in range(visits))
        for s in times:
            for offset, product, kind in session(rng, shop, user, s):
                events.append((start + datetime.timedelta(seconds=s + offset), u, product, kind))
    events.sort()
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "events.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "product_id", "type", "occurred_at"])
        for when, u, p, kind in events:
            w.writerow([u, p, kind, when.strftime("%Y-%m-%dT%H:%M:%SZ")])
    with open(os.path.join(args.out_dir, "catalog.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["product_id", "category", "brand", "price", "inventory"])
        for p, c, brand, price, inventory in shop.products:
            w.writerow([p, f"category-{c}", f"brand-{brand}", price, inventory])
    print(f"generated {len(events)} events of {args.users} users over {args.products} products")


if __name__ == "__main__":
    main()
