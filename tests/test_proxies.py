"""What notebook 08 measures between a view and its client: gzip, raw stream reads, timeouts.

Real Gunicorn subprocesses on 127.0.0.1, and a real nginx where one is
installed (those tests are skipped otherwise, like tests/test_nginx.py).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import matplotlib.pyplot as plt
import pytest
from gunicorn.config import Timeout

from streamlab import DemoServer, measure
from streamlab.measurement.proxies import (
    INTERMEDIARY_TIMEOUTS,
    LOOKED_UP,
    StreamRead,
    content_arrivals,
    gzip_pieces_before_output,
    read_stream,
)
from streamlab.measurement.stream_plots import idle_timeout_figure
from streamlab.servers.nginx import nginx_available, start_nginx

needs_nginx = pytest.mark.skipif(
    not nginx_available(),
    reason="no nginx binary on PATH (or STREAMLAB_NO_NGINX=1): install nginx to run these",
)

GZIP = ("django.middleware.security.SecurityMiddleware,django.middleware.common.CommonMiddleware,"
        "django.middleware.gzip.GZipMiddleware")
SLOW = "/download_csv_streaming?rows=400&chunk_rows=40&delay_ms=50"  # 10 small pieces, ~0.5 s
STEADY = "/download_csv_streaming?rows=12&chunk_rows=1&delay_ms=200"  # never silent for 1 s
GAP = "/download_csv_streaming?rows=2&chunk_rows=1&delay_ms=1500"  # silent for 1.5 s


def _gzip_stream(flush: bool):
    """A stand-in for Django's compress_sequence, with or without a flush per piece."""

    def compress(pieces: Iterable[bytes]) -> Iterator[bytes]:
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zfile:
            zfile.flush()
            yield _drain(buffer)
            for piece in pieces:
                zfile.write(piece)
                if flush:
                    zfile.flush()
                if data := _drain(buffer):
                    yield data
        yield _drain(buffer)

    return compress


def _drain(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data


# -- gzip ---------------------------------------------------------------------------------------


def test_gzip_probe_tells_a_flushing_compressor_from_one_that_holds_pieces():
    assert gzip_pieces_before_output(_gzip_stream(flush=True)) == 1
    assert gzip_pieces_before_output(_gzip_stream(flush=False), pieces=7) == 7
    assert gzip_pieces_before_output() in (1, 10)  # the installed Django: one or the other


def test_gzip_probe_refuses_a_compressor_that_is_not_gzip():
    def not_gzip(pieces: Iterable[bytes]) -> Iterator[bytes]:
        yield from pieces

    with pytest.raises(ValueError, match="gzip header"):
        gzip_pieces_before_output(not_gzip)


@pytest.fixture(scope="module")
def gzip_server():
    with DemoServer(name="tests-proxies-gzip", env={"DEMO_MIDDLEWARE": GZIP}) as server:
        yield server


def test_content_arrivals_follow_the_installed_compressor(gzip_server):
    plain = measure(gzip_server.url(SLOW), headers={"Accept-Encoding": "identity"},
                    keep_body=True)
    packed = measure(gzip_server.url(SLOW), headers={"Accept-Encoding": "gzip"}, keep_body=True)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert content_arrivals(plain)[0] < 0.3 * plain.total_s
    first = content_arrivals(packed)[0]
    if gzip_pieces_before_output() == 1:  # flushed per piece: readable at once
        assert first < 0.3 * packed.total_s
    else:  # held in the compressor: readable only at the end
        assert first > 0.7 * packed.total_s
    assert packed.ttfb_s < 0.3 * packed.total_s  # the gzip header itself comes at once


def test_content_arrivals_needs_the_body(gzip_server):
    with pytest.raises(ValueError, match="keep_body=True"):
        content_arrivals(measure(gzip_server.url("/hello")))


# -- reading a stream by hand -------------------------------------------------------------------


@pytest.fixture(scope="module")
def gthread_server():
    with DemoServer(name="tests-proxies-gthread", worker_class="gthread", threads=4) as server:
        yield server


def test_read_stream_reports_a_whole_stream_and_its_silences(gthread_server):
    run = read_stream(gthread_server.url(GAP))
    assert run.status == 200 and run.complete and run.error is None
    assert run.body.endswith(b"0\r\n\r\n")
    assert [n for _, n in run.timeline] == sorted(n for _, n in run.timeline)
    assert run.first_byte_s is not None and run.first_byte_s < 0.5
    assert 1.3 < run.longest_silence_s < run.elapsed_s


def test_read_stream_reports_a_stream_cut_by_gunicorns_timeout():
    with DemoServer(name="tests-proxies-timeout", timeout=1) as server:
        run = read_stream(server.url("/download_csv_streaming?rows=30&chunk_rows=1&delay_ms=200"))
    assert run.status == 200 and not run.complete
    assert "zero-size chunk" in run.error
    assert run.longest_silence_s < 1  # never idle: Gunicorn's sync timeout is a total one


@needs_nginx
def test_nginx_idle_timeout_cuts_only_the_silent_stream(gthread_server):
    with start_nginx(gthread_server, buffering=False, name="tests-proxies-idle",
                     extra_directives=["proxy_read_timeout 1s"]) as proxy:
        assert "proxy_read_timeout 1s;" in proxy.config
        steady = read_stream(proxy.url(STEADY))
        cut = read_stream(proxy.url(GAP))
        log = proxy.log
    assert steady.complete and steady.elapsed_s > 2
    assert not cut.complete and cut.status == 200 and 0.95 < cut.elapsed_s < 1.45
    timed_out = [line for line in log.splitlines() if "upstream timed out" in line]
    assert len(timed_out) == 1 and urlsplit(proxy.url(GAP)).query in timed_out[0]


# -- the timeout table and its figure -----------------------------------------------------------


def test_every_timeout_has_a_source_and_a_known_kind():
    kinds = {"idle", "total", "first byte", "idle, client side", "not stated"}
    assert LOOKED_UP == "2026-11-26"
    for t in INTERMEDIARY_TIMEOUTS:
        assert t.source.startswith("https://"), t
        assert t.kind in kinds and t.seconds > 0, t
        assert set(t.row()) >= {"intermediary", "default s", "kind", "shown live"}
    live = {(t.intermediary, t.setting) for t in INTERMEDIARY_TIMEOUTS if t.live}
    assert live == {("nginx", "proxy_read_timeout"), ("Gunicorn, sync worker", "--timeout")}


def test_the_gunicorn_row_is_the_installed_default():
    row = next(t for t in INTERMEDIARY_TIMEOUTS if t.intermediary.startswith("Gunicorn"))
    assert row.seconds == Timeout.default


def test_idle_timeout_figure_sorts_runs_by_how_they_ended():
    def run(times: list[float], elapsed: float, complete: bool) -> StreamRead:
        timeline = [(0.0, 0)] + [(t, 10 * (i + 1)) for i, t in enumerate(times)]
        return StreamRead("http://127.0.0.1:1/", 200, timeline, b"", elapsed, complete, None)

    runs = {"silent": run([0.0], 1.0, False),
            "busy": run([0.25 * i for i in range(10)], 2.4, False),
            "fine": run([0.0, 1.5], 3.0, True)}
    figure, reading = idle_timeout_figure(runs, idle_timeout_s=1.0)
    try:
        assert figure.axes[0].get_xlabel().startswith("time")
        assert len(figure.axes[0].get_legend().get_texts()) == 3
    finally:
        plt.close(figure)
    idle, total, whole = reading.split(". ")[:3]
    assert "silent" in idle and "busy" in total and "fine" in whole
