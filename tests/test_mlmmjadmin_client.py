"""The `mlmmjadmin` backend talks to mlmmjadmin exactly as its reference
describes (mlmmj.md 3): the requests tests/fake_mlmmjadmin.py records for
each operation (URL, token header, form), its `_msg` values mapped to our
errors, and an mlmmjadmin that cannot be reached or answers nonsense.

The fake itself is held to the reference here too (routes, 404/405, token
checks, the `email_only` quirk, has_subscriber, owners/moderators)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from iredldap.errors import InvalidInput, ListSpoolError, ListSpoolUnavailable, NoSuchAccount
from iredldap.mlmmj.mlmmjadmin import PING_ADDRESS, MlmmjadminClient

from .fake_mlmmjadmin import FILE_NOT_FOUND, HEADER, Recorded

LIST = "sales@example.com"


def only(fake, method: str | None = None) -> list[tuple[str, str, dict, dict]]:
    """(method, path, query, form) of the recorded requests, each checked to
    carry the token in mlmmjadmin's header."""
    seen = fake.recorded()
    for r in seen:
        assert r.token() == fake.token, r
    fake.clear()
    return [(r.method, r.path, r.query, r.form) for r in seen if method in (None, r.method)]


# -- the requests of each operation ---------------------------------------------------------

def test_create_posts_the_checked_form(fake_mlmmjadmin, mlmmjadmin_client):
    mlmmjadmin_client.create("Sales@Example.com", {"name": "Sales", "owners": "boss@example.com",
                                                   "moderated": "YES", "moderators": "Mod@Example.com"})
    assert only(fake_mlmmjadmin) == [("POST", "/api/sales@example.com", {},
                                      {"name": "Sales", "owner": "boss@example.com", "moderated": "yes",
                                       "moderators": "mod@example.com"})]
    assert (fake_mlmmjadmin.spool.list_dir(LIST) / "control" / "moderated").exists()


def test_the_header_name_and_content_type(fake_mlmmjadmin, mlmmjadmin_client):
    mlmmjadmin_client.create(LIST, {"tocc": "no"})
    [r] = fake_mlmmjadmin.recorded()
    assert isinstance(r, Recorded)
    assert r.headers[HEADER.lower()] == fake_mlmmjadmin.token
    assert r.headers["content-type"] == "application/x-www-form-urlencoded"


def test_update_profile_exists_and_delete(fake_mlmmjadmin, mlmmjadmin_client):
    client = mlmmjadmin_client
    client.create(LIST, {})
    fake_mlmmjadmin.clear()
    client.update(LIST, {"subject_prefix": "[s] ", "custom_headers": "X-A: 1\nX-B: 2"})
    assert client.profile(LIST)["subject_prefix"] == "[s] "
    assert client.exists(LIST) and not client.exists("other@example.com")
    assert client.delete(LIST, archive=False) is None
    assert only(fake_mlmmjadmin) == [
        ("PUT", "/api/sales@example.com", {}, {"subject_prefix": "[s] ", "custom_headers": "X-A: 1\nX-B: 2"}),
        ("GET", "/api/sales@example.com", {}, {}),
        ("GET", "/api/sales@example.com", {"params": "name"}, {}),
        ("GET", "/api/other@example.com", {"params": "name"}, {}),
        ("DELETE", "/api/sales@example.com", {"archive": "no"}, {}),
    ]


def test_delete_with_archive_returns_where_it_went(fake_mlmmjadmin, mlmmjadmin_client):
    mlmmjadmin_client.create(LIST, {})
    fake_mlmmjadmin.clear()
    where = mlmmjadmin_client.delete(LIST, archive=True)
    assert where and where.startswith(str(fake_mlmmjadmin.spool.archive_dir / "example.com" / "sales-"))
    assert only(fake_mlmmjadmin) == [("DELETE", "/api/sales@example.com", {"archive": "yes"}, {})]


def test_an_update_that_only_removes_files_asks_first_whether_the_list_is_there(fake_mlmmjadmin,
                                                                                 mlmmjadmin_client):
    with pytest.raises(NoSuchAccount):
        mlmmjadmin_client.update(LIST, {"moderated": "no"})
    assert only(fake_mlmmjadmin) == [("GET", "/api/sales@example.com", {"params": "name"}, {})]


