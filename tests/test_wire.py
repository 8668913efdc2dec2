"""Chunked framing on the wire, live against Gunicorn: when it is used, and what it carries.

The same conditions notebook 03 tabulates, one test each, so a Gunicorn or
Django release that changes one of them fails here with a named test.
"""

from __future__ import annotations

import h11
import pytest

from demo_app import csvgen
from demo_app.settings import DEFAULT_MIDDLEWARE
from streamlab.servers.gunicorn import DemoServer
from streamlab.wire.chunked import decode_chunked
from streamlab.wire.framing import IncompleteResponse, observe_framing, split_responses
from streamlab.wire.http1 import RawResponse, build_request, exchange, raw_request

WITHOUT_COMMON = ",".join(m for m in DEFAULT_MIDDLEWARE if not m.endswith("CommonMiddleware"))


@pytest.fixture(scope="module")
def bare_server():
    """The demo app without CommonMiddleware, so nothing adds a Content-Length."""
    with DemoServer(name="tests-wire-bare", env={"DEMO_MIDDLEWARE": WITHOUT_COMMON}) as server:
        yield server


@pytest.fixture(scope="module")
def gthread_server():
    with DemoServer(name="tests-wire-gthread", worker_class="gthread", threads=2) as server:
        yield server


CONDITIONS = [
    # (path, method, version, chunked?, how the body ends)
    pytest.param("/hello_streaming", "GET", "HTTP/1.1", True, "last chunk", id="http11-get"),
    pytest.param("/hello_streaming", "GET", "HTTP/1.0", False, "connection close", id="http10"),
    pytest.param("/hello_streaming", "HEAD", "HTTP/1.1", False, "no body", id="head"),
    pytest.param("/download_csv?rows=3", "GET", "HTTP/1.1", False,
                 "after 45 bytes", id="content-length"),
    pytest.param("/empty?status=204", "GET", "HTTP/1.1", False, "no body", id="status-204"),
    pytest.param("/empty?status=304", "GET", "HTTP/1.1", False, "no body", id="status-304"),
]


@pytest.mark.parametrize(("path", "method", "version", "chunked", "ends"), CONDITIONS)
def test_framing_condition(sync_server, path, method, version, chunked, ends) -> None:
    row = observe_framing(sync_server.url(path), method=method, version=version)
    assert row["chunked"] is chunked
    assert row["body ends"] == ends
    assert (row["Transfer-Encoding"] == "chunked") is chunked


@pytest.mark.parametrize("status", [204, 304])
def test_no_chunking_for_204_and_304_even_without_content_length(bare_server, status) -> None:
    row = observe_framing(bare_server.url(f"/empty?status={status}"))
    assert (row["chunked"], row["Content-Length"], row["body bytes"]) == (False, "-", 0)
    control = observe_framing(bare_server.url("/empty?status=200"))
    assert control["chunked"] is True and control["body bytes"] == len(b"0\r\n\r\n")


def test_plain_response_is_chunked_only_without_common_middleware(
    sync_server, bare_server
) -> None:
    with_common = raw_request(sync_server.url("/hello"))
    assert with_common.headers.get("Content-Length") == "14"
    assert "Transfer-Encoding" not in with_common.headers

    without = raw_request(bare_server.url("/hello"))
    assert without.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in without.headers
    assert [c.data for c in decode_chunked(without.body).chunks] == [b"Hello, there!\n"]


def test_each_yielded_piece_is_one_chunk(sync_server) -> None:
    response = raw_request(sync_server.url("/download_csv_streaming?rows=50&chunk_rows=7"))
    chunks = decode_chunked(response.body).chunks
    assert [c.data.decode() for c in chunks] == list(csvgen.iter_chunks(50, 7))
    assert all(c.size_line == b"%X" % c.size for c in chunks)  # upper-case hex, no extensions


def test_gunicorn_chunks_decode_the_same_with_h11(sync_server) -> None:
    response = raw_request(sync_server.url("/download_csv_streaming?rows=3000&chunk_rows=100"))
    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(response.data)
    data = b""
    while not isinstance(event := conn.next_event(), h11.EndOfMessage):
        if isinstance(event, h11.Data):
            data += event.data
    assert decode_chunked(response.body).data == data == csvgen.csv_text(3000).encode()


