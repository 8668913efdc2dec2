from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.index),
    # The two URLs of the original 2016 example, kept as they were.
    path("download_csv", views.download_csv),
    path("download_csv_streaming", views.download_csv_streaming),
    # Streamed, but with a Content-Length the view computes (notebook 03).
    path("download_csv_streaming_sized", views.download_csv_streaming_sized),
    path("hello", views.hello),
    path("hello_streaming", views.hello_streaming),
    path("empty", views.empty),
    path("", include("demo_app.urls_async")),
    path("", include("demo_app.urls_patterns")),
    path("", include("demo_app.urls_sse")),
    path("", include("demo_app.urls_topics")),
]
