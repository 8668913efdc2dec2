"""A real, headless Chromium (Debian's package), driven with Playwright, to time a page.

``HeadlessChromium`` starts one browser and keeps it for several visits
(``visit_once`` starts one for a single visit). ``visit(url)`` opens the page,
waits until it sets ``window.done``, and returns what it recorded in
``window.marks`` (the demo's ``/chat`` page times every token with
``performance.now()``) and the text of its log. ``topic_tabs`` opens the demo's
``/topics`` page in several tabs, each served by a different worker process,
publishes one event and returns what each tab showed (notebook 12).

Playwright's synchronous API refuses to run in a thread where an event loop
runs, as in a notebook's kernel; so the browser lives in a thread of its own
and every call is handed to that thread. Playwright is a test dependency and
Chromium a system package: ``unavailable()`` says why the browser cannot run
here (or None when it can), so a notebook can skip with a clear note.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..servers.process import ManagedProcess
from . import fanout

T = TypeVar("T")

# Chromium as root, offline: no sandbox, no GPU, and none of the background
# connections that a closed network would refuse over and over (as the browser test).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Fewer processes, so a notebook stays within Binder's memory: no zygotes, one
# renderer, the GPU and network services inside the browser process, a smaller V8.
# (This --enable-features replaces Playwright's own list, which only matters to
# screenshots.) Together they roughly halve the summed RSS of the browser's processes.
LEAN_ARGS = [
    "--no-zygote", "--renderer-process-limit=1", "--in-process-gpu",
    "--enable-features=NetworkServiceInProcess,NetworkServiceInProcess2", "--js-flags=--lite-mode",
]
# The page is done, and its first token has been painted (two animation frames later).
DONE = ("window.done === true && Object.values(window.marks)"
        ".every(m => m.first === undefined || m.first === null || m.firstPainted !== null)")


def chromium_path() -> str | None:
    """The Chromium binary to use: $STREAMLAB_CHROMIUM, else chromium on PATH."""
    configured = os.environ.get("STREAMLAB_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable() -> str | None:
    """Why no browser can be driven here, or None when one can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install playwright; it is a test dependency)."
    if chromium_path() is None:
        return ("No Chromium found: install Debian's 'chromium' package "
                "(apt-get install chromium) or set STREAMLAB_CHROMIUM to its path.")
    return None


@dataclass(frozen=True)
class PageVisit:
    """What one visit of a page recorded."""

    url: str
    marks: dict[str, Any]  # the page's window.marks, as JSON data
    log: str  # the text of the page's log (its #log element)
    requests: tuple[tuple[str, str], ...]  # (URL, Accept header) of each request it made


class HeadlessChromium:
    """One headless Chromium, kept for several visits; ``close()`` it (or use ``with``)."""

    def __init__(self, executable: str | None = None) -> None:
        reason = unavailable() if executable is None else None
        if reason:
            raise RuntimeError(reason)
        self.executable = executable or chromium_path()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._thread.submit(self._launch).result()
        atexit.register(self.close)

    def _launch(self) -> None:
        sync_api = importlib.import_module("playwright.sync_api")  # optional: see unavailable()
        self._playwright = sync_api.sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=self.executable, args=CHROMIUM_ARGS + LEAN_ARGS)

    def visit(self, url: str, *, headers: Mapping[str, str] | None = None,
              timeout: float = 60.0) -> PageVisit:
        """Open ``url`` in a fresh context, wait for ``window.done``, return what it recorded.
        ``headers`` go with every request the page makes (e.g. a Jupyter token)."""
        return self._thread.submit(self._visit, url, dict(headers or {}), timeout).result()

    def _visit(self, url: str, headers: dict[str, str], timeout: float) -> PageVisit:
        context = self._browser.new_context(extra_http_headers=headers)
        try:
            page = context.new_page()
            sent: list[tuple[str, str]] = []
            page.on("request", lambda r: sent.append((r.url, r.headers.get("accept", ""))))
            page.goto(url)
            page.wait_for_function(DONE, timeout=timeout * 1000)
            return PageVisit(url, page.evaluate("window.marks"), page.inner_text("#log"),
                             tuple(sent))
        finally:
            context.close()

    def call(self, function: Callable[[Any], T]) -> T:
        """``function(browser)`` run in the browser's thread, with Playwright's Browser: for
        a visit that is more than open-and-wait (several tabs, actions between waits)."""
        return self._thread.submit(function, self._browser).result()

    def close(self) -> None:
        """Close the browser and its driver; safe to call twice."""
        if getattr(self, "_browser", None) is None:
            return
        browser, self._browser = self._browser, None

        def shut() -> None:
            browser.close()
            self._playwright.stop()

        self._thread.submit(shut).result()
        self._thread.shutdown()

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def visit_once(url: str, *, headers: Mapping[str, str] | None = None,
               timeout: float = 60.0) -> PageVisit:
    """Start a browser, visit ``url``, close the browser: it holds hundreds of MiB, so a
    notebook keeps it only while it is needed (a start takes under a second)."""
    with HeadlessChromium() as browser:
        return browser.visit(url, headers=headers, timeout=timeout)


@dataclass(frozen=True)
class TopicTabs:
    """Tabs of the demo's ``/topics`` page, each on its own worker, and one event published."""

    workers: tuple[int, ...]  # the worker process serving each tab's stream
    published: fanout.Published
    marks: tuple[dict[str, Any], ...]  # each tab's window.marks once it showed the event
    shown: tuple[str, ...]  # each tab's list of events, as the page shows it
    attempts: int  # tabs opened until each worker served one


def topic_tabs(browser: HeadlessChromium, server: ManagedProcess, *, topic: str = "orders",
               tabs: int = 2, attempts: int = 30, timeout: float = 30.0) -> TopicTabs:
    """Open ``/topics?topic=...`` in ``tabs`` tabs, each served by a different worker process
    (a tab whose stream lands on a worker that already serves one is closed and opened
    again: each tab is a browser context of its own, so it cannot reuse another's
    connections), publish one event, and wait until every tab shows it."""
    url = server.url(f"/topics?topic={topic}")

    def run(chromium: Any) -> TopicTabs:
        contexts: list[Any] = []
        pages: list[Any] = []
        workers: list[int] = []
        try:
            opened = 0
            while len(pages) < tabs:
                if opened == attempts:
                    raise RuntimeError(f"{attempts} tabs opened, and their streams landed on "
                                       f"only {len(workers)} worker(s): {workers}")
                opened += 1
                context = chromium.new_context()
                page = context.new_page()
                page.goto(url)
                page.wait_for_function("window.marks.worker !== null", timeout=timeout * 1000)
                worker = page.evaluate("window.marks.worker")
                if worker in workers:
                    context.close()
                    continue
                contexts.append(context)
                pages.append(page)
                workers.append(worker)
            published = fanout.publish(server, "shown in every tab", topic=topic)
            for page in pages:
                page.wait_for_function(f"window.marks.ids.includes({published.id})",
                                       timeout=timeout * 1000)
            return TopicTabs(tuple(workers), published,
                             tuple(page.evaluate("window.marks") for page in pages),
                             tuple(page.inner_text("#events") for page in pages), opened)
        finally:
            for context in contexts:
                context.close()

    return browser.call(run)
