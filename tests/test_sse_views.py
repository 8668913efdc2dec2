"""The server-sent events views (demo_app.sse_views): parameters, framing, resuming,
the same bytes from the sync and the async implementation, and cleanup when a client
leaves. In-process through Django's test client, and under a real Gunicorn."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from django.test import AsyncClient, Client, override_settings

from demo_app import sse_views
from demo_app.async_views import EVENTS_DIR_ENV
from streamlab import DemoServer, raw_request
from streamlab.measurement.workers import disconnect_outcome
from streamlab.wire.chunked import decode_chunked
from streamlab.wire.sse import Event, parse_event_stream


@pytest.fixture
def client():
    return Client()


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def async_body(path: str, params: dict, **headers: str) -> tuple[object, bytes]:
    async def run():
        response = await AsyncClient().get(path, params, headers=headers)
        if not response.streaming:
            return response, response.content
        return response, b"".join([part async for part in response])
    return asyncio.run(run())


def ticks(stream: bytes) -> list[int]:
    return [int(e.last_event_id) for e in parse_event_stream(stream).events if e.type == "tick"]


# -- Parameters: a bad one is a 400 with a one-line reason ----------------------------------

EVENTS_BAD = [
    ({"count": "x"}, "count must be a whole number"),
    ({"count": "-1"}, "count must be between 0 and"),
    ({"count": "100001"}, "count must be between 0 and 100000"),
    ({"interval_ms": "1.5"}, "interval_ms must be a whole number"),
    ({"interval_ms": "10001"}, "interval_ms must be between 0 and 10000"),
    ({"heartbeat_s": "-1"}, "heartbeat_s must be between 0 and"),
    ({"heartbeat_s": "301"}, "heartbeat_s must be between 0 and 300"),
    ({"retry_ms": "soon"}, "retry_ms must be a whole number"),
    ({"retry_ms": "60001"}, "retry_ms must be between 0 and 60000"),
    ({"close_after": "-2"}, "close_after must be between 0 and"),
    ({"allow_buffering": "2"}, "allow_buffering must be between 0 and 1"),
    ({"stamp": "2"}, "stamp must be between 0 and 1"),
    ({"stamp": "yes"}, "stamp must be a whole number"),
    ({"stamp": ["1", "1"]}, "stamp was given 2 times"),
    ({"count": ["1", "2"]}, "count was given 2 times"),
    ({"tag": "../x"}, "tag must be 1 to 64 letters"),
]
TOKENS_BAD = [
    ({"think_ms": "-1"}, "think_ms must be between 0 and"),
    ({"think_ms": "10001"}, "think_ms must be between 0 and 10000"),
    ({"token_ms": "fast"}, "token_ms must be a whole number"),
    ({"seed": "-1"}, "seed must be between 0 and"),
    ({"seed": str(2**31)}, "seed must be between 0 and 2147483647"),
    ({"heartbeat_s": "x"}, "heartbeat_s must be a whole number"),
    ({"retry_ms": "-5"}, "retry_ms must be between 0 and"),
    ({"allow_buffering": "yes"}, "allow_buffering must be a whole number"),
    ({"format": "json"}, "format must be 'sse' or 'text'"),
    ({"format": ["sse", "text"]}, "format was given 2 times"),
    ({"tag": "a b"}, "tag must be 1 to 64 letters"),
]


@pytest.mark.parametrize("params, reason", EVENTS_BAD)
def test_events_bad_parameter_is_a_400(client, assert_bad_request, params, reason):
    assert_bad_request(client.get("/events", params), reason)


@pytest.mark.parametrize("params, reason", TOKENS_BAD)
def test_tokens_bad_parameter_is_a_400(client, assert_bad_request, params, reason):
    assert_bad_request(client.get("/tokens", params), reason)


def test_the_caps_are_settings(client, assert_bad_request):
    with override_settings(DEMO_MAX_EVENTS=10, DEMO_MAX_HEARTBEAT_S=2, DEMO_MAX_RETRY_MS=50):
        assert_bad_request(client.get("/events", {"count": 11}), "between 0 and 10")
        assert_bad_request(client.get("/events", {"heartbeat_s": 3}), "between 0 and 2")
        assert_bad_request(client.get("/tokens", {"retry_ms": 51}), "between 0 and 50")


@pytest.mark.parametrize("path", ["/events", "/tokens", "/chat", "/chat.js"])
def test_only_safe_methods(client, path):
    assert client.post(path).status_code == 405
    assert client.head(path).status_code == 200


# -- Framing ---------------------------------------------------------------------------------


def test_events_headers_and_exact_bytes(client):
    response = client.get("/events", {"count": 2, "interval_ms": 0, "retry_ms": 1500})
    assert response.streaming and not response.has_header("Content-Length")
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    assert body(response) == (
        b"retry: 1500\n\n"
        b'id: 1\nevent: tick\ndata: tick 1 of 2\ndata: {"n": 1, "due_ms": 0}\n\n'
        b'id: 2\nevent: tick\ndata: tick 2 of 2\ndata: {"n": 2, "due_ms": 0}\n\n'
        b"event: end\ndata: end of stream\n\n"
    )


def stamps(stream: bytes) -> list[float]:
    """Each tick's ``"sent"``, in order; a tick without one fails the test."""
    return [json.loads(e.data.splitlines()[1])["sent"]
            for e in parse_event_stream(stream).events if e.type == "tick"]


