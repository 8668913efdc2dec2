"""The throwaway PostgreSQL and PgBouncer, and the export views on them (notebook 07).

Real processes throughout: ``initdb`` and ``postgres`` in a temporary folder, PgBouncer,
Gunicorn. Skipped where PostgreSQL is not installed, except under CI, which installs it.
"""

import os
import subprocess
import sys
import textwrap

import psutil
import pytest
import requests
from support.postgres import need_postgres
from support.wait import wait_until

from demo_app.dburl import database_from_url
from streamlab import start_server
from streamlab.measurement.database import (
    app_database,
    backends,
    concurrent_exports,
    crash_mid_stream,
    cursor_while_streaming,
)
from streamlab.paths import PROJECT_ROOT
from streamlab.servers.manage import manage_ok
from streamlab.servers.postgres import (
    PostgresServer,
    pgbouncer_available,
    start_pgbouncer,
    start_postgres,
)

ROWS = 20_000
SLOW = "/export/streaming?rows=2000&chunk_size=100&delay_ms=100"  # about 2 s

need_postgres()


@pytest.fixture(scope="module")
def database():
    server = app_database(ROWS, name="tests-pg", max_connections=10)
    yield server
    server.stop()


def env(database, **options):
    return {"DEMO_DATABASE_URL": database.database_url(**options)}


def cluster_processes(folder) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if str(folder) in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


# -- the database URL --------------------------------------------------------------------


def test_a_postgresql_url_sets_every_option():
    db = database_from_url("postgresql://app@127.0.0.1:5433/demo?disable_server_side_cursors=1"
                           "&atomic_requests=1&conn_max_age=0&pool_max_size=3&pool_timeout=2"
                           "&connect_timeout=4")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["HOST"], db["PORT"]) == ("demo", "app", "127.0.0.1", "5433")
    assert db["DISABLE_SERVER_SIDE_CURSORS"] is True and db["ATOMIC_REQUESTS"] is True
    assert db["OPTIONS"] == {"connect_timeout": 4,
                             "pool": {"min_size": 0, "max_size": 3, "timeout": 2}}
    assert database_from_url("sqlite:////tmp/x.sqlite3") == {
        "ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/x.sqlite3"}


@pytest.mark.parametrize(("url", "says"), [
    ("mysql://app@h/demo", "must start with postgresql:// or sqlite://"),
    ("postgresql://app@h/demo?cursors=0", "unknown option(s) cursors"),
    ("postgresql://app@h/demo?conn_max_age=ten", "conn_max_age is a whole number"),
    ("postgresql://app@h/demo?atomic_requests=yes", "atomic_requests is 0 or 1"),
    ("sqlite:////tmp/x?pool_max_size=2", "pool_max_size is for PostgreSQL"),
    ("postgresql://app@h/", "needs a host and a database name"),
    ("sqlite://", "needs a file path"),
])
def test_a_bad_database_url_is_refused_with_its_reason(url, says):
    with pytest.raises(ValueError, match="DEMO_DATABASE_URL|pool_max_size") as error:
        database_from_url(url)
    assert says in str(error.value)


# -- the server's life -------------------------------------------------------------------


def test_the_seeded_rows_are_make_row(database):
    from demo_app.management.commands.seed_rows import make_row

    rows = database.query("SELECT id, name, email, city, quantity, amount_cents "
                          "FROM demo_app_exportrow WHERE id IN (1, 6, 7, 19999) ORDER BY id")
    assert rows == [make_row(i).csv_fields() for i in (1, 6, 7, 19999)]
    assert database.query("SELECT count(*) FROM demo_app_exportrow") == [(ROWS,)]


def test_stop_leaves_no_process_and_no_folder():
    server = start_postgres(name="tests-pg-life")
    folder = server.folder
    assert cluster_processes(folder)
    again = start_postgres(name="tests-pg-life")  # the same name stops the first
    try:
        assert not server.running and not folder.exists()
        assert wait_until(lambda: not cluster_processes(folder))
    finally:
        again.stop()
    assert not again.folder and wait_until(lambda: not any(
        p.info["cmdline"] and "streamlab-postgres-tests-pg-life" in " ".join(p.info["cmdline"])
        for p in psutil.process_iter(["cmdline"])))
    with pytest.raises(ValueError, match="max_connections"):
        PostgresServer(max_connections=2)


