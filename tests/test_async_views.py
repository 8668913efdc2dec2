"""The twin streaming views (sync and async generator) in-process: bodies, records, 400s."""

import asyncio
import json
import time

import pytest
from django.test import AsyncClient, Client

from demo_app import csvgen
from demo_app.async_views import EVENTS_DIR_ENV

PATHS = ["/stream_sync", "/stream_async"]


@pytest.fixture
def client():
    return Client()


@pytest.fixture
def events_dir(tmp_path, monkeypatch):
    """Where the views write their records during this test (read at request time)."""
    monkeypatch.setenv(EVENTS_DIR_ENV, str(tmp_path))
    return tmp_path


def read_event(directory, tag):
    return json.loads((directory / f"{tag}.json").read_text())


async def async_get(path, params):
    return await AsyncClient().get(path, params)


async def async_stream(path, params):
    """The response and its parts, read the way Django's ASGI handler reads them."""
    response = await AsyncClient().get(path, params)
    return response, [part async for part in response]


async def collect(response):
    return [part async for part in response]


def test_sync_twin_streams_a_sync_iterator(client):
    response = client.get("/stream_sync", {"rows": 100, "chunk_rows": 7})
    assert response.status_code == 200 and response.streaming
    assert response.is_async is False
    assert not response.has_header("Content-Length")
    chunks = list(response.streaming_content)
    assert len(chunks) == 15  # ceil(100 / 7)
    assert b"".join(chunks) == csvgen.csv_text(100).encode()
    assert response["Content-Type"] == "text/csv"


def test_async_twin_streams_an_async_iterator():
    response, chunks = asyncio.run(async_stream("/stream_async", {"rows": 100, "chunk_rows": 7}))
    assert response.status_code == 200 and response.streaming
    assert response.is_async is True
    assert len(chunks) == 15
    assert b"".join(chunks) == csvgen.csv_text(100).encode()


def test_the_twins_send_the_same_bytes(client):
    sync_body = b"".join(client.get("/stream_sync", {"rows": 333}).streaming_content)
    _, async_parts = asyncio.run(async_stream("/stream_async", {"rows": 333}))
    async_body = b"".join(async_parts)
    assert sync_body == async_body == csvgen.csv_text(333).encode()


def test_async_iterator_read_synchronously_is_collected_with_a_warning():
    """What a WSGI server does with the async twin: Django warns and buffers it."""
    response = asyncio.run(async_get("/stream_async", {"rows": 20, "chunk_rows": 1}))
    with pytest.warns(Warning, match="must consume asynchronous iterators"):
        parts = list(response)
    assert b"".join(parts) == csvgen.csv_text(20).encode()


def test_sync_iterator_read_asynchronously_is_collected_with_a_warning(client):
    """What an ASGI server does with the sync twin."""
    response = client.get("/stream_sync", {"rows": 20, "chunk_rows": 1})
    with pytest.warns(Warning, match="must consume synchronous iterators"):
        parts = asyncio.run(collect(response))
    assert b"".join(parts) == csvgen.csv_text(20).encode()


@pytest.mark.parametrize("path", PATHS)
def test_delay_pauses_after_each_chunk(path, client):
    start = time.perf_counter()
    params = {"rows": 4, "chunk_rows": 1, "delay_ms": 50}
    if path == "/stream_sync":
        parts = list(client.get(path, params).streaming_content)
    else:
        _, parts = asyncio.run(async_stream(path, params))
    assert len(parts) == 4
    assert time.perf_counter() - start >= 4 * 0.05


def test_sync_generator_records_completion(client, events_dir):
    response = client.get("/stream_sync", {"rows": 50, "chunk_rows": 10, "tag": "done"})
    list(response.streaming_content)
    event = read_event(events_dir, "done")
    assert event["outcome"] == "completed" and event["iterator"] == "sync"
    assert event["chunks"] == 5 and event["bytes"] == csvgen.csv_size(50)
    assert event["ended"] >= event["started"]


def test_closing_the_response_early_runs_the_finally(client, events_dir):
    """What Gunicorn does when a write fails: close() the response, so the generator closes."""
    response = client.get("/stream_sync", {"rows": 50, "chunk_rows": 10, "tag": "early"})
    next(iter(response.streaming_content))
    assert not (events_dir / "early.json").exists()  # still running
    response.close()
    event = read_event(events_dir, "early")
    assert (event["outcome"], event["chunks"]) == ("GeneratorExit", 1)


