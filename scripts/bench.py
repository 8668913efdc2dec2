#!/usr/bin/env python
"""Measure TTFB, worker memory and throughput of the demo app's plain and streaming views.

    python scripts/bench.py                        # about a minute: bodies of 1, 4 and 16 MiB
    python scripts/bench.py --full                 # streams up to 1 GiB (a few minutes)
    python scripts/bench.py --sizes 1,8 --repeats 5 --chunk-rows 1,64,4096

Writes build/bench/results.json and the figures as PNG next to it (the event
streams of notebook 09 in build/bench/event_streams/), prints a table and checks
the benchmark's targets (each with the value measured).
Exit status 0 even when a target is missed, unless --strict is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window

import matplotlib.pyplot as plt  # noqa: E402

from streamlab.measurement import bench, bench_results, http2_bench, plots, sse_bench  # noqa: E402
from streamlab.paths import PROJECT_ROOT  # noqa: E402


def _numbers(text: str, kind: type) -> list:
    try:
        values = [kind(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        message = f"expected comma-separated numbers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="stream up to 1 GiB (HttpResponse capped at DEMO_MAX_ROWS)")
    parser.add_argument("--sizes", type=lambda t: _numbers(t, float), metavar="MIB,...",
                        help="body sizes in MiB for the size series (default 1,4,16)")
    parser.add_argument("--repeats", type=int,
                        help="runs per point; medians are kept (default 5, 3 with --full)")
    parser.add_argument("--chunk-rows", type=lambda t: _numbers(t, int), metavar="N,...",
                        help="rows per chunk for the throughput sweep")
    parser.add_argument("--chunk-mib", type=float, metavar="MIB",
                        help="body size of the throughput sweep (default 4, 16 with --full)")
    parser.add_argument("--client-mib", type=float, metavar="MIB",
                        help="body size for the client memory comparison (default 16)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "bench",
                        help="directory for results.json and the PNG figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def config_from(args: argparse.Namespace) -> bench_results.BenchConfig:
    config_type = bench_results.BenchConfig
    config = config_type.full_run() if args.full else config_type.default()
    if args.sizes:
        config.sizes = [round(s * bench_results.MiB) for s in args.sizes]
    if args.repeats:
        config.repeats = args.repeats
    if args.chunk_rows:
        config.chunk_rows = sorted(set(args.chunk_rows))
    if args.chunk_mib:
        config.chunk_body = round(args.chunk_mib * bench_results.MiB)
    if args.client_mib:
        config.client_body = round(args.client_mib * bench_results.MiB)
    return config


def event_streams(out: Path) -> str:
    """Hundreds of event streams held by one ASGI worker (notebook 09), in a folder of their
    own (``event_streams/summary.json`` and ``delays.png``); returns the summary line."""
    run = sse_bench.bench_streams(log=print)
    folder = out / "event_streams"
    folder.mkdir(parents=True, exist_ok=True)
    summary = sse_bench.bench_summary(run)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    figure, reading = plots.stream_delays_figure(run)
    figure.savefig(folder / "delays.png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    print(f"{folder / 'delays.png'}: {reading}")
    return sse_bench.format_summary(summary)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = config_from(args)
    started = time.perf_counter()
    results = bench.run(config, progress=not args.no_progress, log=print)
    # The same streamed body over HTTP/1.1 and HTTP/2 (notebook 10), from a gthread server.
    results = dataclasses.replace(results, http2=http2_bench.compare_for_bench(config, log=print))
    args.out.mkdir(parents=True, exist_ok=True)
    streams_line = event_streams(args.out)  # many event streams on one ASGI worker (notebook 09)
    for name, (figure, reading) in plots.all_figures(results).items():
        path = args.out / f"{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        print(f"{path}: {reading}")
    results = dataclasses.replace(results, elapsed_s=time.perf_counter() - started)
    (args.out / "results.json").write_text(results.to_json())
    print()
    print(bench.format_table(results))
    if results.http2 is not None:
        print()
        print(http2_bench.format_comparison(results.http2))
    print()
    print(streams_line)
    print(f"\nResults in {args.out / 'results.json'} (schema version {results.schema_version}); "
          f"took {results.elapsed_s:.0f} s.")
    missed = [t.name for t in results.targets if not t.met]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