def test_sync_worker_closes_even_when_asked_to_keep_alive(sync_server) -> None:
    response = raw_request(sync_server.url("/hello_streaming"), close=False, idle_timeout=5)
    assert response.headers["Connection"] == "close"
    assert response.closed_by_server


def test_gthread_worker_keeps_the_connection_for_a_second_request(gthread_server) -> None:
    host = f"127.0.0.1:{gthread_server.port}"
    payload = build_request("/hello_streaming", host, close=False) + build_request(
        "/hello", host, close=True
    )
    data = exchange("127.0.0.1", gthread_server.port, payload, idle_timeout=5)
    first, second = split_responses(data.data)
    assert first.headers["Connection"] == "keep-alive"
    assert decode_chunked(first.body).data == b"Hello, there!\n"
    assert second.headers["Connection"] == "close" and second.body == b"Hello, there!\n"
    assert data.closed_by_server


def test_gthread_http10_stream_must_close(gthread_server) -> None:
    """HTTP/1.0 has no chunking, so an unsized body can only end by closing."""
    keep = {"Connection": "keep-alive"}
    stream = raw_request(gthread_server.url("/hello_streaming"), version="HTTP/1.0",
                         headers=keep, idle_timeout=2)
    sized = raw_request(gthread_server.url("/hello"), version="HTTP/1.0",
                        headers=keep, idle_timeout=0.5)
    assert (stream.headers["Connection"], stream.closed_by_server) == ("close", True)
    assert (sized.headers["Connection"], sized.closed_by_server) == ("keep-alive", False)


def test_a_cut_short_asgi_body_is_flagged():
    """The hostile suite's check for a body cut short runs on the ASGI worker's answers.

    Their header names mix cases: Django's ``Content-Length`` as Django spells
    it, Gunicorn's own ``transfer-encoding`` in lower case. Every lookup goes
    through one case-insensitive ``Headers`` (a case-sensitive copy once hid
    this check), so a lower-cased ``content-length`` is flagged too.
    """
    from support import hostile

    with DemoServer(name="tests-wire-asgi", worker_class="asgi") as server:
        sized = raw_request(server.url("/download_csv?rows=100"))
        chunked = raw_request(server.url("/download_csv_streaming?rows=100"))
    assert b"\r\ntransfer-encoding: chunked\r\n" in chunked.head + b"\r\n"
    lowered = RawResponse(sized.data.replace(b"Content-Length:", b"content-length:"), True, 0.0)
    request = hostile.Hostile(
        url="/download_csv", category="test", label="cut short", payload=b"",
        expect=hostile.Expect(statuses=hostile.everywhere(200)),
    )
    for whole in (sized, chunked, lowered):
        assert split_responses(whole.data)[0].data == whole.data
        assert hostile.judge(request, whole, "asgi") == []
        cut = RawResponse(whole.data[:-10], closed_by_server=True, elapsed_s=0.0)
        with pytest.raises(IncompleteResponse):
            split_responses(cut.data)
        assert "framing" in hostile.judge(request, cut, "asgi")


def test_written_by_gunicorn_matches_a_real_sync_worker(bare_server):
    """The in-process writer frames pieces exactly as Gunicorn's sync worker does on the wire."""
    from streamlab.wire.gunicorn_writer import written_by_gunicorn

    live = raw_request(bare_server.url("/download_csv_streaming?rows=5&chunk_rows=2"))
    pieces = [piece.data for piece in decode_chunked(live.body).chunks]
    written = written_by_gunicorn(pieces, headers=[("Content-Type", "text/csv")])
    assert written.body == live.body
    assert written.headers["Transfer-Encoding"] == "chunked"
    sized = written_by_gunicorn([b"123456789"], headers=[("Content-Length", "6")])
    assert sized.body == b"123456" and "Transfer-Encoding" not in sized.headers
