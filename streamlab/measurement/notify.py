"""PostgreSQL's ``LISTEN``/``NOTIFY`` on its own, from this process (notebook 12).

Two connections of the superuser to the throwaway server: one listens, one
notifies. What they show is PostgreSQL's behaviour, not Django's or a web
server's: a notification is delivered only when its transaction commits (and
never if it rolls back), a payload must be shorter than 8,000 bytes, and one
server carries so many notifications a second, one per commit or many per
commit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

CHANNEL = "notify_demo"


def _drain(conn: psycopg.Connection, wait_s: float) -> list[str]:
    """The payloads that arrive on ``conn`` within ``wait_s``."""
    return [n.payload for n in conn.notifies(timeout=wait_s)]


@dataclass(frozen=True)
class AtCommit:
    """What the listener had at each step of one notifying transaction."""

    before_commit: list[str]  # after NOTIFY, the transaction still open
    after_commit: list[str]
    after_rollback: list[str]  # a second transaction, rolled back


def notify_at_commit(database: Any, wait_s: float = 0.3) -> AtCommit:
    """NOTIFY in an open transaction; listen; commit; listen. Then NOTIFY and roll back."""
    with database.connect() as listener, database.connect() as sender:
        listener.execute(f"LISTEN {CHANNEL}")
        with sender.transaction():
            sender.execute(f"NOTIFY {CHANNEL}, 'committed'")
            before = _drain(listener, wait_s)
        after = _drain(listener, wait_s)
        try:
            with sender.transaction():
                sender.execute(f"NOTIFY {CHANNEL}, 'rolled back'")
                raise _Rollback
        except _Rollback:
            pass
        rolled_back = _drain(listener, wait_s)
    return AtCommit(before, after, rolled_back)


class _Rollback(Exception):
    """Raised inside a transaction block to roll it back."""


def payload_limit(database: Any, sizes: tuple[int, ...] = (7999, 8000)) -> dict[int, str]:
    """For each payload size, "sent" or PostgreSQL's error message."""
    outcome = {}
    with database.connect() as conn:
        for size in sizes:
            try:
                conn.execute("SELECT pg_notify(%s, repeat('x', %s))", (CHANNEL, size))
                outcome[size] = "sent"
            except psycopg.Error as error:
                outcome[size] = str(error).strip().splitlines()[0]
    return outcome


@dataclass(frozen=True)
class Throughput:
    """Notifications one listener received from one sender in ``seconds``."""

    per_commit: int
    sent: int
    received: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.received / self.seconds


def notify_throughput(database: Any, *, per_commit: int = 1, seconds: float = 1.0) -> Throughput:
    """Send notifications for ``seconds``, ``per_commit`` per transaction, to one listener
    in another thread; count what arrived, once a last "stop" notification has."""
    received: list[int] = []
    listening = threading.Event()

    def listen() -> None:
        with database.connect() as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            listening.set()
            count = 0
            for note in conn.notifies(timeout=seconds + 30):
                if note.payload == "stop":
                    break
                count += 1
            received.append(count)

    thread = threading.Thread(target=listen, name="notify-listener", daemon=True)
    thread.start()
    listening.wait(10)
    sent = 0
    with database.connect() as sender:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            sender.execute("SELECT pg_notify(%s, n::text) FROM generate_series(1, %s) n",
                           (CHANNEL, per_commit))
            sent += per_commit
        elapsed = time.perf_counter() - start
        sender.execute(f"NOTIFY {CHANNEL}, 'stop'")
    thread.join(seconds + 35)
    return Throughput(per_commit, sent, received[0] if received else 0, elapsed)
