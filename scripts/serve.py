#!/usr/bin/env python
"""Run the demo app under Gunicorn in the foreground on 127.0.0.1, for curl.

    python scripts/serve.py --port 8000 --worker-class sync
    curl --raw -i "http://127.0.0.1:8000/download_csv_streaming?rows=5&chunk_rows=1"

    python scripts/serve.py --worker-class gthread --http2      # HTTP/2 beside HTTP/1.1
    curl -i --http2-prior-knowledge "http://127.0.0.1:8000/download_csv_streaming?rows=5"

    python scripts/serve.py --server uvicorn                    # another ASGI server (notebook 11)
    curl --raw -i "http://127.0.0.1:8000/stream_async?rows=5&chunk_rows=1"

The command line is the one the notebooks use (streamlab.servers.gunicorn), so what you
see here is what they measure. Stop it with Ctrl-C.

The database (``$DEMO_DB_PATH``, by default demo_app/demo.sqlite3, a gitignored build
artefact) is migrated first, so the /export views work on a fresh checkout; migrating
an up-to-date database changes nothing. ``python manage.py seed_rows N`` fills it.
"""

from __future__ import annotations

import argparse
import os
import sys

from streamlab.paths import PROJECT_ROOT
from streamlab.servers.asgi_servers import SERVER_CLASSES, SERVERS, server_kind
from streamlab.servers.gunicorn import DemoServer
from streamlab.servers.manage import manage_ok

WORKER_CLASSES = ("sync", "gthread", "asgi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--server", default="gunicorn", choices=list(SERVERS),
                        help="gunicorn (with --worker-class), or another ASGI server")
    parser.add_argument("--worker-class", default="sync", choices=WORKER_CLASSES)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="for the gthread worker")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--http2", action="store_true",
                        help="also speak cleartext HTTP/2 (gthread or asgi): "
                             "curl --http2-prior-knowledge")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    if args.server != "gunicorn":
        if (args.http2 or args.worker_class != "sync" or args.threads is not None
                or args.workers != 1):
            parser.error(f"--worker-class, --workers, --threads and --http2 are Gunicorn's "
                         f"options; {args.server} serves the demo app's ASGI entry point with "
                         "one worker process.")
        try:
            server_kind(args.server)
        except ModuleNotFoundError as missing:
            parser.error(str(missing))
        server = SERVER_CLASSES[args.server]()
    else:
        if args.http2 and args.worker_class == "sync":
            parser.error("Gunicorn's sync worker does not speak HTTP/2 (it logs a warning and "
                         "serves HTTP/1.1 only): add --worker-class gthread or asgi.")
        server = DemoServer(
            worker_class=args.worker_class, workers=args.workers,
            threads=args.threads, timeout=args.timeout, http2=args.http2,
        )
    command = server.command(args.port)
    try:
        manage_ok({}, "migrate", "--verbosity", "0")  # the same environment as the server's
    except RuntimeError as error:  # serve anyway: only the /export views need the tables
        print(f"{error}\nServing without it: the /export views answer 503.", file=sys.stderr)
    print(f"Serving the demo app with {args.server}: http://127.0.0.1:{args.port}/  "
          "(Ctrl-C to stop)", flush=True)
    os.chdir(PROJECT_ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.settings")
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
