"""The memory a notebook run is charged: shared pages counted once, not once per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psutil
from support.wait import wait_until

from streamlab.measurement.memory import TreeMemorySampler, total_pss, total_rss

MiB = 2**20
# A parent that fills 200 MiB and then forks three children: until they write to it, the
# four processes share those pages (copy-on-write), as Gunicorn's forked workers or
# PostgreSQL's backends share theirs.
FORKING = textwrap.dedent("""
    import os, sys, time
    block = bytearray(os.urandom(1024)) * (200 * 1024)
    for _ in range(3):
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    print("forked", flush=True)
    time.sleep(60)
""")


def test_shared_pages_are_counted_once():
    launcher = psutil.Process()
    process = subprocess.Popen([sys.executable, "-c", FORKING], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "forked"
        parent = psutil.Process(process.pid)
        assert wait_until(lambda: len(parent.children()) == 3, timeout=10)
        tree = [parent, *parent.children()]
        rss, pss = total_rss(tree), total_pss(tree)
        assert rss > 4 * 200 * MiB  # each of the four counts the block
        assert 200 * MiB < pss < 1.5 * 200 * MiB  # the block once, and a little of its own
        with TreeMemorySampler(launcher, interval=0.05) as sampler:
            assert wait_until(lambda: sampler.peak_total > 0, timeout=10)
        assert 200 * MiB < sampler.peak_total < 2 * 200 * MiB
    finally:
        for child in psutil.Process(process.pid).children():
            child.kill()
        process.kill()
        process.wait()
        process.stdout.close()
