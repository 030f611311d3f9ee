"""Draws bench/results/<scale>/growth.png: refresh cost against history size."""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(tsv: str, png: str) -> None:
    rows = [line.split() for line in open(tsv) if line.strip()][1:]
    events = [int(r[0]) for r in rows]
    incremental = [float(r[1]) * 1000 for r in rows]
    nothing = [float(r[2]) for r in rows]
    full = [float(r[3]) * 1000 for r in rows]
    nothing_cold = [float(r[4]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(events, full, "o-", label="full recomputation (plain SQL)")
    ax.plot(events, incremental, "o-", label="refresh_popularity, new events = 1 % of the largest log")
    ax.plot(events, nothing, "o-", label="refresh_popularity, nothing new (in a session)")
    ax.plot(events, nothing_cold, "o-", label="refresh_popularity, nothing new (new connection)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events in the log")
    ax.set_ylabel("time (ms, log scale)")
    ax.set_title("popularity_engine: refresh cost vs history size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