def test_subscriber_requests(fake_mlmmjadmin, mlmmjadmin_client):
    client = mlmmjadmin_client
    client.create(LIST, {})
    fake_mlmmjadmin.clear()
    client.add_subscribers(LIST, ["Alice@Example.org", "bob@example.org"])
    client.add_subscribers(LIST, ["dave@example.org"], subscription="digest")
    client.remove_subscribers(LIST, ["bob@example.org"])
    assert [s.mail for s in client.subscribers(LIST)] == ["alice@example.org", "dave@example.org"]
    client.remove_subscribers(LIST, ["ALL"])
    path = "/api/sales@example.com/subscribers"
    assert only(fake_mlmmjadmin) == [
        ("POST", path, {}, {"add_subscribers": "alice@example.org,bob@example.org", "subscription": "normal",
                            "require_confirm": "no"}),
        ("POST", path, {}, {"add_subscribers": "dave@example.org", "subscription": "digest",
                            "require_confirm": "no"}),
        ("POST", path, {}, {"remove_subscribers": "bob@example.org"}),
        ("GET", path, {}, {}),
        ("POST", path, {}, {"remove_subscribers": "ALL"}),
    ]
    assert client.subscribers(LIST) == []


def test_require_confirm_is_sent_as_yes(fake_mlmmjadmin, mlmmjadmin_client):
    # The fake's answer is canned: running mlmmj-sub is test_mlmmj_delivery's.
    fake_mlmmjadmin.canned = {"_success": True}
    mlmmjadmin_client.add_subscribers(LIST, ["alice@example.org"], subscription="nomail", require_confirm=True)
    assert only(fake_mlmmjadmin) == [("POST", "/api/sales@example.com/subscribers", {},
                                      {"add_subscribers": "alice@example.org", "subscription": "nomail",
                                       "require_confirm": "yes"})]


def test_rename_is_create_add_delete(fake_mlmmjadmin, mlmmjadmin_client):
    client = mlmmjadmin_client
    client.create(LIST, {"subject_prefix": "[s]", "extra_addresses": "alias@example.com"})
    client.add_subscribers(LIST, ["alice@example.org"])
    client.add_subscribers(LIST, ["nina@example.org"], subscription="nomail")
    fake_mlmmjadmin.clear()
    client.rename(LIST, "team@example.com")
    seen = only(fake_mlmmjadmin)
    assert [(m, p) for m, p, _, _ in seen] == [
        ("GET", "/api/sales@example.com"), ("GET", "/api/team@example.com"),
        ("GET", "/api/sales@example.com/subscribers"), ("POST", "/api/team@example.com"),
        ("POST", "/api/team@example.com/subscribers"), ("POST", "/api/team@example.com/subscribers"),
        ("DELETE", "/api/sales@example.com")]
    create_form = seen[3][3]
    assert create_form["subject_prefix"] == "[s]" and create_form["extra_addresses"] == "alias@example.com"
    assert create_form["custom_headers"] == "" and "owners" not in create_form
    assert set(create_form) == set(client.profile("team@example.com")) - {"owners", "subscription_moderators"}
    assert seen[4][3] == {"add_subscribers": "alice@example.org", "subscription": "normal", "require_confirm": "no"}
    assert seen[5][3] == {"add_subscribers": "nina@example.org", "subscription": "nomail", "require_confirm": "no"}
    assert seen[6][2] == {"archive": "yes"}


def test_a_failed_rename_takes_the_new_list_away_again(fake_mlmmjadmin, mlmmjadmin_client):
    client = mlmmjadmin_client
    client.create(LIST, {})
    client.add_subscribers(LIST, ["alice@example.org"])
    original = fake_mlmmjadmin.post_subscribers

    def failing(mail, form):
        if mail == "team@example.com" and form.get("add_subscribers"):
            raise RuntimeError("disk full")
        return original(mail, form)

    fake_mlmmjadmin._routes[3][1]["POST"] = failing
    with pytest.raises(ListSpoolError, match="disk full"):
        client.rename(LIST, "team@example.com")
    assert client.exists(LIST) and not client.exists("team@example.com")
    assert client.subscribers(LIST)[0].mail == "alice@example.org"


def test_ping_asks_for_a_list_nobody_has(fake_mlmmjadmin, mlmmjadmin_client):
    mlmmjadmin_client.ping()
    assert only(fake_mlmmjadmin) == [("GET", f"/api/{PING_ADDRESS}", {"params": "name"}, {})]


# -- mlmmjadmin's answers ------------------------------------------------------------------------------

