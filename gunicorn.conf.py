"""gunicorn settings for iredldap.

    IREDLDAP_CONFIG=/etc/iredldap/iredldap.ini gunicorn -c gunicorn.conf.py

`iredldap serve --config gunicorn.conf.py` reads the same file.  Values can be
overridden with GUNICORN_* style command-line flags as usual.
"""

import multiprocessing
import os

wsgi_app = "iredldap.wsgi:application"
bind = os.environ.get("IREDLDAP_BIND", "127.0.0.1:8080")
# Directory calls block; a few workers per core keep one slow LDAP search from
# holding up everyone.  Sessions live in the database, so any worker serves
# any client.
workers = int(os.environ.get("IREDLDAP_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8)))
timeout = 120          # a domain-wide update of many thousands of users takes a while
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