def test_stamp_adds_the_send_time_to_each_tick_and_nothing_else(client):
    params = {"count": 3, "interval_ms": 40, "retry_ms": 1500}
    before = time.time()
    stamped = body(client.get("/events", {**params, "stamp": 1}))
    after = time.time()
    sent = stamps(stamped)
    assert len(sent) == 3 and before <= sent[0] and sent[-1] <= after
    # Stamped as each event is sent, not when the plan was made: the events are 40 ms apart.
    assert all(later - earlier >= 0.04 * 0.9 for earlier, later in
               zip(sent, sent[1:], strict=False))
    assert b'event: end\ndata: end of stream\n\n' in stamped  # the end event carries none
    # Without the stamps, the bytes are the unstamped stream's.
    unstamped = re.sub(rb', "sent": [0-9.e+-]+', b"", stamped)
    assert unstamped == body(client.get("/events", params))
    assert b'"sent"' not in body(client.get("/events", {**params, "stamp": 0}))


def test_the_async_generator_stamps_the_same_way():
    before = time.time()
    response, stream = async_body("/events", {"count": 3, "interval_ms": 20, "stamp": 1})
    sent = stamps(stream)
    assert response.is_async and len(sent) == 3
    assert before <= sent[0] < sent[1] < sent[2] <= time.time()


def test_stamped_events_are_resumed_and_stamped_too(client):
    stream = body(client.get("/events", {"count": 4, "interval_ms": 0, "stamp": 1},
                             headers={"Last-Event-ID": "2"}))
    assert ticks(stream) == [3, 4] and len(stamps(stream)) == 2


def test_allow_buffering_leaves_out_the_nginx_header(client):
    response = client.get("/events", {"count": 1, "allow_buffering": 1})
    assert not response.has_header("X-Accel-Buffering")
    assert response["Content-Type"] == "text/event-stream"


def test_events_parse_back_as_a_browser_reads_them(client):
    parsed = parse_event_stream(body(client.get("/events", {"count": 3, "interval_ms": 0})))
    assert parsed.retry_ms == 1000 and parsed.last_event_id == "3"
    assert [(e.type, e.last_event_id) for e in parsed.events] == [
        ("tick", "1"), ("tick", "2"), ("tick", "3"), ("end", "3")]
    assert parsed.events[1].data == 'tick 2 of 3\n{"n": 2, "due_ms": 0}'


@pytest.mark.parametrize("data", ["a\nb", "a\r\nb", "a\rb", "\n", "", " lead", "x\n\ny"])
def test_multi_line_data_is_split_into_data_lines(data):
    framed = sse_views.sse_event(data, id=4, event="e")
    assert framed.count("data:") == len(data.replace("\r\n", "\n").replace("\r", "\n")
                                        .split("\n"))
    assert framed.endswith("\n\n") and "\r" not in framed
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    assert parse_event_stream(framed.encode()).events == [Event(expected, "e", "4")]


def test_heartbeats_fill_every_silence_of_heartbeat_s():
    steps = list(sse_views.event_steps(count=2, interval_ms=2500, heartbeat_s=1, retry_ms=0,
                                       close_after=0))
    beats = [due for due, piece in steps if piece == sse_views.HEARTBEAT]
    assert beats == [1.0, 2.0]  # between the events at 0 s and 2.5 s
    assert [due for due, _ in steps] == sorted(due for due, _ in steps)


def test_heartbeats_are_comments_on_the_wire(client):
    start = time.perf_counter()
    stream = body(client.get("/events", {"count": 2, "interval_ms": 1100, "heartbeat_s": 1}))
    assert time.perf_counter() - start >= 1.1
    assert stream.count(b"\n: heartbeat\n\n") == 1
    parsed = parse_event_stream(stream)
    assert parsed.comments == [" heartbeat"] and ticks(stream) == [1, 2]