@pytest.mark.parametrize("msg, error", [
    ("NO_SUCH_ACCOUNT", NoSuchAccount),
    (FILE_NOT_FOUND, NoSuchAccount),
    ("INVALID_EMAIL", InvalidInput),
    ("NOT_AUTHORIZED_API_CLIENT", ListSpoolError),
    ("NO_API_AUTH_TOKEN", ListSpoolError),
    ("INVALID_MLMMJADMIN_API_AUTH_TOKEN", ListSpoolError),
    ("SKEL_DIR_NOT_EXIST", ListSpoolError),
    ("SUB_COMMAND_NOT_FOUND", ListSpoolError),
    ("PermissionError(13, 'Permission denied')", ListSpoolError),
    (None, ListSpoolError),
])
def test_msg_values_become_our_errors(fake_mlmmjadmin, mlmmjadmin_client, msg, error):
    fake_mlmmjadmin.canned = {"_success": False} if msg is None else {"_success": False, "_msg": msg}
    with pytest.raises(error) as caught:
        mlmmjadmin_client.update(LIST, {"subject_prefix": "[x]"})
    assert type(caught.value) is error
    if msg:
        assert caught.value.details["mlmmjadmin_msg"] == msg


@pytest.mark.parametrize("token, msg", [("wrong-token", "INVALID_MLMMJADMIN_API_AUTH_TOKEN"),
                                        ("", "NO_API_AUTH_TOKEN")])
def test_a_token_mlmmjadmin_refuses(fake_mlmmjadmin, token, msg):
    client = MlmmjadminClient(fake_mlmmjadmin.url, token, timeout=5)
    for call in (client.ping, lambda: client.create(LIST, {})):
        with pytest.raises(ListSpoolError, match=msg):
            call()
    assert not fake_mlmmjadmin.spool.exists(LIST)


def test_a_custom_header_name_is_used(fake_mlmmjadmin):
    client = MlmmjadminClient(fake_mlmmjadmin.url, fake_mlmmjadmin.token, header="X-Other-Token", timeout=5)
    with pytest.raises(ListSpoolError, match="NO_API_AUTH_TOKEN"):
        client.ping()
    assert fake_mlmmjadmin.recorded()[0].headers["x-other-token"] == fake_mlmmjadmin.token


