"""URLs for async streaming and worker/timeout demos (notebooks 05 and 06)."""

urlpatterns: list = []
