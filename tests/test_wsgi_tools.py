"""The WSGI helpers against real Django, a real Gunicorn and real sockets.

``call_wsgi`` must behave like a WSGI server (the standard library's validator
is the referee), and the toy server must put on the wire what Gunicorn puts
there for the same requests.
"""

import inspect
import math
import socket
from wsgiref.validate import validator

import h11
import pytest
import requests
from django.core.signals import request_finished
from django.http import HttpResponse, StreamingHttpResponse

from demo_app import csvgen
from streamlab import raw_request
from streamlab.servers.toy_wsgi import (
    RecordingStartResponse,
    ToyServer,
    build_environ,
    call_wsgi,
    django_application,
    response_app,
)

ROWS, CHUNK_ROWS = 1000, 100
PLAIN = f"/download_csv?rows={ROWS}"
STREAMING = f"/download_csv_streaming?rows={ROWS}&chunk_rows={CHUNK_ROWS}"


@pytest.fixture(scope="module")
def application():
    return django_application()


@pytest.fixture
def toy(application):
    with ToyServer(application) as server:
        yield server
    assert not server.running


def hello_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, ", environ["PATH_INFO"].encode("latin-1")]


# -- build_environ -------------------------------------------------------------


def test_environ_satisfies_the_standard_library_validator():
    result = call_wsgi(validator(hello_app), "/x?y=1", headers={"Accept": "*/*"})
    assert result.body == b"Hello, /x"


def test_environ_carries_path_query_and_headers():
    environ = build_environ(
        "/caf%C3%A9?rows=3",
        method="head",
        headers={"Content-Type": "text/csv", "X-Thing": "1"},
        body=b"abc",
    )
    assert environ["REQUEST_METHOD"] == "HEAD"
    assert environ["PATH_INFO"] == "/caf\u00c3\u00a9"  # UTF-8 bytes carried as latin-1
    assert environ["QUERY_STRING"] == "rows=3"
    assert environ["CONTENT_TYPE"] == "text/csv" and "HTTP_CONTENT_TYPE" not in environ
    assert environ["HTTP_X_THING"] == "1"
    assert environ["CONTENT_LENGTH"] == "3" and environ["wsgi.input"].read() == b"abc"


def test_environ_from_a_full_url_takes_its_host_and_port():
    environ = build_environ("http://127.0.0.1:8123/hello")
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8123")
    assert environ["HTTP_HOST"] == "127.0.0.1:8123"


@pytest.mark.parametrize("target", ["https://example.com/", "no-slash"])
def test_environ_refuses_what_it_cannot_represent(target):
    with pytest.raises(ValueError):
        build_environ(target)


# -- call_wsgi -------------------------------------------------------------------


def test_django_hands_over_one_item_or_one_per_chunk(application):
    plain = call_wsgi(validator(application), PLAIN)
    streamed = call_wsgi(application, STREAMING)
    assert len(plain.items) == 1 and plain.header("content-length") == str(len(plain.body))
    assert streamed.iterable_type == "StreamingHttpResponse"
    assert streamed.items == [c.encode() for c in csvgen.iter_chunks(ROWS, CHUNK_ROWS)]
    assert len(streamed.items) == math.ceil(ROWS / CHUNK_ROWS)
    assert streamed.header("Content-Length") is None
    assert plain.body == streamed.body == csvgen.csv_text(ROWS).encode()


def test_close_is_called_and_django_sends_request_finished(application):
    senders = []

    def receiver(sender, **kwargs):
        senders.append(sender)

    request_finished.connect(receiver)
    try:
        cut = call_wsgi(application, STREAMING, max_items=2)
    finally:
        request_finished.disconnect(receiver)
    assert cut.close_called and cut.iterable.closed
    assert len(cut.items) == 2
    assert senders == [type(application)]
    assert inspect.getgeneratorstate(cut.iterable._iterator) == inspect.GEN_CLOSED


