"""What a client and a worker experience, in numbers.

``request``: ``measure()``, one request's TTFB, total time, arrival timeline
and worker memory. ``memory``: RSS samplers for processes and process trees.
``workers``: experiments on worker classes (a second request's wait, slow
readers, disconnects, the sync/async matrix). ``bench``: the benchmark behind
``make bench``; ``plots``: its figures.
"""