def test_interval_spaces_the_events(client):
    start = time.perf_counter()
    assert ticks(body(client.get("/events", {"count": 4, "interval_ms": 50}))) == [1, 2, 3, 4]
    assert time.perf_counter() - start >= 3 * 0.05  # the first at once, then every 50 ms


# -- Resuming after Last-Event-ID ------------------------------------------------------------


def test_resumes_after_the_last_event_id(client):
    stream = body(client.get("/events", {"count": 5, "interval_ms": 0},
                             headers={"Last-Event-ID": "2"}))
    assert ticks(stream) == [3, 4, 5]
    assert b'"due_ms": 0}' in stream  # the schedule restarts with the connection


@pytest.mark.parametrize("last_id", ["abc", "-1", "0", "6", "99999999999999999999999",
                                     "1.5", "", " ", "\u0663", "2x"])
def test_an_id_this_stream_never_sent_is_ignored(client, last_id):
    """Documented choice (see sse_views): start from the beginning, never a 400."""
    response = client.get("/events", {"count": 5, "interval_ms": 0},
                          headers={"Last-Event-ID": last_id})
    assert response.status_code == 200 and ticks(body(response)) == [1, 2, 3, 4, 5]


def test_the_last_id_means_nothing_left_204(client):
    response = client.get("/events", {"count": 5}, headers={"Last-Event-ID": "5"})
    assert response.status_code == 204 and response.content == b""
    n = len(sse_views.TOKENS)
    assert client.get("/tokens", headers={"Last-Event-ID": str(n)}).status_code == 204


def test_close_after_then_reconnecting_gives_every_event_once(client):
    seen, last, connections = [], None, 0
    while connections < 10:
        headers = {} if last is None else {"Last-Event-ID": last}
        response = client.get("/events", {"count": 7, "interval_ms": 0, "close_after": 3},
                              headers=headers)
        connections += 1
        if response.status_code == 204:
            break
        parsed = parse_event_stream(body(response))
        seen += [int(e.last_event_id) for e in parsed.events if e.type == "tick"]
        last = parsed.last_event_id
        if any(e.type == "end" for e in parsed.events):
            break
    assert seen == [1, 2, 3, 4, 5, 6, 7] and connections == 3


# -- Tokens ----------------------------------------------------------------------------------


def test_tokens_add_up_to_the_answer():
    assert "".join(sse_views.TOKENS) == sse_views.ANSWER
    assert len(sse_views.TOKENS) > 30 and "\n\n" in sse_views.ANSWER


def test_token_text_format_is_the_answer(client):
    response = client.get("/tokens", {"format": "text", "think_ms": 0, "token_ms": 0})
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    parts = list(response.streaming_content)
    assert b"".join(parts).decode() == sse_views.ANSWER
    assert len(parts) == len(sse_views.TOKENS)  # one piece per token


def test_token_events_carry_the_answer(client):
    stream = body(client.get("/tokens", {"think_ms": 0, "token_ms": 0}))
    events = parse_event_stream(stream).events
    messages = [e for e in events if e.type == "message"]
    assert "".join(e.data for e in messages) == sse_views.ANSWER
    assert [e.last_event_id for e in messages] == [str(i) for i in
                                                   range(1, len(messages) + 1)]
    assert events[-1].type == "done" and json.loads(events[-1].data)["tokens"] == len(messages)
    assert b"data: \ndata: \n" in stream  # the paragraph break: empty data lines


def test_token_times_are_seeded_and_start_after_the_think_time():
    a = sse_views.token_due_ms(think_ms=300, token_ms=20, seed=1)
    assert a == sse_views.token_due_ms(think_ms=300, token_ms=20, seed=1)
    assert a != sse_views.token_due_ms(think_ms=300, token_ms=20, seed=2)
    assert a[0] == 300 and a == sorted(a)
    gaps = [later - earlier for earlier, later in zip(a, a[1:], strict=False)]
    assert all(10 <= g <= 30 for g in gaps) and 15 < sum(gaps) / len(gaps) < 25


def test_think_time_delays_the_first_token(client):
    start = time.perf_counter()
    parts = iter(client.get("/tokens", {"format": "text", "think_ms": 200}).streaming_content)
    next(parts)
    assert time.perf_counter() - start >= 0.2


# -- The page --------------------------------------------------------------------------------


def test_chat_page_and_its_script(client):
    page = client.get("/chat", {"think_ms": 5})
    assert page["Content-Type"] == "text/html; charset=utf-8"
    html = page.content.decode()
    assert '<script src="chat.js"></script>' in html
    assert html.count("<script") == 1  # no inline script for a content policy to block
    script = client.get("/chat.js")
    assert script["Content-Type"] == "text/javascript; charset=utf-8"
    assert script["Cache-Control"] == "no-cache" and len(script.content) > 1000


