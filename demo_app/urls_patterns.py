"""URLs for real-world patterns: database export, files, middleware (notebook 07)."""

urlpatterns: list = []
