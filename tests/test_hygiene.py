"""No server outlives what started it: a kernel restart, an interrupted cell, the whole suite.

The notebooks start Gunicorn (and nginx, in notebook 08) from a Jupyter
kernel. These tests do the same in a real kernel, run cell by cell through
nbclient as ``make run`` runs the series, then do what learners do:

* restart the kernel in the middle of a notebook, politely (JupyterLab's
  "Restart Kernel": the kernel exits and its atexit hooks run) and by force
  (the kernel is killed and no hook runs: the watchdog and nginx's
  parent-death signal must act);
* interrupt a cell in the middle of a long streaming download: the download
  stops, the server's generator is closed, and the server serves the next
  request at once;
* and, last of all (``reliability_plugin`` moves it to the end of the run),
  check that no Gunicorn, nginx, Jupyter, kernel or watchdog process started
  during the whole test session, notebooks included, is still running.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
import requests
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbclient.util import run_sync

from demo_app import csvgen
from streamlab.paths import NOTEBOOK_DIR
from streamlab.servers.nginx import nginx_available
from streamlab.servers.process import still_running

pytest_plugins = ["support.reliability_plugin"]

AREA = "process hygiene"


class Notebook:
    """A notebook built and run one cell at a time in a real kernel (nbclient)."""

    def __init__(self) -> None:
        self.nb = nbformat.v4.new_notebook()
        self.client = NotebookClient(
            self.nb, kernel_name="python3", timeout=120,
            resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )

    def run(self, source: str) -> str:
        """Execute one cell; return what it printed. Raises CellExecutionError on an error."""
        cell = nbformat.v4.new_code_cell(textwrap.dedent(source))
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    @property
    def kernel(self) -> psutil.Process:
        return psutil.Process(self.client.km.provisioner.pid)

    def started(self) -> list[psutil.Process]:
        """Every process the kernel started, and theirs."""
        return self.kernel.children(recursive=True)

    def restart(self, *, now: bool) -> None:
        run_sync(self.client.km.restart_kernel)(now=now)
        run_sync(self.client.kc.wait_for_ready)(timeout=60)

    def interrupt(self) -> None:
        run_sync(self.client.km.interrupt_kernel)()


def _kinds(processes: list[psutil.Process]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for process in processes:
        cmdline = " ".join(process.cmdline())
        # The watchdog first: its arguments name the server's log file, "gunicorn-...".
        kind = ("watchdog" if "streamlab.servers.watchdog" in cmdline
                else "gunicorn" if "-m gunicorn" in cmdline
                # Hypercorn's main process and the worker it spawns (notebook 11)
                else "hypercorn" if "-m hypercorn" in cmdline or "multiprocessing" in cmdline
                else "nginx" if "nginx" in cmdline else cmdline[:40])
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


START_SERVERS = """
    from streamlab import start_server
    from streamlab.servers.nginx import nginx_available, start_nginx

    server = start_server(name="hygiene")
    other = start_server(server="hypercorn", name="hygiene")   # a server with a spawned worker
    proxy = start_nginx(server, name="hygiene-nginx") if nginx_available() else None
    print("started", server, other, proxy)
