"""Helpers the notebooks, scripts and tests share: start the demo app under
Gunicorn, measure a request, and speak raw HTTP over a socket.

    >>> from streamlab import start_server, measure
    >>> server = start_server(worker_class="sync")
    >>> m = measure(server.url("/download_csv_streaming?rows=1000"), server=server)
    >>> server.stop()
"""

from .measure import Measurement, measure
from .processes import ManagedProcess, ServerStartError, stop_all
from .rawhttp import RawResponse, raw_request
from .server import DemoServer, running_servers, start_server

__all__ = [
    "DemoServer",
    "ManagedProcess",
    "Measurement",
    "RawResponse",
    "ServerStartError",
    "measure",
    "raw_request",
    "running_servers",
    "start_server",
    "stop_all",
]
