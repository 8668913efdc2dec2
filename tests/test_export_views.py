"""The database export, file download and middleware demos of notebooks 07 and 08.

Parameter checks run in-process (they answer before any database access).
Everything that reads the table runs against a real Gunicorn with its own
SQLite file, created with ``manage.py migrate`` and ``manage.py seed_rows``.
"""

from __future__ import annotations

import csv
import io
import math
import sqlite3
import zlib
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory

from demo_app import export_views
from demo_app.demo_middleware import BodySizeBufferingMiddleware, BodySizeFromContentMiddleware
from demo_app.management.commands.seed_rows import make_row
from demo_app.models import ExportRow
from streamlab import DemoServer, measure, raw_request
from streamlab.servers.manage import manage
from streamlab.servers.process import still_running
from streamlab.wire.chunked import decode_chunked

ROWS = 3000
MiB = 2**20


def expected_csv(rows: int) -> bytes:
    """The export of the first ``rows`` seeded rows, built independently of the views."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ExportRow.CSV_HEADER)
    writer.writerows(make_row(i).csv_fields() for i in range(1, rows + 1))
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def app_env(tmp_path_factory):
    """A private database (migrated and seeded) and a private folder for generated files."""
    root = tmp_path_factory.mktemp("export")
    env = {"DEMO_DB_PATH": str(root / "db.sqlite3"), "DEMO_FILES_DIR": str(root / "files")}
    assert manage(env, "migrate", "--verbosity", "0").returncode == 0
    seeded = manage(env, "seed_rows", str(ROWS), "--batch-size", "700")
    assert seeded.returncode == 0, seeded.stderr
    assert f"Seeded {ROWS} rows" in seeded.stdout
    return env


@pytest.fixture(scope="module")
def server(app_env):
    with DemoServer(name="tests-export", env=app_env) as server:
        yield server


# -- the seed command ---------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["abc"], "rows must be a whole number"),
        (["-1"], "rows must be between 0"),
        ([str(10**9)], "rows must be between 0"),
        (["10", "--batch-size", "0"], "--batch-size must be between 1"),
        (["10", "--batch-size", "x"], "--batch-size must be a whole number"),
    ],
)
def test_seed_rows_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed_rows", *args)


def test_seed_rows_replaces_the_table(app_env, tmp_path):
    env = {**app_env, "DEMO_DB_PATH": str(tmp_path / "other.sqlite3")}
    assert manage(env, "migrate", "--verbosity", "0").returncode == 0
    for rows in (25, 10):  # a second run replaces, not appends
        assert manage(env, "seed_rows", str(rows)).returncode == 0
    with DemoServer(name="tests-export-other", env=env) as other:
        body = requests.get(other.url("/export/streaming?rows=1000"), timeout=10).content
    assert body == expected_csv(10)


def test_seed_rows_error_exit_code(app_env):
    result = manage(app_env, "seed_rows", "many")
    assert result.returncode != 0
    assert "rows must be a whole number, got 'many'" in result.stderr


# -- parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/export/streaming?rows=-1",
        "/export/streaming?rows=abc",
        "/export/streaming?chunk_size=0",
        "/export/streaming?delay_ms=100000",
        "/export/streaming?unbuffered=2",
        "/export/streaming?rows=1&rows=2",
        f"/export/whole?rows={export_views.WHOLE_MAX_ROWS + 1}",
        "/export/paged?page_size=0",
        "/files/file_response?mib=-1",
        f"/files/file_response?mib={export_views.MAX_FILE_MIB + 1}",
        "/files/generator?block_kib=0",
        "/files/generator?mib=1.5",
        "/export/async?rows=-1",
        f"/export/async?rows={export_views.MAX_ROWS + 1}",
        "/export/async?chunk_size=0",
        "/export/async?unbuffered=yes",
        "/files/async?mib=-1",
        f"/files/async?mib={export_views.MAX_FILE_MIB + 1}",
        f"/files/async?block_kib={export_views.MAX_BLOCK_KIB + 1}",
        "/files/accel?mib=abc",
        f"/files/accel?mib={export_views.MAX_FILE_MIB + 1}",
    ],
)
def test_bad_parameters_are_a_400_with_a_reason(assert_bad_request, path):
    response = Client().get(path)
    reason = "given 2 times" if b"given 2 times" in response.content else "must be"
    assert_bad_request(response, reason)


def test_exports_without_a_migrated_database_are_a_503_naming_the_command(tmp_path):
    """Not a 500: the server says what to run, and answers once it has been run."""
    env = {"DEMO_DB_PATH": str(tmp_path / "empty.sqlite3")}
    sqlite3.connect(env["DEMO_DB_PATH"]).close()  # an empty database file, never migrated
    with DemoServer(name="tests-export-unmigrated", env=env) as srv:
        for path in ("/export/streaming", "/export/whole", "/export/paged", "/export/async",
                     "/export/transaction"):
            response = requests.get(srv.url(path), timeout=10)
            assert response.status_code == 503, path
            assert response.headers["Content-Type"].startswith("text/plain")
            assert response.text == export_views.NO_TABLE
        assert response.text.count("\n") == 1
        assert "run `python manage.py migrate`" in response.text
        assert manage(env, "migrate", "--verbosity", "0").returncode == 0
        assert requests.get(srv.url("/export/streaming?rows=0"), timeout=10).status_code == 200
        assert "Internal Server Error" not in srv.log


def test_exports_refuse_unsafe_methods():
    for path in ("/export/streaming", "/export/async", "/files/async", "/files/accel"):
        assert Client().post(path).status_code == 405, path


def test_pseudo_buffer_returns_the_line():
    writer = csv.writer(export_views.Echo())
    assert writer.writerow(["a,b", 1]) == '"a,b",1\r\n'


# -- the exports, over HTTP ---------------------------------------------------------


def test_streaming_export_is_chunked_and_exact(server):
    response = raw_request(server.url(f"/export/streaming?rows={ROWS}&chunk_size=500"))
    assert response.status == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers
    assert "X-Accel-Buffering" not in response.headers
    chunks = decode_chunked(response.body).chunks
    # the header line, then one piece per chunk_size rows
    assert len(chunks) == 1 + math.ceil(ROWS / 500)
    assert b"".join(c.data for c in chunks) == expected_csv(ROWS)


def test_rows_limits_the_export(server):
    body = requests.get(server.url("/export/streaming?rows=7"), timeout=10).content
    assert body == expected_csv(7)
    empty = requests.get(server.url("/export/streaming?rows=0"), timeout=10).content
    assert empty == expected_csv(0)


def test_whole_and_paged_exports_match_the_streamed_one(server):
    whole = requests.get(server.url(f"/export/whole?rows={ROWS}"), timeout=10)
    paged = requests.get(server.url(f"/export/paged?rows={ROWS}&page_size=7"), timeout=10)
    assert whole.content == paged.content == expected_csv(ROWS)
    assert whole.headers["Content-Length"] == str(len(whole.content))
    assert "Content-Length" not in paged.headers
    assert "export.csv" in whole.headers["Content-Disposition"]


def test_unbuffered_sets_x_accel_buffering(server):
    response = requests.get(server.url("/export/streaming?rows=3&unbuffered=1"), timeout=10)
    assert response.headers["X-Accel-Buffering"] == "no"


def test_streaming_export_uses_less_worker_memory_than_the_whole_one(app_env, tmp_path):
    """A generous ratio, measured in one run on a fresh server."""
    rows = 40_000
    env = {**app_env, "DEMO_DB_PATH": str(tmp_path / "big.sqlite3")}
    assert manage(env, "migrate", "--verbosity", "0").returncode == 0
    assert manage(env, "seed_rows", str(rows)).returncode == 0
    with DemoServer(name="tests-export-memory", env=env) as big:
        measure(big.url(f"/export/streaming?rows={rows}"), server=big)  # warm-up
        streamed = measure(big.url(f"/export/streaming?rows={rows}"), server=big)
        whole = measure(big.url(f"/export/whole?rows={rows}"), server=big)
    assert streamed.nbytes == whole.nbytes
    assert whole.worker_rss_delta > 8 * MiB
    assert streamed.worker_rss_delta * 3 < whole.worker_rss_delta


def test_slow_export_streams(server):
    m = measure(server.url("/export/streaming?rows=20&chunk_size=5&delay_ms=150"))
    assert m.total_s > 0.5
    assert m.ttfb_s < 0.3 * m.total_s


@pytest.fixture(scope="module")
def asgi_server(app_env):
    with DemoServer(name="tests-export-asgi", worker_class="asgi", env=app_env) as server:
        yield server


def test_async_export_is_the_same_csv_in_the_same_pieces(server, asgi_server):
    """aiterator() works on SQLite, under both kinds of server, and batches like iterator()."""
    path = f"/export/async?rows={ROWS}&chunk_size=500"
    for srv in (asgi_server, server):
        response = raw_request(srv.url(path))
        assert response.status == 200 and response.headers["Transfer-Encoding"] == "chunked"
        chunks = decode_chunked(response.body).chunks
        assert len(chunks) == 1 + math.ceil(ROWS / 500)
        assert b"".join(c.data for c in chunks) == expected_csv(ROWS)
    assert requests.get(asgi_server.url("/export/async?rows=0"), timeout=10).content == (
        expected_csv(0))
    unbuffered = requests.get(asgi_server.url("/export/async?rows=3&unbuffered=1"), timeout=10)
    assert unbuffered.headers["X-Accel-Buffering"] == "no"


def test_under_asgi_aiterator_streams_and_iterator_is_read_whole_first(asgi_server):
    slow = "rows=20&chunk_size=5&delay_ms=150"
    streamed = measure(asgi_server.url(f"/export/async?{slow}"))
    held = measure(asgi_server.url(f"/export/streaming?{slow}"))
    assert streamed.nbytes == held.nbytes == len(expected_csv(20))
    assert streamed.total_s > 0.5 and streamed.ttfb_s < 0.3 * streamed.total_s
    assert held.total_s > 0.5 and held.ttfb_s > 0.8 * held.total_s
    assert "must consume synchronous iterators" in asgi_server.log


def test_transaction_view_reports_where_it_runs(server):
    body = requests.get(server.url("/export/transaction"), timeout=10).text
    assert body == f"where,in_atomic_block,rows\r\nview,False,{ROWS}\r\ngenerator,False,{ROWS}\r\n"


def test_atomic_requests_cover_the_view_not_the_generator(app_env, monkeypatch):
    """Through Django's own WSGI handler, in this process, with ATOMIC_REQUESTS on."""
    from django.db import connection

    from streamlab.servers.toy_wsgi import (
        RecordingStartResponse,
        build_environ,
        django_application,
    )

    monkeypatch.setitem(connection.settings_dict, "NAME", app_env["DEMO_DB_PATH"])
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    connection.close()
    try:
        body = django_application()(build_environ("/export/transaction"), RecordingStartResponse())
        try:
            lines = b"".join(body).decode().splitlines()
        finally:
            body.close()
    finally:
        connection.close()
    assert lines[1:] == [f"view,True,{ROWS}", f"generator,False,{ROWS}"]


