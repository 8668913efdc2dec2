"""URLs for async streaming and worker/timeout demos (notebooks 05 and 06)."""

from django.urls import path

from . import async_views

urlpatterns = [
    # The same CSV from a sync generator and from an async one (see async_views).
    path("stream_sync", async_views.stream_sync),
    path("stream_async", async_views.stream_async),
    # Where a sync view and an async view run: process, thread, event loop.
    path("where_sync", async_views.where_sync),
    path("where_async", async_views.where_async),
    # A view that computes without yielding: what cooperative workers cannot interleave.
    path("spin", async_views.spin),
]