def test_async_generator_records_completion(events_dir):
    asyncio.run(async_stream("/stream_async", {"rows": 50, "chunk_rows": 10, "tag": "a"}))
    event = read_event(events_dir, "a")
    assert (event["outcome"], event["iterator"], event["chunks"]) == ("completed", "async", 5)


def test_cancelling_the_async_generator_runs_the_finally(events_dir):
    """What Django's ASGI handler does on a disconnect: cancel the task that is sending."""
    async def run():
        response = await AsyncClient().get(
            "/stream_async", {"rows": 50, "chunk_rows": 10, "delay_ms": 1000, "tag": "cancel"}
        )
        task = asyncio.create_task(collect(response))
        await asyncio.sleep(0.1)  # the generator has yielded once and sleeps for a second
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    event = read_event(events_dir, "cancel")
    assert (event["outcome"], event["chunks"]) == ("CancelledError", 1)


def test_no_tag_no_record(client, events_dir):
    list(client.get("/stream_sync", {"rows": 5}).streaming_content)
    assert list(events_dir.iterdir()) == []


def test_tag_without_events_dir_still_streams(client, monkeypatch):
    monkeypatch.delenv(EVENTS_DIR_ENV, raising=False)
    body = b"".join(client.get("/stream_sync", {"rows": 5, "tag": "x"}).streaming_content)
    assert body == csvgen.csv_text(5).encode()


BAD = [
    ({"rows": "abc"}, "rows must be a whole number"),
    ({"rows": "-1"}, "rows must be between 0 and"),
    ({"rows": "100000001"}, "rows must be between 0 and 100000000"),
    ({"chunk_rows": "0"}, "chunk_rows must be between 1 and"),
    ({"chunk_rows": "1.5"}, "chunk_rows must be a whole number"),
    ({"delay_ms": "-1"}, "delay_ms must be between 0 and"),
    ({"delay_ms": "10001"}, "delay_ms must be between 0 and 10000"),
    ({"rows": ["1", "2"]}, "rows was given 2 times"),
    ({"tag": "../etc/passwd"}, "tag must be 1 to 64 letters"),
    ({"tag": ""}, "tag must be 1 to 64 letters"),
    ({"tag": "x" * 65}, "tag must be 1 to 64 letters"),
    ({"tag": ["a", "b"]}, "tag was given 2 times"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("params, reason", BAD)
def test_bad_parameter_is_a_400_with_a_one_line_reason(
    client, assert_bad_request, path, params, reason
):
    assert_bad_request(client.get(path, params), reason)


@pytest.mark.parametrize("path", PATHS)
def test_only_safe_methods(client, path):
    assert client.post(path).status_code == 405
    assert client.head(path).status_code == 200


# -- Where the views run, and a view that computes ------------------------------------------


def test_a_sync_view_runs_in_the_callers_thread_with_no_event_loop(client):
    where = client.get("/where_sync").json()
    assert where["view"] == "sync"
    assert where["main_thread"] is True and where["event_loop_running"] is False
    assert where["thread"] == "MainThread" and where["time_sleep"] == "time.sleep"


def test_an_async_view_runs_on_an_event_loop():
    where = asyncio.run(async_get("/where_async", {})).json()
    assert where["view"] == "async" and where["event_loop_running"] is True


@pytest.mark.parametrize("path", ["/where_sync", "/where_async"])
def test_where_views_take_no_parameters_and_only_safe_methods(client, path):
    assert client.get(path, {"anything": "1"}).status_code == 200
    assert client.post(path).status_code == 405


def test_generator_records_name_their_thread(client, events_dir):
    list(client.get("/stream_sync", {"rows": 3, "tag": "t"}).streaming_content)
    assert read_event(events_dir, "t")["thread"] == "MainThread"


def test_spin_computes_for_the_time_asked(client):
    start = time.perf_counter()
    answer = client.get("/spin", {"ms": 60}).json()
    assert time.perf_counter() - start >= 0.06
    assert answer["ms"] == 60 and answer["loops"] > 0 and answer["thread"] == "MainThread"


def test_spin_without_a_duration_costs_nothing(client):
    assert client.get("/spin").json()["ms"] == 0


@pytest.mark.parametrize("params, reason", [
    ({"ms": "-1"}, "ms must be between 0 and 2000"),
    ({"ms": "2001"}, "ms must be between 0 and 2000"),
    ({"ms": "fast"}, "ms must be a whole number"),
    ({"ms": ["1", "2"]}, "ms was given 2 times"),
])
def test_spin_refuses_bad_durations(client, assert_bad_request, params, reason):
    assert_bad_request(client.get("/spin", params), reason)