CALLS = {
    "ping": lambda c: c.ping(),
    "create": lambda c: c.create(LIST, {}),
    "update": lambda c: c.update(LIST, {"name": "x"}),
    "profile": lambda c: c.profile(LIST),
    "exists": lambda c: c.exists(LIST),
    "delete": lambda c: c.delete(LIST, archive=True),
    "rename": lambda c: c.rename(LIST, "team@example.com"),
    "subscribers": lambda c: c.subscribers(LIST),
    "add": lambda c: c.add_subscribers(LIST, ["a@example.org"]),
    "remove": lambda c: c.remove_subscribers(LIST, ["ALL"]),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_unreachable_mlmmjadmin_is_unavailable(fake_mlmmjadmin, mlmmjadmin_client, name):
    fake_mlmmjadmin.stop()          # the port is closed now: connections are refused
    with pytest.raises(ListSpoolUnavailable):
        CALLS[name](mlmmjadmin_client)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_garbage_answer_is_unavailable(fake_mlmmjadmin, mlmmjadmin_client, name):
    fake_mlmmjadmin.garbage = True
    with pytest.raises(ListSpoolUnavailable):
        CALLS[name](mlmmjadmin_client)
    assert not fake_mlmmjadmin.spool.exists(LIST)


@pytest.mark.parametrize("status, error", [(500, ListSpoolUnavailable), (502, ListSpoolUnavailable),
                                           (503, ListSpoolUnavailable), (403, ListSpoolError)])
def test_http_errors(fake_mlmmjadmin, mlmmjadmin_client, status, error):
    fake_mlmmjadmin.status = status
    with pytest.raises(error):
        mlmmjadmin_client.profile(LIST)


def test_a_base_url_without_api_is_a_404_error_naming_the_setting(fake_mlmmjadmin):
    client = MlmmjadminClient(fake_mlmmjadmin.url[:-len("/api")], fake_mlmmjadmin.token, timeout=5)
    with pytest.raises(ListSpoolError, match="MLMMJADMIN_API_BASE_URL"):
        client.profile(LIST)


def test_data_of_the_wrong_shape_is_unavailable(fake_mlmmjadmin, mlmmjadmin_client):
    fake_mlmmjadmin.canned = {"_success": True, "_data": "not a profile"}
    with pytest.raises(ListSpoolUnavailable):
        mlmmjadmin_client.profile(LIST)
    with pytest.raises(ListSpoolUnavailable):
        mlmmjadmin_client.subscribers(LIST)


@pytest.mark.parametrize("envelope", [[1, 2], {"_data": {}}, {"_success": "yes"}, "ok", None])
def test_json_that_is_not_the_envelope_is_unavailable(envelope):
    with _raw_server(json.dumps(envelope).encode()) as url, pytest.raises(ListSpoolUnavailable):
        MlmmjadminClient(url, "t", timeout=5).profile(LIST)


def test_an_answer_nested_too_deep_for_pythons_parser_is_unavailable():
    # json.loads raises RecursionError for it, which was an error nobody caught (a 500).
    with _raw_server(b"[" * 100_000) as url, pytest.raises(ListSpoolUnavailable):
        MlmmjadminClient(url, "t", timeout=5).profile(LIST)


def test_a_silent_mlmmjadmin_times_out_as_unavailable():
    # Accepts connections, never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
        started = time.monotonic()
        with pytest.raises(ListSpoolUnavailable) as caught:
            MlmmjadminClient(url, "t", timeout=0.5).profile(LIST)
        assert time.monotonic() - started < 5 and caught.value.details["maybe_landed"] is False
        with pytest.raises(ListSpoolUnavailable) as caught:
            MlmmjadminClient(url, "t", timeout=0.5).create(LIST, {})
        assert caught.value.details["maybe_landed"] is True      # it may have been made


def test_a_refused_connection_changed_nothing(fake_mlmmjadmin, mlmmjadmin_client):
    fake_mlmmjadmin.stop()
    with pytest.raises(ListSpoolUnavailable) as caught:
        mlmmjadmin_client.create(LIST, {})
    assert caught.value.details["maybe_landed"] is False


def test_addresses_mlmmjadmins_routes_would_not_match_are_refused_unsent(fake_mlmmjadmin, mlmmjadmin_client):
    for bad in ("it's@example.com", "a@example.abcdefghijklmnop"):
        with pytest.raises(InvalidInput):
            mlmmjadmin_client.create(bad, {})
    assert fake_mlmmjadmin.recorded() == []


class _raw_server:
    """A one-thread HTTP server giving `body` (200, application/json) to every request."""

    def __init__(self, body: bytes):
        self.body = body
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(self.body)).encode() + b"\r\n\r\n" + self.body)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"

    def __exit__(self, *exc):
        self.sock.close()
        self.thread.join(5)


# -- the fake speaks mlmmjadmin's API ---------------------------------------------------------------------

def _raw(fake, method: str, path: str, form: dict | None = None, token: str | None = None):
    data = urlencode(form).encode() if form is not None and method in ("POST", "PUT") else None
    query = "?" + urlencode(form) if form is not None and data is None else ""
    request = urllib.request.Request(f"http://127.0.0.1:{fake.port}{path}{query}", data=data, method=method,
                                     headers={HEADER: fake.token if token is None else token})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            body = answer.read()
            return answer.status, answer.headers, (json.loads(body) if answer.headers["Content-Type"]
                                                   == "application/json" else body)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def test_fake_routes_404_405_and_tokens(fake_mlmmjadmin):
    fake = fake_mlmmjadmin
    assert _raw(fake, "GET", "/sales@example.com")[::2] == (404, b"not found")
    assert _raw(fake, "GET", "/api/not-an-address")[0] == 404
    status, headers, _ = _raw(fake, "PATCH", "/api/sales@example.com")
    assert status == 405 and set(headers["Allow"].split(", ")) == {"GET", "POST", "PUT", "DELETE"}
    assert _raw(fake, "GET", "/api/sales@example.com", token="")[2] == {"_success": False,
                                                                       "_msg": "NO_API_AUTH_TOKEN"}
    assert _raw(fake, "GET", "/api/sales@example.com", token="x")[2]["_msg"] == "INVALID_MLMMJADMIN_API_AUTH_TOKEN"
    assert _raw(fake, "GET", "/api/sales@example.com")[2] == {"_success": False, "_msg": "NO_SUCH_ACCOUNT"}
    assert _raw(fake, "PUT", "/api/sales@example.com", {"name": "x"})[2] == {"_success": False,
                                                                            "_msg": FILE_NOT_FOUND}
    assert _raw(fake, "DELETE", "/api/sales@example.com")[2] == {"_success": True}


