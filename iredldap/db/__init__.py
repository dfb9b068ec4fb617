"""SQL side of the service: iRedAdmin's own database (``iredadmin``).

No web framework is imported here; stores raise `iredldap.errors` classes.
"""

from iredldap.db.engine import make_engine, translate_db_errors
from iredldap.db.iredadmin import IredadminDB

__all__ = ["make_engine", "translate_db_errors", "IredadminDB"]
