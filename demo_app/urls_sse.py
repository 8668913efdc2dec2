"""URLs for server-sent events, the token stream and the page that reads them (notebook 09)."""

from django.urls import path

from . import sse_views

urlpatterns = [
    # One URL per stream; the view plays it with a sync or an async generator,
    # whichever matches the server (see sse_views).
    path("events", sse_views.events),
    path("tokens", sse_views.answer_tokens),
    path("chat", sse_views.chat),
    path("chat.js", sse_views.chat_js),
]