# -- files ---------------------------------------------------------------------------


def test_generated_file_is_exact_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_FILES_DIR", str(tmp_path))
    path = export_views.generated_file(2)
    assert path.stat().st_size == 2 * MiB
    inode = path.stat().st_ino
    assert export_views.generated_file(2).stat().st_ino == inode
    assert list(tmp_path.glob("*.part")) == []


def test_file_response_is_handed_to_the_servers_file_wrapper(tmp_path, monkeypatch):
    from gunicorn.http.wsgi import FileWrapper

    from streamlab.servers.toy_wsgi import (
        RecordingStartResponse,
        build_environ,
        django_application,
    )

    monkeypatch.setenv("DEMO_FILES_DIR", str(tmp_path))
    app = django_application()
    for path, wrapped in (("/files/file_response?mib=1", True), ("/files/generator?mib=1", False)):
        start_response = RecordingStartResponse()
        body = app({**build_environ(path), "wsgi.file_wrapper": FileWrapper}, start_response)
        try:
            assert isinstance(body, FileWrapper) is wrapped
            assert dict(start_response.headers)["Content-Length"] == str(MiB)
        finally:
            body.close()


@pytest.mark.parametrize("sendfile", [True, False])
def test_file_downloads_send_the_same_bytes(app_env, sendfile):
    extra = [] if sendfile else ["--no-sendfile"]
    name = f"tests-files-{sendfile}"
    with DemoServer(name=name, env=app_env, extra_args=extra) as srv:
        bodies = {}
        for view in ("file_response?mib=3", "generator?mib=3&block_kib=5"):
            response = requests.get(srv.url(f"/files/{view}"), timeout=30)
            assert response.status_code == 200
            assert response.headers["Content-Length"] == str(3 * MiB)
            assert "Transfer-Encoding" not in response.headers
            assert "attachment" in response.headers["Content-Disposition"]
            bodies[view] = response.content
    first, second = bodies.values()
    assert first == second and len(first) == 3 * MiB
    assert first.startswith(b"Hello,world,")


