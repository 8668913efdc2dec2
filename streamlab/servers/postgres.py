"""A throwaway PostgreSQL server, and PgBouncer in front of it, on 127.0.0.1; always stopped.

Notebook 07 streams a CSV export from PostgreSQL, which is what most exports
read in production. ``PostgresServer`` runs ``initdb`` into a temporary folder
and starts ``postgres`` there in the foreground: TCP on 127.0.0.1 and a free
port, no Unix socket, ``trust`` authentication (no passwords: nothing but
this machine can connect), and ``fsync=off`` because a demo database that a
power cut would lose costs nothing and saves seconds. It is a
``ManagedProcess`` like every other server of the series: readiness check,
log on failure, registry, exit hook, and a watchdog that also removes the
data folder if the kernel is killed.

Two roles: ``streamlab``, the superuser that made the cluster, which the
notebook uses to look (``pg_stat_activity``) and which keeps the reserved
connection slots; and ``app``, an ordinary role owning the ``demo``
database, which the demo app logs in as, so that it hits ``max_connections``
the way a production app does.

PostgreSQL refuses to run as root, and PgBouncer too. Run as root (CI, a
container), both run as the ``postgres`` user that Debian's package creates
(``subprocess.Popen(user=...)``, the same as ``runuser -u postgres``), and
their folders are handed to it. On Binder, or as any other user, they run as
that user.

``postgres_available()`` says whether the binaries and the driver are here
(``STREAMLAB_NO_POSTGRES=1`` makes it say no, to try the skipped path).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from .process import HOST, ManagedProcess, ServerStartError

APP_USER = "app"
ADMIN_USER = "streamlab"
DATABASE = "demo"
OWNER_WHEN_ROOT = "postgres"  # Debian's package makes this user

# Debian and Ubuntu install each major version side by side here.
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


class PostgresStartError(ServerStartError):
    """PostgreSQL or PgBouncer did not start; the message ends with its log."""


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: ``$STREAMLAB_PG_BIN``, the newest of
    Debian's ``/usr/lib/postgresql/N/bin``, or wherever ``initdb`` is on PATH."""
    configured = os.environ.get("STREAMLAB_PG_BIN")
    candidates = [Path(configured)] if configured else []
    candidates += sorted(Path("/").glob(DEBIAN_BIN_GLOB.lstrip("/")),
                         key=lambda p: _major(p.parent.name), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _major(name: str) -> int:
    return int(name) if name.isdigit() else -1


def _driver_installed() -> bool:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


def postgres_available() -> bool:
    """True when PostgreSQL's server binaries and the psycopg driver are both here, and
    ``STREAMLAB_NO_POSTGRES`` is not 1. As root, the ``postgres`` user must exist too."""
    if os.environ.get("STREAMLAB_NO_POSTGRES") == "1":
        return False
    if postgres_bin_dir() is None or not _driver_installed():
        return False
    return os.getuid() != 0 or _owner_when_root() is not None


def pgbouncer_binary() -> str | None:
    """PgBouncer's binary (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((p for p in PGBOUNCER_PATHS if os.access(p, os.X_OK)), None)


def pgbouncer_available() -> bool:
    return postgres_available() and pgbouncer_binary() is not None


def postgres_version() -> str | None:
    """``postgres --version``'s line, e.g. ``postgres (PostgreSQL) 15.18 (Debian ...)``."""
    folder = postgres_bin_dir() if postgres_available() else None
    if folder is None:
        return None
    done = subprocess.run([str(folder / "postgres"), "--version"], capture_output=True,
                          text=True, timeout=10)
    return done.stdout.strip() or None


def pgbouncer_version() -> str | None:
    binary = pgbouncer_binary() if pgbouncer_available() else None
    if binary is None:
        return None
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    return done.stdout.splitlines()[0].strip() if done.stdout else None


def _owner_when_root() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(OWNER_WHEN_ROOT)
    except KeyError:
        return None


def _run_as() -> dict[str, object]:
    """``Popen`` arguments that drop root for a program that refuses it; none otherwise."""
    if os.getuid() != 0:
        return {}
    owner = _owner_when_root()
    if owner is None:
        raise PostgresStartError(
            f"Running as root, PostgreSQL needs a user to run as, and there is no "
            f"{OWNER_WHEN_ROOT!r} user: install Debian's postgresql package, or run as "
            "an ordinary user."
        )
    return {"user": owner.pw_uid, "group": owner.pw_gid}


def _private_folder(prefix: str) -> Path:
    """A new temporary folder that the program's user owns (``postgres`` when we are root)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    options = _run_as()
    if options:
        os.chown(folder, options["user"], options["group"])  # type: ignore[arg-type]
    return folder


def _connect(url: str, timeout: float = 2.0):
    import psycopg

    return psycopg.connect(url, connect_timeout=max(1, round(timeout)), autocommit=True)


class _InFolder(ManagedProcess):
    """A database program whose files all live in one temporary folder of its own, made at
    start (owned by Debian's ``postgres`` user when we are root) and removed at stop."""

    start_error = PostgresStartError
    label = "The program"

    folder: Path | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.label} has not been started yet: call start() first.")
        return f"postgresql://{HOST}:{self.port}"

    def _make_folder(self) -> Path:
        self.folder = _private_folder(f"streamlab-{self.kind}-{self.name}-")
        return self.folder

    def popen_options(self) -> dict[str, object]:
        return _run_as()

    def temporary_paths(self) -> list[Path]:
        return super().temporary_paths() + ([self.folder] if self.folder else [])

    def stop(self) -> None:
        """Stop the program (politely, then by force), keep its log, remove its folder."""
        try:
            super().stop()
        finally:
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)
                self.folder = None


