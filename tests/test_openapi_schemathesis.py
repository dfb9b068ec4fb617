"""The OpenAPI document is true: schemathesis runs over it against the app
on a real slapd, SQLite and a local mlmmj spool, logged in as a global admin,
and finds no 500 and no response that the document does not describe.

Every test here needs a slapd, and collecting them costs seconds in each
test process (schemathesis builds every operation's cases then), so the
module is not collected at all when the marker expression leaves slapd
tests out (conftest.SLAPD_ONLY_MODULES)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from iredldap.backends import Backends
from iredldap.web.app import create_app

from .conftest import SavedState, build_app, make_settings
from .support import ApiClient, Factory

pytestmark = pytest.mark.slapd

ROOT = ("root@admins.test", "R00t#secret")


# -- schemathesis ----------------------------------------------------------------

# Built once per test process: the entries, the SQLite files, the mlmmj folder
# (a copy of it) and the global admin's session cookie.
_SERVED_WORLD: list[tuple[SavedState, Path, str]] = []


@pytest.fixture
def served(settings, slapd_directory, iredadmin, sqlite_templates, local_spool, tmp_path_factory):
    """The app on the real slapd, SQLite and a local mlmmj spool, some
    accounts to find, a global admin's session: built once, laid down again
    for every operation's run."""
    app = build_app(settings, slapd_directory, iredadmin, sqlite_templates, list_spool=local_spool)
    if _SERVED_WORLD:
        state, spool_copy, cookie = _SERVED_WORLD[0]
        state.restore(slapd_directory, settings, over=True)
        shutil.rmtree(local_spool.spool_dir.parent, ignore_errors=True)
        shutil.copytree(spool_copy, local_spool.spool_dir.parent, symlinks=True)
        return app, {settings.session_cookie_name: cookie}
    factory = Factory(slapd_directory, settings)
    factory.global_admin(*ROOT)
    client = ApiClient(app, settings)
    client.login(*ROOT)
    factory.domain("example.com")
    for mail in ("postmaster@example.com", "user@example.com"):
        assert client.post(f"/api/user/{mail}", {"password": "Secr3t#pass"}).status_code == 201
    assert client.post("/api/alias/team@example.com", {"members": "user@example.com"}).status_code == 201
    assert client.post("/api/maillist/list@example.com", {"members": "user@example.com"}).status_code == 201
    assert client.post("/api/ml/news@example.com", {"subscribers": "s@example.org",
                                                    "require_confirm": "no"}).status_code == 201
    spool_copy = tmp_path_factory.mktemp("served-spool") / "copy"
    shutil.copytree(local_spool.spool_dir.parent, spool_copy, symlinks=True)
    _SERVED_WORLD.append((SavedState(slapd_directory, settings), spool_copy, client.cookie))
    return app, {settings.session_cookie_name: client.cookie}


def _document_schema():
    """The served document, loaded through the app's own endpoint (an app on
    ldap3's mock is enough to serve it; the calls go to the slapd one)."""
    import tempfile

    from iredldap.db.engine import make_engine
    from iredldap.db.iredadmin import IredadminDB

    from .conftest import mock_directory

    folder = Path(tempfile.mkdtemp(prefix="iredldap-openapi-"))
    settings = make_settings(folder)
    app = create_app(settings, Backends(directory=mock_directory(),
                                        iredadmin=IredadminDB(make_engine(settings.sql_iredadmin_url))))
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


# (Not schemathesis.pytest.from_fixture: its lazy loading does not work with pytest 9.)
schema = _document_schema()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@schema.parametrize()
# 12 examples an operation keep the run near a minute on 2 cores; the same ones
# every run (derandomize).  IREDLDAP_SCHEMATHESIS_EXAMPLES=200 for a long hunt.
@hypothesis_settings(max_examples=int(os.environ.get("IREDLDAP_SCHEMATHESIS_EXAMPLES", "12")), deadline=None,
                     suppress_health_check=list(HealthCheck), database=None,
                     derandomize="IREDLDAP_SCHEMATHESIS_EXAMPLES" not in os.environ)
def test_schemathesis_finds_no_500_and_no_undocumented_answer(case, served):
    app, cookies = served
    if case.path.endswith("/api/logout"):
        cookies = {}  # keep the session for the other examples
    case.call_and_validate(cookies=cookies, checks=CHECKS, app=app)
