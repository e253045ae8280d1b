"""gunicorn's settings when Baton is served from this folder (`./dev run`, the Procfile's web).

gunicorn reads this file by its name. Its own lines go through Baton's log handler, text or
JSON like every other line (connector/logs.py); access lines are off, as a URL can carry a
credential. Embedded mode (no REDIS_URL) is one process with threads: the in-process Redis
stand-in, the worker thread and the sweeper are that process's own, started when it loads the
app (gunicorn's master never loads it).
"""

import os

from gunicorn.glogging import Logger

from connector.logs import configure_logging

worker_class = "gthread"
threads = 16
if not os.environ.get("REDIS_URL"):
    workers = 1
control_socket_disable = True  # one path per user: two servers on a machine would share it

logconfig_dict = {
    "root": {"level": "INFO", "handlers": []},  # Baton's handler is added in on_starting
    "loggers": {
        "gunicorn.error": {"handlers": [], "propagate": True},  # its level is --log-level
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
    },
}


class QuietAccessLogger(Logger):
    # gunicorn builds each request's access-line atoms whenever a log config is given, even for
    # a logger that drops them; access lines are off here, so they are never built.
    access_log_enabled = False


logger_class = QuietAccessLogger


def on_starting(server):
    configure_logging()
