"""gunicorn settings for iredldap.

    IREDLDAP_CONFIG=/etc/iredldap/iredldap.ini gunicorn -c gunicorn.conf.py

`iredldap serve --config gunicorn.conf.py` reads the same file.  Values can be
overridden with GUNICORN_* style command-line flags as usual.
"""

import multiprocessing
import os

from iredldap.gunicorn_worker import DEFAULT_THREADS, default_workers

wsgi_app = "iredldap.wsgi:application"
bind = os.environ.get("IREDLDAP_BIND", "127.0.0.1:8080")
# Threaded workers (gunicorn's gthread, answering gunicorn's own refusals in
# our JSON envelope: iredldap/gunicorn_worker.py): a client that stalls in the
# middle of its request holds one thread of a worker's pool, not a whole
# worker, so a few slow or stalled clients cost nothing; the others are
# served by the remaining threads.  Directory calls block, so each thread
# waits on its own LDAP connection (one per thread).  Sessions live in the
# database, so any worker serves any client.
# About two workers per core measured best (iredldap/gunicorn_worker.py).
worker_class = "iredldap.gunicorn_worker.ThreadWorker"
workers = int(os.environ.get("IREDLDAP_WORKERS", default_workers(multiprocessing.cpu_count())))
threads = int(os.environ.get("IREDLDAP_THREADS", DEFAULT_THREADS))
# The worker's heartbeat: with threads, a long request does not stop it, so
# this only catches a hung worker.  A domain-wide update of many thousands of
# users takes a while.
timeout = 120
# Idle keep-alive connections are dropped after this many seconds.
keepalive = 5
# A request line longer than this (method, path and query string) is a 414,
# more header fields than this or a longer field a 431 -- in JSON.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
# Method and path only: no query string or body, so no password reaches the log.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
forwarded_allow_ips = os.environ.get("IREDLDAP_FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Check the settings, the database drivers and our own tables once in
    the master: a problem is one line and no worker starts."""
    from iredldap.startup import check_or_exit

    check_or_exit()