def test_fake_subscribers_has_subscriber_and_subscribed(fake_mlmmjadmin):
    fake = fake_mlmmjadmin
    assert _raw(fake, "POST", "/api/sales@example.com", {})[2] == {"_success": True}
    form = {"add_subscribers": "b@example.org, a@example.org,bad", "require_confirm": "maybe"}
    assert _raw(fake, "POST", "/api/sales@example.com/subscribers", form)[2] == {"_success": True}
    _raw(fake, "POST", "/api/sales@example.com/subscribers", {"add_subscribers": "a@example.org",
                                                              "subscription": "weekly-ish"})
    _raw(fake, "POST", "/api/sales@example.com/subscribers", {"add_subscribers": "a@example.org",
                                                              "subscription": "digest"})
    assert _raw(fake, "GET", "/api/sales@example.com/subscribers", {"email_only": "no"})[2]["_data"] == \
        ["a@example.org", "a@example.org", "b@example.org"]
    assert _raw(fake, "GET", "/api/sales@example.com/has_subscriber/a@example.org")[2] == {"_success": True,
                                                                                         "_data": "normal"}
    assert _raw(fake, "GET", "/api/sales@example.com/has_subscriber/z@example.org")[2] == {"_success": False}
    assert _raw(fake, "GET", "/api/subscriber/a@example.org/subscribed",
                {"query_all_lists": "yes", "email_only": "yes"})[2]["_data"] == [LIST, LIST]
    assert _raw(fake, "GET", "/api/missing@example.com/subscribers")[2] == {"_success": True, "_data": []}
    assert _raw(fake, "POST", "/api/missing@example.com/subscribers",
                {"add_subscribers": "a@example.org"})[2]["_msg"] == FILE_NOT_FOUND


def test_fake_owners_and_moderators(fake_mlmmjadmin):
    fake = fake_mlmmjadmin
    _raw(fake, "POST", "/api/sales@example.com", {"moderators": "m@example.com,not-valid"})
    assert _raw(fake, "GET", "/api/sales@example.com/moderators")[2]["_data"] == ["m@example.com"]
    _raw(fake, "PUT", "/api/sales@example.com/owners", {"add_owners": "B@x.org", "remove_owners": "postmaster@example.com"})
    assert _raw(fake, "GET", "/api/sales@example.com/owners")[2]["_data"] == ["b@x.org"]
    _raw(fake, "PUT", "/api/sales@example.com/owners", {"owners": ""})
    assert (fake.spool.list_dir(LIST) / "control" / "owner").read_text() == "\n"
    assert _raw(fake, "GET", "/api/sales@example.com/owners")[2]["_data"] == []
    assert _raw(fake, "GET", "/api/nope@example.com/owners")[2]["_msg"] == "NO_SUCH_ACCOUNT"


def test_fake_is_lenient_like_mlmmjadmin(fake_mlmmjadmin):
    fake = fake_mlmmjadmin
    _raw(fake, "POST", "/api/sales@example.com", {"owners": "ignored@example.com", "moderated": "true", "colour": "red"})
    profile = _raw(fake, "GET", "/api/sales@example.com", {"params": "Owner, moderated,unknown"})[2]["_data"]
    assert profile == {"owner": ["postmaster@example.com"], "moderated": "no"}


def test_tls_only_for_an_https_api_with_one_context_per_kind():
    """An http:// API (iRedMail's) gets no TLS context at all; an https://
    one gets the process's context for its kind, verifying or not as set."""
    import ssl

    def https_contexts(client):
        return [h._context for h in client._opener.handlers if isinstance(h, urllib.request.HTTPSHandler)
                and getattr(h, "_context", None) is not None]

    assert https_contexts(MlmmjadminClient("http://127.0.0.1:7790/api")) == []
    loose, strict = MlmmjadminClient("https://lists.test/api"), MlmmjadminClient("HTTPS://lists.test/api",
                                                                               verify_ssl=True)
    (loose_context,), (strict_context,) = https_contexts(loose), https_contexts(strict)
    assert loose_context.verify_mode == ssl.CERT_NONE and not loose_context.check_hostname
    assert strict_context.verify_mode == ssl.CERT_REQUIRED and strict_context.check_hostname
    assert https_contexts(MlmmjadminClient("https://other.test/api")) == [loose_context]
