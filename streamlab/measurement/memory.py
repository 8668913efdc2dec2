"""The resident memory (RSS) of processes, sampled while something runs.

``RssSampler`` watches a few processes (a server's workers during one
request); ``TreeMemorySampler`` the summed memory of a whole process tree (a
notebook kernel and every server it started). On Linux the kernel's own
high-water mark is read as well, so a spike between two samples is not missed.
"""

from __future__ import annotations

import threading

import psutil


class RssSampler:
    """Samples the RSS of some processes in a background thread.

    ``baseline`` is each process's RSS when sampling starts; ``peak_delta`` is
    the largest rise above it seen by any one process. A short spike can fall
    between two samples, so on Linux the kernel's own high-water mark (VmHWM,
    reset through /proc/PID/clear_refs when sampling starts) is read as well.
    """

    def __init__(self, processes: list[psutil.Process], interval: float = 0.005) -> None:
        self.processes = processes
        self.interval = interval
        self.baseline: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        for process in self.processes:
            try:
                rss = process.memory_info().rss
            except psutil.Error:  # the worker exited (timeout, max-requests): keep what we saw
                continue
            self.baseline.setdefault(process.pid, rss)
            self.peak[process.pid] = max(self.peak.get(process.pid, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        for process in self.processes:
            _reset_peak_rss(process.pid)
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        for pid in self.peak:
            self.peak[pid] = max(self.peak[pid], _peak_rss(pid) or 0)

    @property
    def baseline_total(self) -> int:
        return sum(self.baseline.values())

    @property
    def peak_delta(self) -> int:
        return max((self.peak[pid] - self.baseline[pid] for pid in self.peak), default=0)


class TreeMemorySampler(RssSampler):
    """The peak of the summed PSS of every descendant of ``root``.

    For a notebook run: the kernel and every server it starts. PSS (proportional
    set size) counts a page shared by n processes as 1/n in each, so the sum
    counts it once: the memory a container's limit (Binder's 2 GB) sees. RSS
    would count it in every process, and a hundred PostgreSQL backends that
    share the server's buffers would add up to gigabytes that are not there.
    Where PSS cannot be read (not Linux), RSS stands in: an upper bound.
    """

    def __init__(self, root: psutil.Process, interval: float = 0.2) -> None:
        super().__init__([], interval)
        self.root = root
        self.peak_total = 0

    def _sample(self) -> None:
        try:
            descendants = self.root.children(recursive=True)
        except psutil.Error:
            return
        self.peak_total = max(self.peak_total, total_pss(descendants))


def _reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's peak-RSS counter of ``pid`` (Linux only; False elsewhere)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss(pid: int) -> int | None:
    """The kernel's peak RSS of ``pid`` in bytes since the last reset (Linux only)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def total_rss(processes: list[psutil.Process]) -> int:
    """The processes' RSS summed, in bytes; one that has exited counts as nothing."""
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def total_pss(processes: list[psutil.Process]) -> int:
    """The processes' PSS summed, in bytes (RSS for one whose PSS cannot be read)."""
    total = 0
    for process in processes:
        try:
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.AccessDenied:
            total += total_rss([process])
        except psutil.Error:
            continue
    return total


def total_cpu(processes: list[psutil.Process]) -> float:
    """The processes' CPU time (user + system) summed, in seconds; an exited one counts 0."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total
