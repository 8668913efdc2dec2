"""The library behind the series: start the demo app, read the wire, measure.

A notebook needs three names, importable from the top:

    >>> from streamlab import start_server, measure, proxy_link
    >>> server = start_server(worker_class="sync")
    >>> m = measure(server.url("/download_csv_streaming?rows=1000"), server=server)
    >>> server.stop()

The rest lives in one folder per concept:

``servers/``      start, watch and always stop a program on 127.0.0.1: Gunicorn
                  with the demo app, nginx, a Jupyter server; the watchdog;
                  a toy WSGI server that mirrors Gunicorn's loop.
``wire/``         the bytes between client and server: a raw HTTP/1.x socket
                  client, header fields, chunked framing and where a body ends.
``measurement/``  what a client and a worker experience: TTFB, memory, worker
                  behaviour under load, the benchmark and its figures.
``series/``       the notebooks as a whole: the headless runner, recorded
                  results and the wrap-up's evidence, the book and slides.
"""

from .measurement.request import Measurement, measure
from .servers.gunicorn import DemoServer, running_servers, start_server
from .servers.jupyter import proxy_link
from .servers.process import ManagedProcess, ServerStartError, stop_all
from .wire.http1 import RawResponse, raw_request

__all__ = [
    "DemoServer",
    "ManagedProcess",
    "Measurement",
    "RawResponse",
    "ServerStartError",
    "measure",
    "proxy_link",
    "raw_request",
    "running_servers",
    "start_server",
    "stop_all",
]
