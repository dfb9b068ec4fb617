"""The route table (iredldap.web.app.ROUTES): every responder method has an
access rule, checked when the app is made."""

from __future__ import annotations

import pytest

from iredldap.backends import Backends
from iredldap.web import app as web_app
from iredldap.web.app import MissingAccessRule, create_app, route
from iredldap.web.authz import Rule

from .support import ApiClient
from .test_http_conventions import assert_error


class _Answers:
    def on_get(self, req, resp):
        resp.media = {"_success": True}

    def on_put(self, req, resp):
        resp.media = {"_success": True}

    def on_delete_keep(self, req, resp, days):
        resp.media = {"_success": True}


def _make(settings, directory, iredadmin, *extra):
    return create_app(settings, Backends(directory=directory, iredadmin=iredadmin),
                      routes=(*web_app.ROUTES, *extra))


def test_a_responder_method_without_a_rule_is_refused_at_start(settings, directory, iredadmin):
    with pytest.raises(MissingAccessRule, match=r"PUT /api/test: _Answers\.on_put has no access rule"):
        _make(settings, directory, iredadmin, route("/api/test", lambda w: _Answers(), GET=Rule.GLOBAL))


def test_a_rule_without_a_responder_method_is_refused_at_start(settings, directory, iredadmin):
    with pytest.raises(MissingAccessRule, match=r"POST /api/test: a rule but no responder _Answers\.on_post"):
        _make(settings, directory, iredadmin,
              route("/api/test", lambda w: _Answers(), GET=Rule.GLOBAL, PUT=Rule.GLOBAL, POST=Rule.GLOBAL))


def test_suffixed_responders_need_their_rule(settings, directory, iredadmin):
    with pytest.raises(MissingAccessRule, match=r"DELETE /api/test/\{days\}: _Answers\.on_delete_keep"):
        _make(settings, directory, iredadmin, route("/api/test/{days}", lambda w: _Answers(), suffix="keep"))


def test_an_added_route_is_served_with_its_rules(settings, directory, iredadmin):
    made = _make(settings, directory, iredadmin,
                 route("/api/test", lambda w: _Answers(), GET=Rule.PUBLIC, PUT=Rule.GLOBAL),
                 route("/api/test/{days}", lambda w: _Answers(), suffix="keep", DELETE=Rule.GLOBAL))
    client = ApiClient(made, settings)
    assert client.get("/api/test").status_code == 200
    assert_error(client.put("/api/test"), 401, "LOGIN_REQUIRED")
    assert_error(client.delete("/api/test/7"), 401, "LOGIN_REQUIRED")


def test_the_access_table_is_the_route_tables_rules():
    assert web_app.RULES == web_app.rules_of(web_app.ROUTES)
    assert web_app.RULES[("/api/user/{mail}", "PUT")] is Rule.MAIL_ACCOUNT
    assert len({r.template for r in web_app.ROUTES}) == len(web_app.ROUTES)
