#!/usr/bin/env python3
"""Turns the CSV of `themis bench --csv FILE` sweeps into PNG charts, like the Themis paper's figures:
throughput vs clients and latency vs clients, one line per configuration (the CSV's `label` column).

    pip install matplotlib
    python3 scripts/plot-bench.py bench.csv --out docs/ [--title "4 replicas, 100 B requests"]

Rows with the same label and client count (repeated runs) are reduced to their median.
Writes <out>/bench-throughput.png and <out>/bench-latency.png.
"""
import argparse
import csv
import os
import statistics
import sys
from collections import defaultdict


def load(paths):
    """label -> clients -> list of rows"""
    series = defaultdict(lambda: defaultdict(list))
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    series[row["label"]][int(row["clients"])].append(row)
                except (KeyError, ValueError) as error:
                    sys.exit(f"{path}: not a `themis bench --csv` file ({error})")
    if not series:
        sys.exit("no rows in " + ", ".join(paths))
    return series


def median(rows, column):
    return statistics.median(float(row[column]) for row in rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", nargs="+", help="CSV files written by themis bench --csv")
    parser.add_argument("--out", default="docs", help="output directory (default: docs)")
    parser.add_argument("--title", default="Themis on loopback, 2 cores (PBFT: 4 replicas, Hybster: 3)", help="chart title")
    arguments = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        sys.exit("matplotlib is missing: pip install matplotlib")

    series = load(arguments.csv)
    os.makedirs(arguments.out, exist_ok=True)

    figure, axis = pyplot.subplots(figsize=(7, 4.5))
    for label, points in sorted(series.items()):
        clients = sorted(points)
        axis.plot(clients, [median(points[c], "ops_per_s") for c in clients], marker="o", label=label)
    axis.set_xlabel("closed-loop clients")
    axis.set_ylabel("throughput (ops/s)")
    axis.set_title(arguments.title)
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    throughput_path = os.path.join(arguments.out, "bench-throughput.png")
    figure.savefig(throughput_path, dpi=120)

    figure, axis = pyplot.subplots(figsize=(7, 4.5))
    for index, (label, points) in enumerate(sorted(series.items())):
        clients = sorted(points)
        color = f"C{index}"
        axis.plot(clients, [median(points[c], "p50_ms") for c in clients], marker="o", color=color, label=f"{label} p50")
        axis.plot(clients, [median(points[c], "p99_ms") for c in clients], marker="x", linestyle="--", color=color,
                  label=f"{label} p99")
    axis.set_xlabel("closed-loop clients")
    axis.set_ylabel("latency (ms)")
    axis.set_title(arguments.title)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    latency_path = os.path.join(arguments.out, "bench-latency.png")
    figure.savefig(latency_path, dpi=120)
    print(f"wrote {throughput_path} and {latency_path}")


if __name__ == "__main__":
    main()
