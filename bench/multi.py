"""Benchmark: one iredldap instance against two behind nginx (issue 16).

    .venv/bin/python bench/multi.py [--seconds 5] [--clients 8]

Everything on 127.0.0.1, started here and stopped (by PID) at the end: two
slapds in multi-provider replication (as tests/test_replication.py), a
private MariaDB database (127.0.0.1:3306 root, dropped afterwards), two
gunicorns (2 workers x 4 threads each, URL_PREFIX /iredadmin), and nginx with
the upstream of deploy/nginx-iredldap-two.conf.  The same mixed workload
(per request: 60% GET a user, 20% PUT a user's name, 10% POST a new user,
10% GET the domain list; each client logs in once) runs for a fixed time
twice through nginx: with one instance in the upstream, then with both.
Prints requests/s, p50 and p99 latency of each run and their ratio.  On a
machine with few cores both instances share the same CPUs, so the ratio
shows the cost of the second instance and the proxy more than a gain.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from iredldap.backends import tree_of  # noqa: E402
from iredldap.db.engine import make_engine  # noqa: E402
from iredldap.db.iredadmin import IredadminDB  # noqa: E402
from iredldap.directory.admins import AdminStore  # noqa: E402
from iredldap.directory.base import init_tree  # noqa: E402
from iredldap.directory.connection import Directory  # noqa: E402
from iredldap.model import passwords  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.fixtures_sql import MARIADB_ADMIN_URL, MARIADB_HOST, MARIADB_PORT, _admin_engine  # noqa: E402
from tests.servers import free_port, stop, wait_http  # noqa: E402
from tests.test_replication import ADMIN, ADMIN_PW, SUFFIX, Instance, replicated_pair  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PREFIX = "/iredadmin"
DOMAIN = "bench.test"
PW = "Bench#Passw0rd"


def nginx_conf(folder: Path, port: int, upstreams: list[int]) -> Path:
    """deploy/nginx-iredldap-two.conf with the instances' ports, in a server block of our own."""
    example = (ROOT / "deploy" / "nginx-iredldap-two.conf").read_text()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=2 fail_timeout=10s;\n" for p in upstreams)
    start, end = example.index("upstream iredldap {"), example.index("}", example.index("upstream iredldap {"))
    snippet = example[:start] + "upstream iredldap {\n" + servers + "    keepalive 16;\n" + example[end:]
    upstream_part, location_part = snippet.split("location ", 1)
    prefix = folder / f"nginx-{len(upstreams)}"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{upstream_part}
    server {{
        listen 127.0.0.1:{port};
        location {location_part}
    }}
}}
""")
    return conf


class Client:
    """One keep-alive connection to nginx, logged in."""

    def __init__(self, port: int):
        self.port = port
        self.conn = HTTPConnection("127.0.0.1", port, timeout=15)
        self.cookie = ""
        status, _, headers = self.call("POST", "/api/login", {"username": ADMIN, "password": ADMIN_PW})
        assert status == 200, status
        self.cookie = headers.get("set-cookie", "").split(";", 1)[0]

    def call(self, method: str, path: str, body: dict | None = None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.cookie:
            headers["Cookie"] = self.cookie
        for attempt in range(2):
            try:
                self.conn.request(method, PREFIX + path, body=json.dumps(body) if body is not None else None,
                                  headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}
            except (OSError, ConnectionError):
                self.conn.close()
                self.conn = HTTPConnection("127.0.0.1", self.port, timeout=15)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def run(port: int, seconds: float, clients: int, users: list[str], tag: str) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def work(c: int) -> None:
        rnd = random.Random(c)
        client = Client(port)
        n = 0
        mine: list[float] = []
        seen: dict[int, int] = {}
        while time.monotonic() < stop_at:
            n += 1
            pick = rnd.random()
            if pick < 0.6:
                req = ("GET", f"/api/user/{rnd.choice(users)}", None)
            elif pick < 0.8:
                req = ("PUT", f"/api/user/{rnd.choice(users)}", {"name": f"N{c}-{n}"})
            elif pick < 0.9:
                req = ("POST", f"/api/user/{tag}c{c}n{n}@{DOMAIN}", {"password": PW})
            else:
                req = ("GET", "/api/domains", None)
            t = time.perf_counter()
            status, _, _ = client.call(*req)
            mine.append(time.perf_counter() - t)
            seen[status] = seen.get(status, 0) + 1
        client.conn.close()
        with lock:
            latencies.extend(mine)
            for k, v in seen.items():
                statuses[k] = statuses.get(k, 0) + v

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50": pct(0.50), "p99": pct(0.99),
            "statuses": dict(sorted(statuses.items()))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--users", type=int, default=50, help="users made before the runs")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 60 or not 1 <= args.clients <= 64:
        parser.error("--seconds 1..60, --clients 1..64 (a bounded run)")

    admin = _admin_engine(MARIADB_ADMIN_URL)
    name = f"iredldap_bench_{int(time.time())}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"))
    sql_url = f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}"
    folder = Path(tempfile.mkdtemp(prefix="iredldap-bench-"))
    a, b = replicated_pair(folder)
    instances: list[Instance] = []
    nginx: subprocess.Popen | None = None
    try:
        a.start()
        b.start()
        settings = make_settings(folder, ldap_uri=f"{a.uri} {b.uri}", sql_iredadmin_url=sql_url)
        tree = tree_of(settings)
        engine = make_engine(sql_url)
        IredadminDB(engine).create_tables()
        engine.dispose()
        seed = Directory(a.uri, a.root_dn, a.root_password)
        init_tree(seed, tree)
        AdminStore(seed, tree).create_standalone(ADMIN, password_hash=passwords.hash_password(ADMIN_PW, "SSHA"),
                                                 is_global=True)
        seed.close()
        env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("IREDLDAP_")}
        env.update({"IREDLDAP_LDAP_URI": settings.ldap_uri, "IREDLDAP_LDAP_BIND_DN": a.root_dn,
                    "IREDLDAP_LDAP_BIND_PASSWORD": a.root_password, "IREDLDAP_LDAP_SUFFIX": SUFFIX,
                    "IREDLDAP_SQL_IREDADMIN_URL": sql_url, "IREDLDAP_SECRET_KEY": settings.secret_key,
                    "IREDLDAP_URL_PREFIX": PREFIX, "IREDLDAP_TRUSTED_PROXIES": "127.0.0.1",
                    "IREDLDAP_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000"})
        instances = [Instance("api1", folder, env), Instance("api2", folder, env)]
        for instance in instances:
            wait_http(f"http://127.0.0.1:{instance.port}{PREFIX}/healthz", instance.proc, timeout=30)

        results = {}
        for count in (1, 2):
            port = free_port()
            conf = nginx_conf(folder, port, [i.port for i in instances[:count]])
            nginx = subprocess.Popen([NGINX, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            wait_http(f"http://127.0.0.1:{port}{PREFIX}/readyz", nginx, timeout=30)
            if count == 1:
                setup = Client(port)
                users = [f"u{i}@{DOMAIN}" for i in range(args.users)]
                assert setup.call("POST", f"/api/domain/{DOMAIN}", {})[0] == 201
                for mail in users:
                    assert setup.call("POST", f"/api/user/{mail}", {"password": PW})[0] == 201
            results[count] = run(port, args.seconds, args.clients, users, tag=f"r{count}")
            stop(nginx)
            nginx = None
            r = results[count]
            print(f"{count} instance(s) behind nginx: {r['rps']:.1f} requests/s, p50 {r['p50']:.1f} ms, "
                  f"p99 {r['p99']:.1f} ms ({r['requests']} requests, statuses {r['statuses']})")
        one, two = results[1], results[2]
        print(f"two / one: {two['rps'] / one['rps']:.2f}x requests/s, p50 {two['p50'] / one['p50']:.2f}x, "
              f"p99 {two['p99'] / one['p99']:.2f}x  ({args.clients} clients, {args.seconds:g} s each)")
    finally:
        if nginx is not None:
            stop(nginx)
        for instance in instances:
            stop(instance.proc)
        a.stop()
        b.stop()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