def test_close_is_called_even_when_the_body_is_not_bytes():
    closed = []

    class Body:
        def __iter__(self):
            yield "a str"

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body()

    with pytest.raises(TypeError, match="not bytes"):
        call_wsgi(app)
    assert closed == [True]


def test_second_start_response_without_exc_info_is_refused():
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("500 Internal Server Error", [])
        return []

    with pytest.raises(AssertionError, match="second time"):
        call_wsgi(app)


def test_legacy_write_callable_bytes_come_first():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        return [b"returned"]

    result = call_wsgi(validator(app))
    assert result.items == [b"written, ", b"returned"]


def test_recording_start_response_keeps_the_last_call():
    recorder = RecordingStartResponse()
    recorder("200 OK", [("A", "1")])
    recorder("500 Internal Server Error", [("B", "2")], exc_info=(None, None, None))
    assert recorder.status == "500 Internal Server Error" and recorder.headers == [("B", "2")]
    assert len(recorder.calls) == 2


def test_response_app_serves_a_ready_response():
    plain = call_wsgi(validator(response_app(HttpResponse("whole", status=201))))
    streamed = call_wsgi(response_app(StreamingHttpResponse(iter(["a", "b", "c"]))))
    assert plain.status == "201 Created" and plain.items == [b"whole"]
    assert streamed.items == [b"a", b"b", b"c"] and streamed.iterable.closed


# -- Gunicorn and the toy server -------------------------------------------------


def test_gunicorn_sends_one_chunk_per_item(application, sync_server):
    items = call_wsgi(application, STREAMING).items
    with requests.get(sync_server.url(STREAMING), stream=True, timeout=30) as response:
        pieces = list(response.iter_content(chunk_size=None))
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert response.headers["Connection"] == "close"
    assert pieces == items


def test_toy_server_frames_like_gunicorn(toy, sync_server):
    for path, chunked in [(PLAIN, False), (STREAMING, True), ("/hello", False)]:
        mine = requests.get(toy.url(path), timeout=30)
        theirs = requests.get(sync_server.url(path), timeout=30)
        assert mine.status_code == theirs.status_code == 200
        assert mine.content == theirs.content
        for response in (mine, theirs):
            assert (response.headers.get("Transfer-Encoding") == "chunked") is chunked
            assert ("Content-Length" in response.headers) is not chunked
    toy.stop()  # waits for the last exchange to be recorded
    assert [e.writes for e in toy.exchanges] == [1, math.ceil(ROWS / CHUNK_ROWS), 1]
    assert all(e.error is None for e in toy.exchanges)


def test_toy_server_chunks_parse_with_h11(toy):
    raw = raw_request(toy.url("/hello_streaming"))
    assert raw.closed_by_server
    assert raw.body == b"6\r\nHello,\r\n8\r\n there!\n\r\n0\r\n\r\n"
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(raw.data)
    events = []
    while (event := client.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
        events.append(event)
    data = [bytes(e.data) for e in events if isinstance(e, h11.Data)]
    assert data == [b"Hello,", b" there!\n"]
    assert isinstance(events[-1], h11.EndOfMessage)


def test_toy_server_speaks_http10_without_chunks(toy):
    raw = raw_request(toy.url("/hello_streaming"), version="HTTP/1.0")
    assert raw.status_line == "HTTP/1.0 200 OK"
    assert "Transfer-Encoding" not in raw.headers
    assert raw.body == b"Hello, there!\n" and raw.closed_by_server


def test_toy_server_survives_a_failing_app():
    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        return hello_app(environ, start_response)

    with ToyServer(app) as server:
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url("/boom"), timeout=10)
        assert requests.get(server.url("/after"), timeout=10).content == b"Hello, /after"
    assert calls == ["/boom", "/after"]
    assert "boom" in server.exchanges[0].error and server.exchanges[1].error is None


def test_toy_server_stops_listening():
    server = ToyServer(hello_app).start()
    port = server.port
    assert server.running
    server.stop()
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