def test_async_file_and_accel_views(app_env, asgi_server):
    expected = requests.get(asgi_server.url("/files/file_response?mib=3"), timeout=30).content
    response = requests.get(asgi_server.url("/files/async?mib=3&block_kib=5"), timeout=30)
    assert response.status_code == 200 and response.content == expected
    assert len(expected) == 3 * MiB
    assert response.headers["Content-Length"] == str(3 * MiB)
    assert "attachment" in response.headers["Content-Disposition"]
    accel = requests.get(asgi_server.url("/files/accel?mib=2"), timeout=10)
    assert accel.status_code == 200 and accel.content == b""  # no proxy here to act on it
    name = "generated-2MiB.csv"
    assert accel.headers["X-Accel-Redirect"] == export_views.ACCEL_LOCATION + name
    assert (Path(app_env["DEMO_FILES_DIR"]) / name).stat().st_size == 2 * MiB


def test_first_part_probe_sees_what_the_asgi_handler_does(tmp_path, monkeypatch):
    """Driven as Django's ASGIHandler drives it: a file read whole first, or block by block."""
    from streamlab.measurement.files import first_part_probe

    monkeypatch.setenv("DEMO_FILES_DIR", str(tmp_path))
    whole = first_part_probe(export_views.file_response, "mib=2")
    streamed = first_part_probe(export_views.file_async, "mib=2&block_kib=64")
    assert (whole.iterator, streamed.iterator) == ("sync", "async")
    assert whole.pulled == whole.pulled_at_first_part == 2 * MiB // 2**16  # 64 KiB blocks
    assert whole.whole_first and "synchronous iterators" in whole.warnings[0]
    assert streamed.pulled_at_first_part == 1 and streamed.pulled == 32
    assert not streamed.whole_first and streamed.warnings == []