class PostgresServer(_InFolder):
    """PostgreSQL on 127.0.0.1 and a free port, its cluster in a temporary folder.

    ``max_connections`` is PostgreSQL's own limit (3 slots of it are kept for
    the superuser); ``settings`` are more ``-c name=value`` server settings.
    """

    kind = "postgres"
    label = "PostgreSQL"
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client

    def __init__(
        self,
        *,
        name: str = "postgres",
        max_connections: int = 20,
        settings: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(name=name, startup_timeout=startup_timeout, stop_timeout=10.0)
        if not 5 <= max_connections <= 1000:
            raise ValueError(f"max_connections must be 5 to 1000, got {max_connections}.")
        self.max_connections = max_connections
        self.settings = dict(settings or {})

    # -- addresses ---------------------------------------------------------
    def database_url(self, *, user: str = APP_USER, database: str = DATABASE,
                     port: int | None = None, **options: object) -> str:
        """The ``DEMO_DATABASE_URL`` the demo app reads: ``postgresql://app@127.0.0.1:PORT/demo``,
        with ``options`` as its query string (``disable_server_side_cursors=1``, ...).
        ``port`` points it elsewhere (PgBouncer's port, say)."""
        from urllib.parse import urlencode

        query = f"?{urlencode(options)}" if options else ""
        return f"postgresql://{user}@{HOST}:{port or self.port}/{database}{query}"

    # -- what ManagedProcess needs -----------------------------------------
    def command(self, port: int) -> list[str]:
        assert self.folder is not None
        settings = {
            "listen_addresses": HOST,
            "port": str(port),
            "unix_socket_directories": "",  # TCP on loopback only: no socket file to leave
            "max_connections": str(self.max_connections),
            "superuser_reserved_connections": "3",
            "shared_buffers": "32MB",  # Binder has 2 GB for everything
            "fsync": "off",  # a demo database: durability is not the point, speed is
            "synchronous_commit": "off",
            "full_page_writes": "off",
            # Each transaction's commit time, readable with pg_xact_commit_timestamp(xmin):
            # the topics' publish view reports it, so delivery delays start at the commit.
            "track_commit_timestamp": "on",
            **self.settings,
        }
        args = [str(self._bin / "postgres"), "-D", str(self.folder / "data")]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        return args

    def ready(self) -> bool:
        try:
            with _connect(self.database_url(user=ADMIN_USER, database="postgres"), 1):
                return True
        except Exception:  # psycopg.OperationalError while it starts
            return False

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> PostgresServer:
        """``initdb`` a new cluster, start the server, make the ``app`` role and ``demo``."""
        if self.running:
            return self
        folder = postgres_bin_dir() if postgres_available() else None
        if folder is None:
            raise PostgresStartError(
                "PostgreSQL is not available here: install its server and the driver "
                "(Debian: apt-get install postgresql; pip install 'psycopg[binary]'), or set "
                "STREAMLAB_PG_BIN to the folder holding initdb and postgres."
            )
        self._bin = folder
        self._make_folder()
        try:
            self._initdb()
            super().start()
            self._create_app_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        assert self.folder is not None
        done = subprocess.run(
            [str(self._bin / "initdb"), "-D", str(self.folder / "data"), "-U", ADMIN_USER,
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, timeout=120, **_run_as(),  # type: ignore[arg-type]
        )
        if done.returncode != 0:
            raise PostgresStartError(
                f"initdb failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
            )

    def _create_app_database(self) -> None:
        with _connect(self.database_url(user=ADMIN_USER, database="postgres")) as conn:
            conn.execute(f"CREATE ROLE {APP_USER} LOGIN")
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {APP_USER}")

    def kill(self) -> None:
        """Kill the server and its backends at once (SIGKILL), as a crash would; keep the
        cluster, so that ``restart()`` can bring the same data back on the same port."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> PostgresServer:
        """Start the same cluster again on the same port (after ``kill()``, say)."""
        if self.folder is None or self.port is None:
            raise RuntimeError("restart() needs a server that was started: call start().")
        folder, self.folder = self.folder, None  # keep the cluster through stop()
        try:
            super().stop()
        finally:
            self.folder = folder
        self.requested_port = self.port
        try:
            super().start()
        finally:
            self.requested_port = None
        return self

    # -- looking inside ----------------------------------------------------
    def connect(self):
        """A new autocommit connection of the superuser to the ``demo`` database (psycopg's;
        use it in a ``with``). The superuser's slots are kept apart from the app's."""
        return _connect(self.database_url(user=ADMIN_USER))

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run ``sql`` as the superuser in the ``demo`` database; its rows (none for a
        command). A new connection each time, so it never holds one of the app's slots."""
        with self.connect() as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def app_backends(self) -> list[tuple[int, str, str, int]]:
        """The demo app's connections now: ``(pid, state, last query, client port)`` for
        each backend of the ``app`` role, from ``pg_stat_activity``."""
        return [tuple(row) for row in self.query(
            "SELECT pid, state, query, client_port FROM pg_stat_activity WHERE usename = %s "
            "ORDER BY pid", (APP_USER,))]

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        return f"<PostgresServer {self.name!r} max_connections={self.max_connections} {state}>"


PGBOUNCER_CONFIG = """\
; Written by streamlab.servers.postgres for one demo run; everything lives in this folder.
[databases]
{database} = host={host} port={upstream_port} dbname={database}

[pgbouncer]
listen_addr = {host}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
pool_mode = {pool_mode}
default_pool_size = {pool_size}
; Hand server connections out in turn rather than reusing the last one: what a busy
; pooler does anyway, made certain, so that one client's transactions change connection.
server_round_robin = 1
ignore_startup_parameters = extra_float_digits,options
logfile =
pidfile =
"""


class PgBouncer(_InFolder):
    """PgBouncer on 127.0.0.1 and a free port, pooling connections to ``upstream``'s
    ``demo`` database in ``pool_mode`` (``transaction``, ``session`` or ``statement``)."""

    kind = "pgbouncer"
    label = "PgBouncer"

    def __init__(self, upstream: PostgresServer, *, pool_mode: str = "transaction",
                 pool_size: int = 2, name: str = "pgbouncer") -> None:
        if pool_mode not in ("session", "transaction", "statement"):
            raise ValueError(f"pool_mode is session, transaction or statement, not {pool_mode!r}.")
        if not 1 <= pool_size <= 100:
            raise ValueError(f"pool_size must be 1 to 100, got {pool_size}.")
        super().__init__(name=name, startup_timeout=15.0, stop_timeout=5.0)
        self.upstream = upstream
        self.pool_mode = pool_mode
        self.pool_size = pool_size

    def database_url(self, **options: object) -> str:
        """The demo app's ``DEMO_DATABASE_URL`` through this pooler."""
        return self.upstream.database_url(port=self.port, **options)

    def command(self, port: int) -> list[str]:
        assert self.folder is not None and self.upstream.port is not None
        (self.folder / "userlist.txt").write_text(f'"{APP_USER}" ""\n')
        config = self.folder / "pgbouncer.ini"
        config.write_text(PGBOUNCER_CONFIG.format(
            database=DATABASE, host=HOST, upstream_port=self.upstream.port, port=port,
            folder=self.folder, pool_mode=self.pool_mode, pool_size=self.pool_size))
        return [self._binary, str(config)]

    def ready(self) -> bool:
        try:
            with _connect(self.database_url(), 1) as conn:
                conn.execute("SELECT 1")
                return True
        except Exception:
            return False

    def start(self) -> PgBouncer:
        if self.running:
            return self
        binary = pgbouncer_binary() if postgres_available() else None
        if binary is None:
            raise PostgresStartError(
                "PgBouncer is not available here: install it (Debian: apt-get install "
                "pgbouncer) or skip the pooler demos."
            )
        if not self.upstream.running:
            raise PostgresStartError(f"The upstream {self.upstream!r} is not running.")
        self._binary = binary
        self._make_folder()
        super().start()
        try:
            self._fill_pool()
        except BaseException:
            self.stop()
            raise
        return self

    def _fill_pool(self) -> None:
        """Make PgBouncer open all ``pool_size`` server connections now, as a busy pooler
        has them: as many clients each hold a transaction open at once."""
        clients = [_connect(self.database_url()) for _ in range(self.pool_size)]
        try:
            for client in clients:
                client.execute("BEGIN")
                client.execute("SELECT 1")
            for client in clients:
                client.execute("COMMIT")
        finally:
            for client in clients:
                client.close()

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        return f"<PgBouncer {self.name!r} pool_mode={self.pool_mode} {state}>"


def start_postgres(**options: object) -> PostgresServer:
    """Start a throwaway PostgreSQL (see ``PostgresServer`` for the options). Calling it
    again with the same ``name`` stops the previous one first."""
    return PostgresServer(**options).start()  # type: ignore[arg-type]


def start_pgbouncer(upstream: PostgresServer, **options: object) -> PgBouncer:
    """Start PgBouncer in front of ``upstream`` (see ``PgBouncer`` for the options)."""
    return PgBouncer(upstream, **options).start()  # type: ignore[arg-type]

