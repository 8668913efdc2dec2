#!/usr/bin/env python
"""Measure TTFB, worker memory and throughput of the demo app's plain and streaming views.

    python scripts/bench.py                        # about a minute: bodies of 1, 4 and 16 MiB
    python scripts/bench.py --full                 # streams up to 1 GiB (a few minutes)
    python scripts/bench.py --sizes 1,8 --repeats 5 --chunk-rows 1,64,4096
    python scripts/bench.py --only event-streams   # the event streams alone (about 20 s)
    python scripts/bench.py --only server-streams  # 1,000 streams per ASGI server (~2.5 min)
    python scripts/bench.py --only fan-out         # 1,000 topic streams on 2 workers (~20 s)

Writes build/bench/results.json and the figures as PNG next to it (the event
streams of notebook 09 in build/bench/event_streams/: summary.json, delays.png,
worker_classes.png; the streams on each ASGI server of notebook 11 in
build/bench/server_streams/: summary.json, servers.png; one event carried to
1,000 streams across two workers by PostgreSQL's LISTEN/NOTIFY, notebook 12, in
build/bench/fanout/: summary.json, delays.png, skipped without PostgreSQL),
prints a table and checks the benchmark's targets (each with the value measured;
the event streams' three, the four per server and the fan-out's two are among them).
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

from streamlab.measurement import (  # noqa: E402
    bench,
    bench_report,
    bench_results,
    database_plots,
    fanout,
    fanout_bench,
    http2_bench,
    plots,
    server_bench,
    server_bench_plots,
    sse_bench,
    stream_plots,
)
from streamlab.measurement.bench_results import Target  # noqa: E402
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
    parser.add_argument("--streams", type=int, default=sse_bench.BENCH_CLIENTS, metavar="N",
                        help="event streams held at once by one ASGI worker (default "
                             f"{sse_bench.BENCH_CLIENTS}, the target's floor)")
    parser.add_argument("--stream-events", type=int, default=sse_bench.BENCH_COUNT, metavar="N",
                        help=f"events per stream, {sse_bench.BENCH_INTERVAL_MS} ms apart "
                             f"(default {sse_bench.BENCH_COUNT})")
    parser.add_argument("--server-streams", type=int, default=server_bench.SERVER_CLIENTS,
                        metavar="N", help="event streams held at once by one worker process of "
                        f"each ASGI server (default {server_bench.SERVER_CLIENTS}, the target's "
                        "floor)")
    parser.add_argument("--server-stream-events", type=int, default=server_bench.SERVER_COUNT,
                        metavar="N", help=f"events per stream on each server, "
                        f"{sse_bench.BENCH_INTERVAL_MS} ms apart (default "
                        f"{server_bench.SERVER_COUNT})")
    parser.add_argument("--servers", type=_servers, default=server_bench.ALL_SERVERS,
                        metavar="NAME,...", help="the servers of the server streams, in order "
                        f"(default all: {','.join(server_bench.ALL_SERVERS)})")
    parser.add_argument("--fanout-streams", type=int, default=fanout_bench.FANOUT_STREAMS,
                        metavar="N", help="topic streams shared by the fan-out's "
                        f"{fanout_bench.FANOUT_WORKERS} workers (default "
                        f"{fanout_bench.FANOUT_STREAMS}, the target's floor)")
    parser.add_argument("--fanout-events", type=int, default=fanout_bench.FANOUT_EVENTS,
                        metavar="N", help="events published to them, one a second (default "
                        f"{fanout_bench.FANOUT_EVENTS})")
    parser.add_argument("--only", choices=["event-streams", "server-streams", "fan-out"],
                        help="run one section alone; results.json is left as it was")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "bench",
                        help="directory for results.json and the PNG figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not 1 <= args.streams <= sse_bench.MAX_CLIENTS:
        parser.error(f"--streams must be between 1 and {sse_bench.MAX_CLIENTS}")
    if not 2 <= args.stream_events <= 1000:
        parser.error("--stream-events must be between 2 and 1000")
    if not 1 <= args.server_streams <= sse_bench.MAX_CLIENTS:
        parser.error(f"--server-streams must be between 1 and {sse_bench.MAX_CLIENTS}")
    if not 2 <= args.server_stream_events <= 1000:
        parser.error("--server-stream-events must be between 2 and 1000")
    workers = fanout_bench.FANOUT_WORKERS
    if not workers <= args.fanout_streams <= fanout.MAX_STREAMS or args.fanout_streams % workers:
        parser.error(f"--fanout-streams must be a multiple of {workers} between {workers} and "
                     f"{fanout.MAX_STREAMS}")
    if not 1 <= args.fanout_events <= 600:
        parser.error("--fanout-events must be between 1 and 600")
    return args


def _servers(text: str) -> tuple[str, ...]:
    names = tuple(part for part in text.replace(" ", "").split(",") if part)
    unknown = [n for n in names if n not in server_bench.ALL_SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown server {(unknown or [text])[0]!r}: choose from "
            f"{','.join(server_bench.ALL_SERVERS)}")
    return names


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


def event_streams(out: Path, *, clients: int, count: int) -> tuple[dict, list[Target]]:
    """Event streams (notebook 09): many held by one ASGI worker, judged against three
    targets, beside the sync and gthread workers. Written to a folder of their own
    (``event_streams/summary.json``, ``delays.png``, ``worker_classes.png``); returns the
    summary and the targets."""
    runs = sse_bench.bench_streams(clients=clients, count=count, log=print)
    folder = out / "event_streams"
    folder.mkdir(parents=True, exist_ok=True)
    summary = sse_bench.bench_summary(runs)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, (figure, reading) in {
        "delays": stream_plots.stream_delays_figure(*runs, limit_ms=sse_bench.P95_LIMIT_MS),
        "worker_classes": stream_plots.open_streams_figure(runs, share=True),
    }.items():
        figure.savefig(folder / f"{name}.png", dpi=110, bbox_inches="tight")
        plt.close(figure)
        print(f"{folder / name}.png: {reading}")
    return summary, sse_bench.evaluate_streams(runs[0])


def server_streams(out: Path, *, clients: int, count: int,
                   servers: tuple[str, ...]) -> tuple[dict, list[Target]]:
    """Event streams on each ASGI server (notebook 11) and gthread, one worker process each,
    judged against four targets per server. Written to ``server_streams/summary.json`` and
    ``servers.png``; returns the summary and the targets."""
    started, load = time.perf_counter(), bench._load_average()
    results, limits = server_bench.bench_servers(clients=clients, count=count, servers=servers,
                                                 log=print)
    folder = out / "server_streams"
    folder.mkdir(parents=True, exist_ok=True)
    figure, reading = server_bench_plots.server_streams_figure(results)
    figure.savefig(folder / "servers.png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    print(f"{folder / 'servers.png'}: {reading}")
    summary = server_bench.bench_summary(results, limits, seconds=time.perf_counter() - started,
                                         load_before=load)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary, [Target(**t) for t in summary["targets"]]


def fan_out(out: Path, *, streams: int, events: int) -> tuple[dict | None, list[Target]]:
    """One event carried to many topic streams across two workers (notebook 12), judged
    against two targets. Written to ``fanout/summary.json`` and ``delays.png``; returns the
    summary and the targets, or ``(None, [])`` without PostgreSQL."""
    started = time.perf_counter()
    run = fanout_bench.bench_fanout(streams=streams, events=events, log=print)
    if run is None:
        return None, []
    folder = out / "fanout"
    folder.mkdir(parents=True, exist_ok=True)
    figure, reading = database_plots.delivery_delay_figure({"LISTEN per worker": run})
    figure.savefig(folder / "delays.png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    print(f"{folder / 'delays.png'}: {reading}")
    summary = fanout_bench.fanout_summary(run, seconds=time.perf_counter() - started)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary, [Target(**t) for t in summary["targets"]]


def only_fan_out(args: argparse.Namespace) -> int:
    """``--only fan-out``: that section alone, its targets printed after it."""
    summary, targets = fan_out(args.out, streams=args.fanout_streams, events=args.fanout_events)
    if summary is not None:
        print()
        print(fanout_bench.format_summary(summary))
        print(f"\nResults in {args.out / 'fanout'}.")
    return 1 if args.strict and not all(t.met for t in targets) else 0


def only_server_streams(args: argparse.Namespace) -> int:
    """``--only server-streams``: that section alone, its targets printed after it."""
    summary, targets = server_streams(args.out, clients=args.server_streams,
                                      count=args.server_stream_events, servers=args.servers)
    print()
    print(server_bench.format_summary(summary))
    print(f"\nResults in {args.out / 'server_streams'}.")
    return 1 if args.strict and not all(t.met for t in targets) else 0


def only_event_streams(args: argparse.Namespace) -> int:
    """``--only event-streams``: that section alone, its targets printed after it."""
    summary, targets = event_streams(args.out, clients=args.streams, count=args.stream_events)
    print()
    print(sse_bench.format_summary(summary))
    print(f"\nResults in {args.out / 'event_streams'}.")
    return 1 if args.strict and not all(t.met for t in targets) else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only == "event-streams":
        return only_event_streams(args)
    if args.only == "server-streams":
        return only_server_streams(args)
    if args.only == "fan-out":
        return only_fan_out(args)
    config = config_from(args)
    started = time.perf_counter()
    results = bench.run(config, progress=not args.no_progress, log=print)
    # The same streamed body over HTTP/1.1 and HTTP/2 (notebook 10), from a gthread server.
    results = dataclasses.replace(results, http2=http2_bench.compare_for_bench(config, log=print))
    args.out.mkdir(parents=True, exist_ok=True)
    # Many event streams on one ASGI worker, sync and gthread beside it (notebook 09).
    streams, stream_targets = event_streams(args.out, clients=args.streams,
                                            count=args.stream_events)
    # The same streams, a thousand at once, on one worker of each ASGI server (notebook 11).
    per_server, server_targets = server_streams(
        args.out, clients=args.server_streams, count=args.server_stream_events,
        servers=args.servers)
    # One event to a thousand topic streams on two workers, through PostgreSQL (notebook 12).
    fanned, fanout_targets = fan_out(args.out, streams=args.fanout_streams,
                                     events=args.fanout_events)
    results = dataclasses.replace(
        results, targets=[*results.targets, *stream_targets, *server_targets, *fanout_targets])
    for name, (figure, reading) in plots.all_figures(results).items():
        path = args.out / f"{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        print(f"{path}: {reading}")
    results = dataclasses.replace(results, elapsed_s=time.perf_counter() - started)
    (args.out / "results.json").write_text(results.to_json())
    print()
    print(bench_report.format_table(results))
    if results.http2 is not None:
        print()
        print(http2_bench.format_comparison(results.http2))
    print()
    print(sse_bench.format_summary(streams, targets=False))  # its targets are in the table
    print()
    print(server_bench.format_summary(per_server, targets=False))
    if fanned is not None:
        print()
        print(fanout_bench.format_summary(fanned, targets=False))
    print(f"\nResults in {args.out / 'results.json'} (schema version {results.schema_version}); "
          f"took {results.elapsed_s:.0f} s.")
    missed = [t.name for t in results.targets if not t.met]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
