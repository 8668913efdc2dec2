"""What a client and a worker experience, in numbers.

``request``: ``measure()``, one request's TTFB, total time, arrival timeline
and worker memory. ``memory``: RSS samplers for processes and process trees.
``workers``: experiments on worker classes (a second request's wait, slow
readers, disconnects, the sync/async matrix, request timelines). ``files``:
sending files and rows under each worker (memory against size, send cost,
Range requests). ``proxies``: what middleware and proxies do to a stream
(gzip arrivals, cut streams, intermediaries' timeouts). ``sse_clients`` and
``browser``: time to first token from Python clients and from headless
Chromium. ``bench`` and ``bench_results``: the benchmark behind ``make bench``
and its typed results, with ``http2_bench`` and ``sse_bench`` for its HTTP/2
and event-stream sections, and ``server_bench`` (its figure in ``server_bench_plots``)
for a thousand event streams on each ASGI server; ``plots``: the other figures of the
series (``server_plots``: notebook 11's).
"""
