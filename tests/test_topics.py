"""Topics (notebook 12): one event, published in one worker, shown by the streams of every worker.

Real processes throughout: a throwaway PostgreSQL, Gunicorn's ASGI worker twice over, and
clients on 127.0.0.1 that hold the streams open. Skipped where PostgreSQL is not installed,
except under CI, which installs it.
"""

import time

import pytest
import requests
from support.postgres import need_postgres
from support.wait import wait_until

from streamlab import start_server
from streamlab.measurement.database import app_database
from streamlab.measurement.fanout import (
    PURPOSES,
    TopicStreams,
    fanout,
    publish,
    resume_elsewhere,
    worker_listeners,
)

need_postgres()


@pytest.fixture(scope="module")
def database():
    server = app_database(0, name="tests-topics", max_connections=60)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(database):
    with start_server(name="tests-topics", worker_class="asgi", workers=2,
                      env={"DEMO_DATABASE_URL": database.database_url()}) as server:
        yield server


def refused(response, status, *words):
    assert response.status_code == status, response.text
    reason = response.text.strip()
    assert "\n" not in reason and all(w in reason for w in words), reason


def test_bad_input_gets_a_400_with_its_reason(server):
    stream, post = server.url("/topics/stream"), server.url("/topics/publish")
    refused(requests.get(stream, timeout=10), 400, "topic is required", "orders")
    refused(requests.get(stream + "?topic=news", timeout=10), 400, "topic must be one of")
    refused(requests.get(stream + "?topic=orders&delivery=smoke", timeout=10), 400, "delivery")
    refused(requests.get(stream + "?topic=orders&poll_ms=5", timeout=10), 400, "poll_ms", "10")
    refused(requests.get(stream + "?topic=orders", headers={"Last-Event-ID": "7a"}, timeout=10),
            400, "Last-Event-ID must be a whole number", "'7a'")
    refused(requests.post(post + "?topic=news", data=b"x", timeout=10), 400, "topic")
    refused(requests.post(post + "?topic=orders", data=b"x" * 65_537, timeout=10), 400,
            "65,537 bytes", "65,536")
    refused(requests.post(post + "?topic=orders", data=b"\xff\xfe", timeout=10), 400, "UTF-8")
    assert requests.get(post + "?topic=orders", timeout=10).status_code == 405


def test_without_asgi_or_postgres_the_stream_says_what_it_needs(database, tmp_path):
    with start_server(name="tests-topics-wsgi", worker_class="sync",
                      env={"DEMO_DATABASE_URL": database.database_url()}) as wsgi:
        refused(requests.get(wsgi.url("/topics/stream?topic=orders"), timeout=10), 501,
                "ASGI server", "-k asgi")
    sqlite = {"DEMO_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    with start_server(name="tests-topics-sqlite", worker_class="asgi", env=sqlite) as asgi:
        refused(requests.get(asgi.url("/topics/stream?topic=orders"), timeout=10), 503,
                "need PostgreSQL", "sqlite")
        refused(requests.post(asgi.url("/topics/publish?topic=orders"), data=b"x", timeout=10),
                503, "need PostgreSQL")


def test_an_in_process_queue_reaches_only_the_publishers_worker(server, database):
    run = fanout(server, database, delivery="local", streams=10, events=4, interval_s=0.05,
                 wait_s=1.5)
    publishers = {p.worker for p in run.published}
    # Each event reached the five streams of the worker that published it, and no other.
    assert len(run.delays_s) == 5 * len(run.published) and run.lost == 5 * len(run.published)
    assert run.repeated == 0 and publishers <= set(run.by_worker)
    assert run.connections == {}  # no database connection is held for the streams


@pytest.mark.parametrize(("delivery", "listeners"), [("worker", 2), ("stream", 20), ("poll", 20)])
def test_every_stream_gets_every_event_once(server, database, delivery, listeners):
    run = fanout(server, database, delivery=delivery, streams=20, events=5, interval_s=0.05,
                 query="poll_ms=100", timeout=30)
    assert sorted(run.by_worker.values()) == [10, 10]
    assert run.lost == 0 and run.repeated == 0 and len(run.delays_s) == 100
    assert run.connections.get(PURPOSES[delivery]) == listeners
    # Nothing arrives before its commit: PostgreSQL's own commit timestamp, which it takes
    # before it sends the commit's notifications (track_commit_timestamp is on).
    assert {p.clock for p in run.published} == {"postgresql"}
    assert min(run.delays_s) > 0


def test_a_notification_waits_for_the_commit(server):
    with TopicStreams(server, streams=2, topic="jobs") as streams:
        asked = time.time()
        published = publish(server, "held", topic="jobs", hold_ms=500)
        assert streams.wait_for([published.id])
        logs = streams.close()
    arrivals = [log.arrivals[log.ids.index(published.id)] for log in logs]
    assert published.committed - asked >= 0.5
    assert all(arrival >= published.committed - 0.01 for arrival in arrivals)


def test_notify_refuses_a_payload_over_8000_bytes(database):
    database.query("SELECT pg_notify('topic_orders', repeat('x', 7999))")
    with pytest.raises(Exception, match="payload string too long"):
        database.query("SELECT pg_notify('topic_orders', repeat('x', 8000))")


def test_a_reconnection_replays_what_it_missed_on_the_other_worker(server):
    resumed = resume_elsewhere(server, topic="chat", missed=3)
    assert resumed.second_worker != resumed.first_worker
    assert resumed.replayed == 3 and resumed.ids == resumed.missed


def test_the_listeners_leave_with_the_server(database):
    with start_server(name="tests-topics-stop", worker_class="asgi", workers=2,
                      env={"DEMO_DATABASE_URL": database.database_url()}) as short:
        with TopicStreams(short, streams=4):
            workers = [p.pid for p in short.worker_processes()]
            assert set(worker_listeners(database).values()) >= set(workers)
            assert len(workers) == 2
    assert wait_until(lambda: not set(worker_listeners(database).values()) & set(workers),
                      timeout=10)


@pytest.mark.slow  # a real Chromium: left out of `make test-fast`, like tests/test_browser.py
def test_two_browser_tabs_on_different_workers_show_the_same_event(server):
    """The /topics page in headless Chromium, two tabs whose streams two different workers
    serve: one event, published by a POST, shows in both, once, with what it carried."""
    from streamlab.measurement.browser import HeadlessChromium, topic_tabs, unavailable

    if unavailable():
        pytest.skip(unavailable())
    with HeadlessChromium() as browser:
        tabs = topic_tabs(browser, server, topic="jobs")
    assert len(set(tabs.workers)) == 2 and set(tabs.workers) == {
        p.pid for p in server.worker_processes()}
    event = tabs.published.id
    for worker, marks, shown in zip(tabs.workers, tabs.marks, tabs.shown, strict=True):
        assert marks["ids"].count(event) == 1 and marks["errors"] == 0, marks
        assert marks["data"][marks["ids"].index(event)] == "shown in every tab"
        # Each tab's own worker sent it down that tab's stream, whichever worker published.
        assert f"#{event}  shown in every tab  (sent by worker {worker})" in shown
