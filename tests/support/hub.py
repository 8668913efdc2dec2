"""A JupyterHub user's server, as the tests play it (Binder is a JupyterHub)."""

HUB_PREFIX = "/user/learner/"  # JupyterHub serves a user's server under /user/<name>/
# The Host the hub's proxy passes on: the browser's, naming the hub, not this machine. The
# browser test has Chromium resolve it to 127.0.0.1.
HUB_HOST = "hub.test"
