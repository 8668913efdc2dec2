"""Programs the series starts on 127.0.0.1, and always stops.

``process.ManagedProcess`` is the one lifecycle every server shares (own
process group, captured log, readiness check, registry, exit hook, watchdog);
``gunicorn``, ``nginx`` and ``jupyter`` say how to run each program.
``toy_wsgi`` is a teaching server small enough to read next to Gunicorn's
sync worker; ``manage`` runs the demo app's ``manage.py`` commands.
"""
