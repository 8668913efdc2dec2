"""Gunicorn settings every demo server starts with (``gunicorn --config`` this file).

The command line built by ``streamlab.servers.gunicorn`` overrides anything set here.
The access log line adds the body size and the time taken (microseconds), so
a notebook can read from the server's own log how long a response took.
"""

accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s bytes %(D)sus'
capture_output = True
