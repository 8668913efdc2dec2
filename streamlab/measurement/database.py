"""Plumbing for notebook 07's PostgreSQL sections: what an export does to the database.

* ``app_database`` starts a throwaway PostgreSQL, creates the export table and
  fills it: the ``DEMO_DATABASE_URL`` a demo server is then started with.
* ``cursor_while_streaming``: the demo app's backends in ``pg_stat_activity``
  part way through a slow export, to see the server-side cursor it reads from.
* ``concurrent_exports``: ``n`` slow exports at once, and the app's connections
  counted while they stream and after they end: a stream holds a connection.
* ``crash_mid_stream``: kill the database while an export streams, and what the
  client got.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psutil
import requests

from ..servers.manage import manage_ok
from ..servers.postgres import PostgresServer, start_postgres
from ..servers.process import ManagedProcess


def app_database(rows: int, *, name: str = "nb07", **options: object) -> PostgresServer:
    """A new PostgreSQL with the demo app's tables (``manage.py migrate``) and ``rows``
    rows in the export table (``manage.py seed_rows``; none for 0); ``options`` go to the
    server."""
    database = start_postgres(name=name, **options)
    try:
        env = {"DEMO_DATABASE_URL": database.database_url()}
        manage_ok(env, "migrate", "--verbosity", "0")
        if rows:
            manage_ok(env, "seed_rows", str(rows))
    except BaseException:
        database.stop()
        raise
    return database


@dataclass
class Backend:
    """One connection of the demo app's role, as ``pg_stat_activity`` shows it."""

    pid: int
    state: str  # "active", "idle", "idle in transaction", ...
    query: str  # the last statement it ran
    client_port: int = field(repr=False, default=0)


def backends(database: PostgresServer, of: ManagedProcess | None = None) -> list[Backend]:
    """The app role's connections to ``database``; only those of ``of``'s processes (a demo
    server) when given, matched by the client's port, so that a notebook kernel's own
    connection is never counted as the server's."""
    rows = [Backend(*row) for row in database.app_backends()]
    if of is None:
        return rows
    ports = set()
    for pid in of.pids():
        try:
            ports |= {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
                      if c.raddr and c.raddr.port == database.port}
        except psutil.Error:
            continue
    return [b for b in rows if b.client_port in ports]


def cursor_while_streaming(server: ManagedProcess, database: PostgresServer, path: str,
                           *, after_s: float = 0.5) -> tuple[list[Backend], int]:
    """GET ``path`` (a slow export) and, ``after_s`` into it, read the app's backends;
    return them and the number of body bytes the client received in all."""
    with requests.get(server.url(path), stream=True, timeout=60) as response:
        response.raise_for_status()
        pieces = response.iter_content(None)
        received = len(next(pieces))
        time.sleep(after_s)
        seen = backends(database, of=server)
        received += sum(len(piece) for piece in pieces)
    return seen, received


@dataclass
class ConcurrentExports:
    """``n`` exports started at once: what each got, and the app's connections."""

    statuses: list[int]
    refusals: list[str]  # the body of every answer that was not a 200
    during: list[Backend]  # while every admitted export was still streaming
    after: list[Backend]  # once every export had ended
    complete: int  # exports whose whole body arrived
    seconds: float = field(repr=False, default=0.0)

    @property
    def streamed(self) -> int:
        return self.statuses.count(200)


def concurrent_exports(server: ManagedProcess, database: PostgresServer, path: str, n: int,
                       *, settle_s: float = 0.3) -> ConcurrentExports:
    """Start ``n`` GETs of ``path`` at once (a slow export: it must outlast the others'
    answers), count the app's connections once every one has its status, then again
    ``settle_s`` after the last has ended."""
    answered = threading.Barrier(n + 1)
    statuses: list[int] = [0] * n
    refusals: list[str] = []

    def one(index: int) -> bool:
        with requests.get(server.url(path), stream=True, timeout=60) as response:
            statuses[index] = response.status_code
            if response.status_code != 200:
                refusals.append(response.text.strip())
            answered.wait(timeout=60)
            body = response.content
            return response.status_code == 200 and body.count(b"\n") > 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        answered.wait(timeout=60)
        during = backends(database, of=server)
        complete = sum(f.result() for f in futures)
    seconds = time.perf_counter() - started
    time.sleep(settle_s)
    return ConcurrentExports(statuses, refusals, during, backends(database, of=server), complete,
                             seconds)


@dataclass
class CrashedStream:
    """An export whose database was killed part way."""

    received: int  # body bytes the client had when the stream broke
    error: str  # what the client's library raised ("" if the body ended cleanly)
    log_lines: list[str]  # what the worker logged about it (its first lines)


def crash_mid_stream(server: ManagedProcess, path: str, kill: Callable[[], None],
                     *, after_s: float = 0.5) -> CrashedStream:
    """Stream ``path`` and call ``kill`` ``after_s`` into it; read on until the body ends."""
    received, error = 0, ""
    before = len(server.log.splitlines())
    with requests.get(server.url(path), stream=True, timeout=60) as response:
        response.raise_for_status()
        timer = threading.Timer(after_s, kill)
        timer.start()
        try:
            for piece in response.iter_content(None):
                received += len(piece)
        except requests.RequestException as failure:
            error = f"{type(failure).__name__}: {failure}"
        finally:
            timer.join()
    time.sleep(0.3)  # the worker's log lines reach the file
    logged = server.log.splitlines()[before:]
    return CrashedStream(received, error, [line for line in logged if _worth_showing(line)])


def _worth_showing(line: str) -> bool:
    """The worker's own words about the failure: not access-log lines, not traceback frames."""
    return bool(line.strip()) and '"GET ' not in line and not line.startswith((" ", "Traceback"))
