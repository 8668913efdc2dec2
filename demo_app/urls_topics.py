"""URLs for topics: publish an event, stream a topic, and the page that shows one (notebook 12)."""

from django.urls import path

from . import topic_views

urlpatterns = [
    path("topics/publish", topic_views.publish),
    path("topics/stream", topic_views.stream),
    path("topics", topic_views.page),
    path("topics.js", topic_views.page_js),
]
