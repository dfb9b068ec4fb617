"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py iredldap.wsgi:application`.

Settings come from IREDLDAP_CONFIG and IREDLDAP_* variables.  The app is
built when a worker imports this module, so every worker opens its own
directory and database connections.  A configuration error is one line on
stderr and the worker exits (see iredldap.startup).
"""

from .startup import application_or_exit

application = application_or_exit()