@pytest.mark.slow  # a real Chromium: left out of `make test-fast`, like tests/test_browser.py
def test_the_page_in_a_real_browser(servers):
    """What the page does, in headless Chromium: both readers get the whole answer after the
    think time; with close_after, EventSource reconnects and resumes without a gap."""
    from streamlab.measurement.browser import HeadlessChromium, unavailable

    if unavailable():
        pytest.skip(unavailable())
    server = servers["asgi"]
    with HeadlessChromium() as browser:
        tokens = browser.visit(server.url("/chat?think_ms=300&token_ms=5"))
        reconnect = browser.visit(server.url(
            "/chat?mode=events&count=5&close_after=2&retry_ms=100&interval_ms=10"))
    for name in ("eventsource", "fetch"):
        marks = tokens.marks[name]
        assert marks["text"] == sse_views.ANSWER and marks["errors"] == []
        assert marks["first"] - marks["start"] >= 300 and marks["firstPainted"] >= marks["first"]
    assert len(tokens.marks["eventsource"]["arrivals"]) == len(sse_views.TOKENS)
    events = reconnect.marks["events"]
    assert events["ids"] == ["1", "2", "3", "4", "5"] and len(events["opens"]) == 3
    assert "id 5: tick 5 of 5" in reconnect.log and reconnect.log.rstrip().endswith("end")


# -- Sync and async: the same bytes; cleanup when a client leaves ----------------------------

SAME_BYTES = [
    ("/events", {"count": 4, "interval_ms": 20, "retry_ms": 250}),
    ("/events", {"count": 6, "interval_ms": 0, "close_after": 2}),
    ("/tokens", {"think_ms": 30, "token_ms": 1, "seed": 3}),
    ("/tokens", {"format": "text", "think_ms": 0, "token_ms": 0}),
]


@pytest.mark.parametrize("path, params", SAME_BYTES)
def test_sync_and_async_in_process_send_the_same_bytes(client, path, params):
    sync_response = client.get(path, params)
    async_response, async_bytes = async_body(path, params)
    assert sync_response.is_async is False and async_response.is_async is True
    assert body(sync_response) == async_bytes


def test_async_resumes_the_same_way(client):
    headers = {"Last-Event-ID": "3"}
    sync_bytes = body(client.get("/events", {"count": 5, "interval_ms": 0}, headers=headers))
    _, async_bytes = async_body("/events", {"count": 5, "interval_ms": 0}, **headers)
    assert sync_bytes == async_bytes and ticks(sync_bytes) == [4, 5]


@pytest.fixture(scope="module")
def servers(events):
    """A sync and an ASGI Gunicorn, both writing stream records to ``events``."""
    with DemoServer(name="t-sse-sync", env=events.env) as sync, \
            DemoServer(name="t-sse-asgi", worker_class="asgi", env=events.env) as asgi:
        yield {"sync": sync, "asgi": asgi}
    assert not sync.running and not asgi.running


def query(params: dict) -> str:
    return "&".join(f"{k}={v}" for k, v in params.items())


@pytest.mark.parametrize("path, params", SAME_BYTES)
def test_gunicorn_asgi_sends_what_the_sync_view_sends(client, servers, path, params):
    reference = body(client.get(path, params))
    for server in servers.values():
        raw = raw_request(server.url(f"{path}?{query(params)}"), idle_timeout=5)
        assert raw.status == 200 and raw.headers["Transfer-Encoding"] == "chunked"
        assert decode_chunked(raw.body).data == reference, server.worker_class


def test_gunicorn_asgi_resumes_and_says_204_at_the_end(servers):
    url = servers["asgi"].url("/events?count=4&interval_ms=0")
    assert ticks(decode_chunked(raw_request(url, headers={"Last-Event-ID": "2"},
                                            idle_timeout=5).body).data) == [3, 4]
    assert raw_request(url, headers={"Last-Event-ID": "4"}, idle_timeout=5).status == 204


@pytest.mark.parametrize("worker, outcome", [("sync", "GeneratorExit"),
                                             ("asgi", "CancelledError")])
def test_a_client_that_leaves_stops_the_generator(servers, events, worker, outcome):
    """The generator's finally runs: the sync worker notices at its next write, the ASGI
    worker (Django's handler, told of the disconnect) cancels the stream at once."""
    result = disconnect_outcome(servers[worker], "/events",
                                "count=100&interval_ms=100&heartbeat_s=0", events,
                                after_s=0.35)
    assert result["finally_ran"] and result["outcome"] == outcome
    assert result["chunks"] < 20  # stopped long before the 101 pieces of the whole stream
    assert result["finally_after_s"] < 2.0


