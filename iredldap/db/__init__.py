"""SQL side of the service: iRedAdmin's own database (``iredadmin``).

No web framework is imported here; stores raise `iredldap.errors` classes.
"""

from iredldap.db.engine import Database, make_engine
from iredldap.db.iredadmin import IredadminDB

__all__ = ["make_engine", "Database", "IredadminDB"]
