"""Benchmark: creating mail users through the API against plain ldap3 adds.

    .venv/bin/python bench/users.py [--users 10000]

Starts a private slapd, then
  1. adds N user entries with plain ldap3 (the same attributes the API writes),
  2. deletes them, and creates N users through the API (the WSGI app in this
     process: parameter parsing, rules, template, hashing, counter),
  3. times PUT /api/users/<domain> over the N users.
Prints the throughputs and their ratio, all measured in this one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iredldap.model import passwords  # noqa: E402
from iredldap.web.app import Backends, create_app, tree_of  # noqa: E402
from iredldap.db.engine import make_engine  # noqa: E402
from iredldap.db.iredadmin import IredadminDB  # noqa: E402
from iredldap.directory.admins import AdminStore  # noqa: E402
from iredldap.directory.base import init_tree  # noqa: E402
from iredldap.directory.connection import Directory  # noqa: E402
from iredldap.directory.domains import DomainStore  # noqa: E402
from iredldap.directory.localslapd import LocalSlapd  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.fixtures_slapd import wipe_tree  # noqa: E402
from tests.support import ApiClient  # noqa: E402

PASSWORD = "Bench#Passw0rd"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    n = args.users

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        slapd = LocalSlapd(tmp_path / "slapd", suffix="dc=example,dc=com", root_password="secret")
        slapd.start()
        try:
            settings = make_settings(tmp_path)
            directory = Directory(slapd.uri, slapd.root_dn, slapd.root_password)
            tree = tree_of(settings)
            init_tree(directory, tree)
            DomainStore(directory, tree, default_transport="dovecot").create("bench.test", {})
            AdminStore(directory, tree).create_standalone(
                "root@admins.test", password_hash=passwords.hash_password("R00t#pw", "SSHA"), is_global=True)
            db = IredadminDB(make_engine(settings.sql_iredadmin_url))
            db.create_tables()
            client = ApiClient(create_app(settings, Backends(directory, db)), settings)
            client.login("root@admins.test", "R00t#pw")

            # A template entry as the API writes it, copied for the plain adds.
            client.post("/api/user/template@bench.test", {"password": PASSWORD})
            template = directory.get(tree.user("template@bench.test"))
            client.delete("/api/user/template@bench.test")
            conn = slapd.connection()
            start = time.perf_counter()
            for i in range(n):
                mail = f"user{i}@bench.test"
                attrs = {k: v for k, v in template.attrs.items() if k.lower() not in ("mail", "uid", "objectclass")}
                attrs.update(mail=[mail], uid=[f"user{i}"])
                conn.add(tree.user(mail), template.get("objectClass"), attrs)
            plain = time.perf_counter() - start
            wipe_tree(conn, tree.container("bench.test", "Users"))
            conn.add(tree.container("bench.test", "Users"), ["organizationalUnit"], {"ou": ["Users"]})

            start = time.perf_counter()
            for i in range(n):
                r = client.post(f"/api/user/user{i}@bench.test", {"password": PASSWORD})
                if r.status_code != 201:
                    raise SystemExit(f"create failed: {r.text}")
            api = time.perf_counter() - start

            start = time.perf_counter()
            r = client.put("/api/users/bench.test", {"language": "de_DE", "accountStatus": "disabled"})
            bulk = time.perf_counter() - start
            if r.status_code != 200:
                raise SystemExit(f"bulk update failed: {r.text}")
            conn.unbind()
        finally:
            slapd.stop()

    print(f"users:                       {n}")
    print(f"plain ldap3 adds:            {n / plain:9.1f} users/s  ({plain:.2f} s)")
    print(f"API creates (in-process):    {n / api:9.1f} users/s  ({api:.2f} s)")
    print(f"API / plain throughput:      {plain / api:9.3f}")
    print(f"PUT /api/users/<domain>:     {bulk:9.2f} s for {n} users ({n / bulk:.1f} users/s)")


if __name__ == "__main__":
    main()