def test_under_asgi_file_response_holds_the_file_and_the_async_view_does_not(app_env):
    """Each on a fresh worker: a worker reuses memory a big response freed."""
    from streamlab.measurement.files import fresh_measure

    runs = {
        view: fresh_measure(f"/files/{view}?mib=32&block_kib=64", env=app_env,
                            worker_class="asgi", warm_up=f"/files/{view}?mib=1",
                            name=f"tests-files-asgi-{view}", read_size=MiB)
        for view in ("file_response", "async")
    }
    assert all(m.nbytes == 32 * MiB for m in runs.values())
    assert runs["file_response"].worker_rss_delta > 24 * MiB
    assert runs["async"].worker_rss_delta < 8 * MiB


# -- middleware ------------------------------------------------------------------------


def _streaming_view(request):
    from django.http import StreamingHttpResponse

    return StreamingHttpResponse(iter([b"ab", b"cd"]))


def _plain_view(request):
    from django.http import HttpResponse

    return HttpResponse(b"hello")


def test_reading_content_fails_on_a_stream():
    middleware = BodySizeFromContentMiddleware(_streaming_view)
    with pytest.raises(AttributeError, match="has no `content` attribute"):
        middleware(RequestFactory().get("/"))
    assert BodySizeFromContentMiddleware(_plain_view)(RequestFactory().get("/"))[
        "X-Body-Bytes"
    ] == "5"


def test_buffering_middleware_joins_the_stream_into_one_piece():
    response = BodySizeBufferingMiddleware(_streaming_view)(RequestFactory().get("/"))
    assert response.streaming and response["X-Body-Bytes"] == "4"
    assert list(response.streaming_content) == [b"abcd"]


def _middleware_env(app_env, *extra: str) -> dict[str, str]:
    from django.conf import settings

    return {**app_env, "DEMO_MIDDLEWARE": ",".join(settings.DEFAULT_MIDDLEWARE + list(extra))}


def test_middleware_over_http(app_env):
    slow = "/export/streaming?rows=20&chunk_size=5&delay_ms=150"
    reads = _middleware_env(app_env, "demo_app.demo_middleware.BodySizeFromContentMiddleware")
    buffers = _middleware_env(app_env, "demo_app.demo_middleware.BodySizeBufferingMiddleware")
    with DemoServer(name="tests-mw-reads", env=reads) as srv:
        assert requests.get(srv.url(slow), timeout=10).status_code == 500
        assert requests.get(srv.url("/export/whole?rows=5"), timeout=10).ok
        assert "has no `content` attribute" in srv.log
    with DemoServer(name="tests-mw-buffers", env=buffers) as srv:
        m = measure(srv.url(slow))
        pids = srv.pids()
    assert m.headers["X-Body-Bytes"] == str(m.nbytes) and m.chunked
    assert m.ttfb_s > 0.8 * m.total_s  # the stream was produced whole before sending
    assert still_running(pids) == []


def test_gzip_and_etag_on_streams(app_env):
    env = _middleware_env(
        app_env, "django.middleware.gzip.GZipMiddleware",
        "django.middleware.http.ConditionalGetMiddleware",
    )
    with DemoServer(name="tests-mw-gzip", env=env) as srv:
        gz = requests.get(srv.url(f"/export/streaming?rows={ROWS}"), stream=True, timeout=10,
                          headers={"Accept-Encoding": "gzip"})
        raw = gz.raw.read(decode_content=False)
        identity = {"Accept-Encoding": "identity"}
        stream = requests.get(srv.url("/export/streaming?rows=5"), headers=identity, timeout=10)
        whole = requests.get(srv.url("/export/whole?rows=5"), headers=identity, timeout=10)
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gz.headers["Transfer-Encoding"] == "chunked"
    assert zlib.decompress(raw, 16 + zlib.MAX_WBITS) == expected_csv(ROWS)
    assert "ETag" not in stream.headers
    assert whole.headers["ETag"].startswith('"')
