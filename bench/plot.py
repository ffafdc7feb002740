"""The p50-latency plot of bench/results.md: one line per operation and store against store size.

python bench/plot.py [bench/out/results.json [bench/p50_latency.png]]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator  # noqa: E402
from tables import OPERATIONS, naive_at, run_of, sizes_of  # noqa: E402


def plot(results: dict, target: Path) -> None:
    """p50 of every operation against store size, TinyDB solid and PostgreSQL dashed, into `target`."""
    sizes = sizes_of(results)
    pg_sizes = sizes_of(results, "postgres")
    figure, axes = plt.subplots(figsize=(10, 6), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (operation, name), marker, color in zip(OPERATIONS, "osD^v<>", colors, strict=False):
        label = name.replace("`", "")
        points = [(size, run["p50_ms"]) for size in sizes if (run := run_of(results, size, operation))]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, marker=marker, color=color, linewidth=2, label=f"{label} (TinyDB)")
        # PostgreSQL: the same colour and marker, dashed, hollow markers.
        points = [(size, run["p50_ms"]) for size in pg_sizes if (run := run_of(results, size, operation, "postgres"))]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(
                xs,
                ys,
                marker=marker,
                color=color,
                linestyle="--",
                linewidth=1.5,
                markerfacecolor="white",
                label=f"{label} (PostgreSQL)",
            )
    naive = [(size, row["insert"]["p50_ms"]) for size in sizes if (row := naive_at(results, size))]
    if naive:
        xs, ys = zip(*naive, strict=True)
        axes.plot(xs, ys, color="grey", linestyle=":", marker="x", label="naive TinyDB insert (in-process)")
    ceiling = results["ceiling"]["p50_ms"]
    axes.axhline(ceiling, color="black", linestyle="--", linewidth=1, label=f"ceiling: bare Flask ({ceiling:.2f} ms)")
    peer = results.get("peer")
    if peer:
        axes.axhline(
            peer["p50_ms"],
            color="purple",
            linestyle="-.",
            linewidth=1,
            label=f"peer: oidc-provider token ({peer['p50_ms']:.2f} ms)",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks(sorted(set(sizes) | set(pg_sizes)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_minor_formatter(NullFormatter())
    plain = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[0] in "125" else "")
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_formatter(plain)
    axes.set_xlabel("live tickets in the store")
    axes.set_ylabel("p50 latency, ms (log scale)")
    settings = results["settings"]
    axes.set_title(
        f"Ticket service: p50 latency against store size (wrk {settings['wrk']}, 127.0.0.1)\n"
        "solid: TinyDB files (default store); dashed, hollow: PostgreSQL",
        fontsize=10,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(target)
    plt.close(figure)


def main() -> None:
    """Redraw the plot from a results.json."""
    bench = Path(__file__).resolve().parent
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else bench / "out" / "results.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else bench / "p50_latency.png"
    plot(json.loads(source.read_text()), target)


if __name__ == "__main__":
    main()
