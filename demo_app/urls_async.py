"""URLs for async streaming and worker/timeout demos (notebooks 05 and 06)."""

from django.urls import path

from . import async_views

urlpatterns = [
    # The same CSV from a sync generator and from an async one (see async_views).
    path("stream_sync", async_views.stream_sync),
    path("stream_async", async_views.stream_async),
]