def test_a_killed_owner_leaves_nothing_behind(tmp_path):
    script = textwrap.dedent("""
        import sys, time
        from streamlab.servers.postgres import start_postgres
        server = start_postgres(name="tests-orphan")
        print(server.folder, flush=True)
        time.sleep(120)
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        folder = owner.stdout.readline().strip()
        assert folder and cluster_processes(folder)
    finally:
        owner.kill()
        owner.wait()
    assert wait_until(lambda: not cluster_processes(folder) and not os.path.exists(folder), 20)


# -- the export on PostgreSQL ------------------------------------------------------------


def test_the_export_reads_a_server_side_cursor_unless_disabled(database):
    with start_server(name="tests-pg", env=env(database)) as server:
        whole = requests.get(server.url(f"/export/whole?rows={ROWS}"), timeout=60).content
        streamed = requests.get(server.url(f"/export/streaming?rows={ROWS}"), timeout=60)
        assert streamed.content == whole and streamed.headers["Transfer-Encoding"] == "chunked"
        seen, _ = cursor_while_streaming(server, database, SLOW)
    assert len(seen) == 1 and seen[0].query.startswith('FETCH FORWARD 100 FROM "_django_curs_')
    with start_server(name="tests-pg", env=env(database, disable_server_side_cursors=1)) as server:
        plain = requests.get(server.url(f"/export/streaming?rows={ROWS}"), timeout=60).content
        seen, _ = cursor_while_streaming(server, database, SLOW)
    assert plain == whole
    assert len(seen) == 1 and "FETCH" not in seen[0].query


@pytest.mark.skipif(not pgbouncer_available(), reason="PgBouncer is not installed")
def test_pgbouncer_in_transaction_mode_breaks_the_cursor_and_the_setting_fixes_it(database):
    bouncer = start_pgbouncer(database, name="tests-pg", pool_size=2)
    try:
        with start_server(name="tests-pg", env={
                "DEMO_DATABASE_URL": bouncer.database_url()}) as server:
            failed = requests.get(server.url("/export/streaming?rows=5000"), timeout=60)
            wait_until(lambda: "export stopped after" in server.log, 5)
            log = server.log
        with start_server(name="tests-pg", env={"DEMO_DATABASE_URL": bouncer.database_url(
                disable_server_side_cursors=1)}) as server:
            fixed = requests.get(server.url("/export/streaming?rows=5000"), timeout=60)
            direct = requests.get(server.url("/export/whole?rows=5000"), timeout=60)
    finally:
        bouncer.stop()
    assert failed.status_code == 500
    assert 'cursor "_django_curs_' in log and "does not exist" in log
    assert "export stopped after 0 characters were sent" in log
    assert fixed.status_code == 200 and fixed.content == direct.content


def test_streams_hold_connections_up_to_the_limit_and_the_rest_get_503(database):
    slots = database.max_connections - 3
    with start_server(name="tests-pg-conns", env=env(database), worker_class="gthread",
                      threads=slots + 2) as server:
        held = concurrent_exports(server, database, SLOW, slots + 2)
    assert held.streamed == held.complete == len(held.during) == slots and not held.after
    assert len(held.refusals) == 2
    assert all("remaining connection slots are reserved" in r for r in held.refusals)
    with start_server(name="tests-pg-conns", env=env(database, pool_max_size=2, pool_timeout=1),
                      worker_class="gthread", threads=5) as server:
        pooled = concurrent_exports(server, database, SLOW, 5)
    assert pooled.streamed == 2 and len(pooled.during) <= 2
    assert all("couldn't get a connection" in r for r in pooled.refusals)


def test_a_database_that_dies_mid_stream_cuts_the_body_and_comes_back(database):
    with (start_server(name="tests-pg", env=env(database)) as server,
          start_server(name="tests-pg-asgi", env=env(database), worker_class="asgi") as asgi):
        workers = [p.pid for p in server.worker_processes()]
        crashed = crash_mid_stream(server, SLOW, database.kill)
        down = {name: requests.get(srv.url(f"/export/{view}?rows=10"), timeout=30)
                for name, srv, view in (("sync", server, "streaming"), ("asgi", asgi, "async"))}
        database.restart()
        back = requests.get(server.url("/export/streaming?rows=10"), timeout=30)
        back_async = requests.get(asgi.url("/export/async?rows=10"), timeout=30)
        whole = requests.get(server.url("/export/whole?rows=2000"), timeout=30).content
        assert [p.pid for p in server.worker_processes()] == workers
    assert crashed.error.startswith("ChunkedEncodingError")
    assert 0 < crashed.received < len(whole)  # part of the 2,000-row body
    assert any("export stopped after" in line for line in crashed.log_lines)
    for answer in down.values():
        assert answer.status_code == 503 and "Connection refused" in answer.text
    assert back.status_code == back_async.status_code == 200
    assert back.text == back_async.text and back.text.count("\n") == 11


def test_atomic_requests_cover_the_view_not_the_generator_on_both_databases(database, tmp_path):
    sqlite_env = {"DEMO_DATABASE_URL": f"sqlite:///{tmp_path / 't.sqlite3'}?atomic_requests=1"}
    manage_ok(sqlite_env, "migrate", "--verbosity", "0")
    answers = {}
    for name, app_env in (("postgresql", env(database, atomic_requests=1)),
                          ("sqlite", sqlite_env)):
        with start_server(name="tests-pg-atomic", env=app_env) as server:
            answers[name] = requests.get(server.url("/export/transaction"), timeout=30).text
    rows = {"postgresql": ROWS, "sqlite": 0}
    for name, text in answers.items():
        assert text.splitlines()[1:] == [f"view,True,{rows[name]}",
                                         f"generator,False,{rows[name]}"], name


def test_no_connection_is_left_after_the_tests(database):
    assert wait_until(lambda: not backends(database), 10), backends(database)
