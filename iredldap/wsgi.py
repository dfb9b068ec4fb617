"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py iredldap.wsgi:application`.

Settings come from IREDLDAP_CONFIG and IREDLDAP_* variables.  The app is
built when a worker imports this module, so every worker opens its own
directory and database connections.  A configuration error is one line on
stderr and the worker exits (see iredldap.startup).
"""

from iredldap.errors import IredldapError
from iredldap.startup import WORKER_BOOT_ERROR, fail, settings_or_exit


def application_or_exit():
    """The WSGI app of a gunicorn worker; one line and WORKER_BOOT_ERROR on failure."""
    from iredldap.web.app import create_app

    settings = settings_or_exit(WORKER_BOOT_ERROR)
    try:
        return create_app(settings)
    except IredldapError as exc:
        fail(f"{exc.code}: {exc.reason}", WORKER_BOOT_ERROR)


application = application_or_exit()