def test_asgi_cancels_during_a_long_think(servers, events):
    """Nothing is written during the think time, so only the ASGI worker can notice."""
    asgi = disconnect_outcome(servers["asgi"], "/tokens", "format=text&think_ms=3000",
                              events, after_s=0.2)
    assert asgi["outcome"] == "CancelledError" and asgi["chunks"] == 0
    assert asgi["finally_after_s"] < 1.0


def test_records_go_where_the_environment_says(servers, events):
    assert EVENTS_DIR_ENV in events.env
    tag = events.tag("done")
    raw_request(servers["sync"].url(f"/events?count=2&interval_ms=0&tag={tag}"), idle_timeout=5)
    record = events.wait(tag)
    assert record["outcome"] == "completed" and record["chunks"] == 4  # retry, 2 ticks, end


# -- The clients and the many-streams runner the notebook and `make bench` use ---------------


def test_requests_reads_every_token_after_the_think_time(servers):
    from streamlab.measurement.sse_clients import requests_tokens

    timeline = requests_tokens(servers["asgi"].url("/tokens?think_ms=200&token_ms=2"))
    assert timeline.text == sse_views.ANSWER and len(timeline.arrivals) == len(sse_views.TOKENS)
    assert 0.2 <= timeline.first_token_s <= timeline.total_s


@pytest.mark.parametrize("worker, outcome", [("sync", "GeneratorExit"),
                                             ("asgi", "CancelledError")])
def test_leave_after_tokens_reads_the_generators_record(servers, events, worker, outcome):
    from streamlab.measurement.sse_clients import leave_after_tokens

    left = leave_after_tokens(servers[worker], events, 2, query="think_ms=0&token_ms=100")
    assert left.tokens_read == 2 and left.outcome == outcome
    assert left.produced_after_leaving == (0 if worker == "asgi" else left.produced - 2)
    assert left.produced < len(sse_views.TOKENS)


def test_open_streams_on_asgi_serves_everyone_every_event_in_order(servers):
    from streamlab.measurement.sse_bench import bench_summary, format_summary, open_streams

    run = open_streams(servers["asgi"], clients=12, count=4, interval_ms=50)
    assert run.all_in_order and len(run.clients) == 12
    assert all(len(c.arrivals) == 4 for c in run.clients)
    assert min(run.delays_s) == 0.0 and len(run.delays_s) == 48
    assert run.lost_events == run.reordered_events == run.failed_clients == 0
    summary = bench_summary([run])
    assert json.loads(json.dumps(summary)) == summary
    (figures,) = summary["runs"]
    assert (figures["worker_class"], figures["clients"], figures["lost_events"]) == ("asgi", 12, 0)
    # Twelve clients are fewer than the target's 200: judged, and missed for that reason.
    assert "[MISSED] event streams: none lost or reordered" in format_summary(summary)


def test_open_streams_on_one_sync_worker_serves_one_client_at_a_time(servers):
    from streamlab.measurement.sse_bench import open_streams

    run = open_streams(servers["sync"], clients=3, count=3, interval_ms=150)
    assert run.all_in_order and run.served_at_once == 1
    firsts = sorted(c.first_event_s for c in run.clients)
    assert firsts[2] > 2 * 0.3 * 0.8  # the third waited for two whole streams


def test_open_streams_reports_a_failed_client_instead_of_raising(servers):
    from streamlab.measurement.sse_bench import open_streams

    run = open_streams(servers["asgi"], clients=2, count=1, interval_ms=0,
                       extra_query="count=x")  # a repeated parameter: a 400
    assert not run.all_in_order and all("expected a 200" in c.error for c in run.clients)


def test_the_figures_read_their_own_numbers(servers):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from streamlab.measurement import stream_plots
    from streamlab.measurement.sse_bench import open_streams
    from streamlab.measurement.sse_clients import requests_tokens

    timelines = [requests_tokens(servers["asgi"].url("/tokens?think_ms=100&token_ms=1"))]
    figure, reading = stream_plots.token_arrival_figure(timelines, 0.1)
    assert "First token after: requests" in reading
    run = open_streams(servers["asgi"], clients=3, count=2, interval_ms=10)
    assert "asgi: 3 of 3 clients served at once" in stream_plots.open_streams_figure([run])[1]
    assert "in order: True" in stream_plots.stream_delays_figure(run)[1]
    plt.close("all")
