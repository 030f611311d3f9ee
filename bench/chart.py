"""Draws bench/results/<scale>/growth.png from growth.tsv: refresh cost against history size
(left) and query latency against history size (middle); with catalog.tsv, query latency
against the number of products at the first stage's history (right)."""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def column(rows, i, scale=1.0):
    return [float(r[i]) * scale for r in rows]


def read_rows(tsv: str) -> list:
    return [line.split() for line in open(tsv) if line.strip()][1:]


def plot_catalog(ax, tsv: str) -> None:
    rows = sorted(read_rows(tsv), key=lambda r: int(r[0]))
    products = [int(r[0]) for r in rows]
    ax.plot(products, column(rows, 1), "o-", label="popular_products('overall', 7 days)")
    ax.plot(products, column(rows, 2), "o-", label="popular_products('most_viewed', 1 day)")
    ax.plot(products, column(rows, 3), "o-", label="recommend(user, 20), warm users")
    ax.set_title("query latency (p50, cached) vs products")
    ax.set_xlabel("products in the catalog")


def main(tsv: str, png: str, catalog_tsv: str = "") -> None:
    rows = read_rows(tsv)
    events = [int(r[0]) for r in rows]
    panels = 3 if catalog_tsv else 2
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.5))
    refresh, query = axes[0], axes[1]
    refresh.plot(events, column(rows, 3, 1000), "o-", label="full recomputation (plain SQL)")
    refresh.plot(events, column(rows, 1, 1000), "o-", label="refresh_popularity, new events = 1 % of the largest log")
    refresh.plot(events, column(rows, 2), "o-", label="refresh_popularity, nothing new (in a session)")
    refresh.plot(events, column(rows, 4), "o-", label="refresh_popularity, nothing new (new connection)")
    refresh.set_title("refresh cost vs history size")
    query.plot(events, column(rows, 5), "o-", label="popular_products('overall', 7 days)")
    query.plot(events, column(rows, 6), "o-", label="popular_products('most_viewed', 1 day)")
    query.plot(events, column(rows, 7), "o-", label="recommend(user, 20), warm users")
    query.set_title("query latency (p50, cached) vs history size")
    for ax in (refresh, query):
        ax.set_xlabel("events in the log")
    if catalog_tsv:
        plot_catalog(axes[2], catalog_tsv)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel("time (ms, log scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("popularity_engine: growth with history size" + (" and catalog size" if catalog_tsv else ""))
    fig.tight_layout()
    fig.savefig(png, dpi=120)


if __name__ == "__main__":
    main(*sys.argv[1:4])
