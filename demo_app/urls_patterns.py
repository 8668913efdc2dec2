"""URLs for real-world patterns: database export, files, middleware (notebooks 07 and 08)."""

from django.urls import path

from . import export_views

urlpatterns = [
    path("export/streaming", export_views.export_streaming),
    path("export/whole", export_views.export_whole),
    path("export/paged", export_views.export_paged),
    path("export/async", export_views.export_async),
    path("export/transaction", export_views.export_transaction),
    path("files/file_response", export_views.file_response),
    path("files/generator", export_views.file_generator),
    path("files/async", export_views.file_async),
    path("files/accel", export_views.file_accel),
]
