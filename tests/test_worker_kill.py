"""A gunicorn worker killed (SIGKILL, by the PID of the worker of the gunicorn
this test started) in the middle of a domain delete: the worker gunicorn
starts in its place finishes the deletion from the journal, and every removed
mailbox has its deleted_mailboxes row."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from iredldap.model import passwords
from iredldap.backends import tree_of
from iredldap.db import tables as t
from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.admins import AdminStore
from iredldap.directory.base import init_tree
from iredldap.directory.connection import Directory
from iredldap.directory.domains import DomainStore
from iredldap.directory.localslapd import LocalSlapd
from iredldap.directory.users import UserStore

from .conftest import make_settings
from .servers import free_port

# gunicorn workers on a private slapd
pytestmark = [pytest.mark.slapd, pytest.mark.servers]

HASH = passwords.hash_password("Us3r#secret", "SSHA")



def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_killed_mid_domain_delete(tmp_path):
    slapd = LocalSlapd(tmp_path / "slapd", suffix="dc=example,dc=com", root_password="secret")
    slapd.start()
    gunicorn = None
    try:
        settings = make_settings(tmp_path, ldap_uri=slapd.uri)
        directory = Directory(slapd.uri, slapd.root_dn, slapd.root_password)
        tree = tree_of(settings)
        init_tree(directory, tree)
        AdminStore(directory, tree).create_standalone(
            "root@admins.test", password_hash=passwords.hash_password("R00t#pw", "SSHA"), is_global=True)
        DomainStore(directory, tree, default_transport="dovecot").create("big.test", {})
        users = UserStore(directory, tree, settings)
        mails = [f"u{i:03d}@big.test" for i in range(250)]
        for mail in mails:
            users.create(mail, {}, password_hash=HASH)
        db = IredadminDB(make_engine(settings.sql_iredadmin_url))
        db.create_tables()

        port = free_port()
        env = dict(os.environ, IREDLDAP_LDAP_URI=slapd.uri, IREDLDAP_LDAP_BIND_DN=slapd.root_dn,
                   IREDLDAP_LDAP_BIND_PASSWORD=slapd.root_password, IREDLDAP_LDAP_SUFFIX="dc=example,dc=com",
                   IREDLDAP_SQL_IREDADMIN_URL=settings.sql_iredadmin_url,
                   IREDLDAP_SQL_AMAVISD_URL=settings.sql_amavisd_url,
                   IREDLDAP_SQL_IREDAPD_URL=settings.sql_iredapd_url, IREDLDAP_SECRET_KEY="x" * 20)
        env.pop("IREDLDAP_CONFIG", None)
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "--timeout", "60",
             "iredldap.wsgi:application"], env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "gunicorn.log", "wb"))
        first_worker = _wait(lambda: _children(gunicorn.pid), 30, "a gunicorn worker")[0]

        def request(method, path, params=None, cookie=None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if cookie:
                headers["Cookie"] = cookie
            conn.request(method, path, body=urlencode(params or {}), headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Set-Cookie"), resp.read()

        def up():
            try:
                return request("GET", "/healthz")[0] == 200
            except OSError:
                return False
        _wait(up, 30, "gunicorn to answer")
        status, set_cookie, _ = request("POST", "/api/login", {"username": "root@admins.test", "password": "R00t#pw"})
        assert status == 200
        cookie = set_cookie.split(";")[0]

        outcome = {}

        def delete():
            try:
                outcome["status"] = request("DELETE", "/api/domain/big.test", cookie=cookie)[0]
            except (OSError, http.client.HTTPException) as err:
                outcome["error"] = err.__class__.__name__
        thread = threading.Thread(target=delete)
        thread.start()

        def halfway():
            with db.engine.connect() as conn:
                row = conn.execute(select(t.write_journal.c.done)
                                   .where(t.write_journal.c.kind == "delete")).first()
            return row is not None and row.done >= 60
        _wait(halfway, 60, "the delete to be under way")
        os.kill(first_worker, signal.SIGKILL)
        thread.join(60)
        assert "status" not in outcome, outcome      # the client got no answer
        # gunicorn starts a new worker, which finishes the journal at start.
        _wait(lambda: [p for p in _children(gunicorn.pid) if p != first_worker], 30, "a new worker")

        def finished():
            with db.engine.connect() as conn:
                return conn.execute(select(t.write_journal.c.state)).scalar() == "done"
        _wait(finished, 60, "the journal to be finished")
        assert directory.search(tree.domains_dn, "(objectClass=*)", attrs=("1.1",)) != []
        assert directory.subtree(tree.domain("big.test")) == []
        with db.engine.connect() as conn:
            rows = {r.username for r in conn.execute(select(t.deleted_mailboxes))}
        assert rows == set(mails)
        status, _, body = request("GET", "/api/domain/big.test", cookie=cookie)
        assert status == 404, body
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            try:
                gunicorn.wait(20)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        slapd.stop()
