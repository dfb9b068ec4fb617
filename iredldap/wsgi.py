"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py iredldap.wsgi:application`.

Settings come from IREDLDAP_CONFIG and IREDLDAP_* variables.  The app is
built when a worker imports this module, so every worker opens its own
directory and database connections.
"""

from .app import create_app
from .config import Settings

application = create_app(Settings.from_sources())