"""


@pytest.mark.parametrize("how", ["graceful", "forced"])
def test_kernel_restart_in_the_middle_of_a_notebook_stops_every_server(how, figures):
    notebook = Notebook()
    with notebook.client.setup_kernel():
        notebook.run("import json, os\nprint(os.getpid())")
        old_kernel = notebook.kernel.pid
        notebook.run(START_SERVERS)
        processes = notebook.started()
        pids = [p.pid for p in processes]
        kinds = _kinds(processes)
        notebook.restart(now=how == "forced")
        left = still_running(pids, timeout=20)
        after = notebook.run("print(1 + 1)")  # the notebook goes on in the new kernel
        new_kernel = notebook.kernel.pid
    figures.count(AREA, "kernel restarts", one="kernel restart")
    figures.count(AREA, "leftover processes", len(left), one="leftover process")

    # Gunicorn's master and worker, Hypercorn's and its spawned worker, nginx's master and
    # worker, and a watchdog for each server.
    expected = {"gunicorn": 2, "hypercorn": 2, "watchdog": 2} | (
        {"nginx": 2} if nginx_available() else {})
    assert all(kinds.get(kind, 0) >= n for kind, n in expected.items()), kinds
    assert left == [], f"still running after a {how} restart: {left}"
    assert new_kernel != old_kernel and after == "2\n"


STREAM = "/stream_sync?rows=100000000&chunk_rows=1000&delay_ms=20&tag=interrupted"


def test_interrupted_streaming_cell_leaves_a_working_server_then_nothing(figures):
    notebook = Notebook()
    with notebook.client.setup_kernel():
        setup = notebook.run("""
            import json
            from streamlab import measure, start_server
            from streamlab.measurement.workers import StreamEvents

            events = StreamEvents()
            server = start_server(name="hygiene-interrupt", env=events.env)
            print(json.dumps({"port": server.port, "events": str(events.directory)}))
        """)
        info = json.loads(setup.splitlines()[-1])
        master = next(p for p in notebook.kernel.children()
                      if "-m gunicorn" in " ".join(p.cmdline()))
        worker = master.children()[0]

        def interrupt_once_streaming() -> None:
            """Wait until the download is flowing, then press Jupyter's stop button."""
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                connected = [c for c in worker.net_connections(kind="tcp")
                             if c.status == psutil.CONN_ESTABLISHED]
                if connected:
                    break
                time.sleep(0.05)
            time.sleep(0.5)
            interrupted_at.append(time.monotonic())
            notebook.interrupt()

        interrupted_at: list[float] = []
        helper = threading.Thread(target=interrupt_once_streaming, daemon=True)
        helper.start()
        with pytest.raises(CellExecutionError, match="KeyboardInterrupt"):
            notebook.run(f"m = measure(server.url({STREAM!r}))")
        cell_ended = time.monotonic()
        helper.join(10)

        events_dir = info["events"]
        record = _wait_for_record(events_dir, "interrupted")
        start = time.monotonic()
        body = requests.get(f"http://127.0.0.1:{info['port']}/download_csv_streaming?rows=5000",
                            timeout=30).content
        next_request_s = time.monotonic() - start
        in_kernel = notebook.run("""
            m = measure(server.url("/hello"))
            print(m.status)
        """)
        pids = [p.pid for p in notebook.started()]
        notebook.run("server.stop(); events.cleanup()")
        left = still_running(pids, timeout=20)
    figures.count(AREA, "interrupted cells", one="interrupted cell")
    figures.count(AREA, "leftover processes", len(left), one="leftover process")

    assert interrupted_at and cell_ended - interrupted_at[0] < 10
    assert record is not None and record["outcome"] == "GeneratorExit", record
    assert body == csvgen.csv_text(5000).encode() and in_kernel == "200\n"
    # The stream had over half an hour left; the next request did not wait for it.
    assert next_request_s < 10
    assert left == [], f"still running after server.stop(): {left}"


def _wait_for_record(directory: str, tag: str, timeout: float = 15) -> dict | None:
    """The record the tagged generator writes from its ``finally`` block (see StreamEvents)."""
    path = Path(directory) / f"{tag}.json"
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return json.loads(path.read_text()) if path.exists() else None


def test_no_process_survives_the_suite(find_project_processes, figures):
    """Run last: nothing this session started (servers, kernels, watchdogs) still runs."""
    leftovers = find_project_processes()
    deadline = time.monotonic() + 10  # a server stopped a moment ago may still be exiting
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.2)
        leftovers = find_project_processes()
    figures.count(AREA, "checks after the whole suite", one="check after the whole suite")
    figures.count(AREA, "leftover processes", len(leftovers), one="leftover process")
    for leftover in leftovers:  # report them, then leave no mess behind
        try:
            psutil.Process(leftover.pid).kill()
        except psutil.Error:
            pass
    assert leftovers == [], "\n".join(map(str, leftovers))
