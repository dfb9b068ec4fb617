"""Benchmark: the rows of issue 15's table, each as a ratio against the
directory's own speed measured in the same run.

    .venv/bin/python bench/users.py [--sizes 10000 50000] [--creates 400] [--gets 2000] [--rounds 3] [--clients 8]

One private slapd configured as iRedMail's (bench/iredmail_slapd.py: mdb,
iRedMail's indexes and ACLs), the service bound as `cn=vmailadmin`, not as
the rootdn; one domain per size, its users written with slapadd
(bench/ldif.py `populate`).  For each size, a gunicorn of this checkout is
started on the data as gunicorn.conf.py starts it -- its threaded worker
class, its threads, its number of workers for this machine (`--workers`,
`--worker-class sync` for gunicorn's sync workers instead) -- and
`--clients` threads send the requests over keep-alive HTTP connections, each
logged in as a global admin.  Per size:

* create a user: POST /api/user/<new> vs. a raw ldap3 add of the same
  entry (as cn=vmailadmin, as many threads, one connection each);
* GET a user: GET /api/user/<mail> vs. a raw ldap3 base search of the entry
  (`--rounds` runs of each taken in turn, the median of each);
* LDIF export of the domain: GET /api/ldif/domain/<domain> (streamed to
  nowhere) vs. `ldapsearch -x -LLL -E pr=1000/noprompt` of the subtree,
  both bound as cn=vmailadmin; with the serving worker's peak RSS (VmHWM,
  a fresh gunicorn per size, the export its first work);
* a create in the domain with numberOfUsers set, and one with a domain
  quota set, vs. the same create with no limits (one client, milliseconds
  per create).  slapadd writes no quota total (domainCurrentQuotaSize): the
  first create under the domain quota adds up the users' quotas once
  (quota_total.py); it is timed apart, the row is the creates after it.

The ratios are fair within a run; the absolute numbers depend on the machine
(and whatever else runs on it).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ldap3  # noqa: E402

from iredldap.backends import tree_of  # noqa: E402
from iredldap.config import Settings  # noqa: E402
from iredldap.db.engine import make_engine  # noqa: E402
from iredldap.db.iredadmin import IredadminDB  # noqa: E402
from iredldap.directory.base import init_tree  # noqa: E402
from iredldap.directory.connection import Directory  # noqa: E402
from iredldap.directory.localslapd import free_port  # noqa: E402
from iredldap.gunicorn_worker import default_workers  # noqa: E402

from iredmail_slapd import VMAILADMIN_PASSWORD, IredmailSlapd  # noqa: E402
from ldif import ADMIN, ADMIN_PW, SUFFIX, populate  # noqa: E402

PASSWORD = "Bench#Passw0rd"


def settings_for(slapd: IredmailSlapd, folder: Path) -> dict[str, str]:
    return {
        "ldap_uri": slapd.uri, "ldap_bind_dn": slapd.vmailadmin_dn, "ldap_bind_password": VMAILADMIN_PASSWORD,
        "ldap_suffix": SUFFIX, "secret_key": "bench-secret-key-0123456789",
        "sql_iredadmin_url": f"sqlite:///{folder / 'iredadmin.sqlite'}",
        "sql_amavisd_url": f"sqlite:///{folder / 'amavisd.sqlite'}",
        "sql_iredapd_url": f"sqlite:///{folder / 'iredapd.sqlite'}",
    }


# -- running things in parallel -----------------------------------------------------------

def in_threads(clients: int, work: list, run) -> float:
    """Run `run(state, item)` for every item of `work`, spread over `clients`
    threads; the seconds it took.  Each thread first makes its own state
    (`run(None, None)`: its connection, its login) -- all at once, as
    independent clients arrive, so a pre-forked server spreads their
    keep-alive connections over its workers -- and the clock starts once
    every thread has one."""
    chunks = [work[i::clients] for i in range(clients)]
    ready = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def go(chunk):
        try:
            state = run(None, None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            ready.abort()
            return
        try:
            ready.wait()
            for item in chunk:
                run(state, item)
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=go, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    start = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    if errors:
        raise SystemExit(f"a benchmark thread failed: {errors[0]!r}")
    return took


def alternating(rounds: int, work: list, clients: int, raw, api) -> tuple[float, float]:
    """Items per second of `raw` and of `api`, each the median of `rounds`
    runs taken in turn (raw, api, raw, api, ...): a passing slowdown of the
    machine then spoils one round of each, not one side of the ratio."""
    raw_rates, api_rates = [], []
    for _ in range(rounds):
        raw_rates.append(len(work) / in_threads(clients, work, raw))
        api_rates.append(len(work) / in_threads(clients, work, api))
    print(f"  GET rounds, directory /s: {[round(x) for x in raw_rates]}, iredldap /s: {[round(x) for x in api_rates]}",
          flush=True)
    return statistics.median(raw_rates), statistics.median(api_rates)


# -- the service ------------------------------------------------------------------------

class Service:
    """gunicorn of this checkout on the benchmark's settings."""

    def __init__(self, ini: Path, workers: int, worker_class: str = "sync"):
        self.port = free_port("127.0.0.1")
        env = dict(os.environ, IREDLDAP_CONFIG=str(ini))
        # "sync": gunicorn's sync workers (one request at a time, the
        # connection closed after each answer); "shipped": the worker class
        # and threads of gunicorn.conf.py (keep-alive connections).
        workers_args = ["--worker-class", "sync", "--threads", "1"] if worker_class == "sync" else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"),
             *workers_args, "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
             "--access-logfile", "/dev/null", "--error-logfile", "-", "--log-level", "warning"],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.request(self.connect(), "GET", "/api/health")[0] < 500:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("gunicorn did not start")

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    @staticmethod
    def request(conn, method: str, path: str, params: dict | None = None, cookie: str | None = None,
                sink: bool = False) -> tuple[int, bytes, dict]:
        headers = {"Cookie": cookie} if cookie else {}
        body = None
        if params is not None:
            body = urlencode(params)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        if sink:
            while resp.read(1 << 16):
                pass
            data = b""
        else:
            data = resp.read()
        return resp.status, data, dict(resp.getheaders())

    def login(self) -> tuple[http.client.HTTPConnection, str]:
        conn = self.connect()
        status, body, headers = self.request(conn, "POST", "/api/login", {"username": ADMIN, "password": ADMIN_PW})
        if status != 200:
            raise SystemExit(f"login failed: {status} {body[:200]!r}")
        cookie = {k.lower(): v for k, v in headers.items()}.get("set-cookie", "").split(";", 1)[0]  # name=value
        return conn, cookie

    def worker_peak_rss_kb(self) -> int:
        peaks = []
        for pid in _children(self.proc.pid):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]))
            except OSError:
                pass
        return max(peaks or [0])

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


# -- the rows ---------------------------------------------------------------------------

def row_create(slapd, service, tree, domain, template, n, clients, tag) -> tuple[float, float]:
    def raw(conn, i):
        if conn is None:
            return slapd.vmailadmin_connection()
        mail = f"raw{tag}{i}@{domain}"
        attrs = {k: v for k, v in template.attrs.items() if k.lower() not in ("mail", "uid", "objectclass")}
        attrs.update(mail=[mail], uid=[f"raw{tag}{i}"], homeDirectory=[f"/var/vmail/vmail1/{domain}/raw{tag}{i}/"])
        conn.add(tree.user(mail), template.get("objectClass"), attrs)

    def api(state, i):
        if state is None:
            return service.login()
        status, body, _ = service.request(state[0], "POST", f"/api/user/api{tag}{i}@{domain}",
                                          {"password": PASSWORD}, state[1])
        if status != 201:
            raise RuntimeError(f"create: {status} {body[:300]!r}")
    raw_s = in_threads(clients, list(range(n)), raw)
    api_s = in_threads(clients, list(range(n)), api)
    return n / raw_s, n / api_s


def row_get(slapd, service, tree, domain, size, n, clients, rounds) -> tuple[float, float]:
    picks = [(i * 7919) % size for i in range(n)]

    def raw(conn, i):
        if conn is None:
            return slapd.vmailadmin_connection()
        conn.search(tree.user(f"user{i}@{domain}"), "(objectClass=mailUser)", search_scope=ldap3.BASE,
                    attributes=["*"])
        if len(conn.response) != 1:
            raise RuntimeError("raw search found nothing")

    def api(state, i):
        if state is None:
            return service.login()
        status, body, _ = service.request(state[0], "GET", f"/api/user/user{i}@{domain}", cookie=state[1])
        if status != 200:
            raise RuntimeError(f"GET: {status} {body[:300]!r}")
    return alternating(rounds, picks, clients, raw, api)


def row_export(slapd, service, tree, domain) -> tuple[float, float, int]:
    args = ["ldapsearch", "-x", "-LLL", "-E", "pr=1000/noprompt", "-H", slapd.uri, "-D", slapd.vmailadmin_dn,
            "-w", VMAILADMIN_PASSWORD, "-b", tree.domain(domain), "(objectClass=*)"]
    conn, cookie = service.login()
    start = time.perf_counter()
    status, _, _ = service.request(conn, "GET", f"/api/ldif/domain/{domain}", cookie=cookie, sink=True)
    ours = time.perf_counter() - start
    if status != 200:
        raise SystemExit(f"export: {status}")
    rss = service.worker_peak_rss_kb()
    with open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        subprocess.run(args, stdout=sink, check=True)
        theirs = time.perf_counter() - start
    return theirs, ours, rss


def row_limits(service, rootconn, tree, domain, size, n) -> tuple[float, ...]:
    conn, cookie = service.login()
    dn = tree.domain(domain)

    def creates(tag: str, n: int = n) -> float:
        start = time.perf_counter()
        for i in range(n):
            status, body, _ = service.request(conn, "POST", f"/api/user/{tag}{i}@{domain}",
                                              {"password": PASSWORD, "quota": "10"}, cookie)
            if status != 201:
                raise SystemExit(f"create ({tag}): {status} {body[:300]!r}")
        return (time.perf_counter() - start) / n * 1000
    plain = creates("nolimit")
    out = [plain]
    for tag, limit in (("users", f"numberOfUsers:{size * 10}"), ("quota", f"domainQuota:{size * 1000}")):
        rootconn.modify(dn, {"accountSetting": [(ldap3.MODIFY_ADD, [limit])]})
        if tag == "quota":
            first = creates("quotafirst", 1)
        out.append(creates(tag))
        rootconn.modify(dn, {"accountSetting": [(ldap3.MODIFY_DELETE, [limit])]})
    return (*out, first)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--creates", type=int, default=400)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--limit-creates", type=int, default=40)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5,
                        help="GETs: raw and API runs taken in turn, the median of each")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="gunicorn workers (default: as gunicorn.conf.py starts them on this machine)")
    parser.add_argument("--worker-class", choices=("sync", "shipped"), default="shipped",
                        help="the worker class and threads of gunicorn.conf.py (default), or gunicorn's sync workers")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        slapd = IredmailSlapd(folder / "slapd", suffix=SUFFIX, root_password="secret")
        slapd.start()
        service = None
        try:
            raw = settings_for(slapd, folder)
            settings = Settings.from_mapping(raw)
            tree = tree_of(settings)
            init_tree(Directory(slapd.uri, slapd.root_dn, slapd.root_password), tree)
            slapd.add_service_accounts()
            IredadminDB(make_engine(settings.sql_iredadmin_url)).create_tables()
            root_settings = Settings.from_mapping(dict(raw, ldap_bind_dn=slapd.root_dn, ldap_bind_password="secret"))
            domains = populate(slapd, root_settings, args.sizes, folder)
            ini = folder / "iredldap.ini"
            ini.write_text("[iredldap]\n" + "".join(f"{k} = {v}\n" for k, v in raw.items()))
            rootconn = slapd.connection()
            directory = Directory(slapd.uri, slapd.root_dn, slapd.root_password)
            for size in args.sizes:
                domain = domains[size]
                rootconn.modify(tree.domain(domain), {"domainCurrentUserNumber": [(ldap3.MODIFY_REPLACE, [str(size)])]})
                template = directory.get(tree.user(f"user0@{domain}"))
                assert template is not None
                service = Service(ini, args.workers, args.worker_class)
                theirs, ours, rss = row_export(slapd, service, tree, domain)
                raw_add, api_add = row_create(slapd, service, tree, domain, template, args.creates, args.clients,
                                              "c")
                raw_get, api_get = row_get(slapd, service, tree, domain, size, args.gets, args.clients,
                                            args.rounds)
                plain_ms, users_ms, quota_ms, first_quota_ms = row_limits(service, rootconn, tree, domain, size,
                                                                          args.limit_creates)
                service.stop()
                service = None
                results.append((size, raw_add, api_add, raw_get, api_get, theirs, ours, rss, plain_ms, users_ms,
                                quota_ms, first_quota_ms))
            rootconn.unbind()
            directory.close()
        finally:
            if service is not None:
                service.stop()
            slapd.stop()

    print(f"slapd as iRedMail's (indexes, ACLs), bound as cn=vmailadmin; gunicorn {args.workers} {args.worker_class} workers, "
          f"{args.clients} clients")
    print(f"{'users':>6}  {'work':<34} {'iredldap':>12} {'directory':>12} {'ratio':>7}")
    for size, raw_add, api_add, raw_get, api_get, theirs, ours, rss, plain_ms, users_ms, quota_ms, first_ms in results:
        print(f"{size:>6}  {'create a user (/s)':<34} {api_add:>12.1f} {raw_add:>12.1f} {api_add / raw_add:>7.2f}")
        print(f"{size:>6}  {'GET a user (/s)':<34} {api_get:>12.1f} {raw_get:>12.1f} {api_get / raw_get:>7.2f}")
        print(f"{size:>6}  {'LDIF export of the domain (s)':<34} {ours:>12.2f} {theirs:>12.2f} "
              f"{ours / theirs:>6.1f}x")
        print(f"{size:>6}  {'create, numberOfUsers (ms, vs none)':<34} {users_ms:>12.1f} {plain_ms:>12.1f} "
              f"{users_ms / plain_ms:>6.2f}x")
        print(f"{size:>6}  {'create, domainQuota (ms, vs none)':<34} {quota_ms:>12.1f} {plain_ms:>12.1f} "
              f"{quota_ms / plain_ms:>6.2f}x")
        print(f"{size:>6}  {'  its first, sums the quotas once':<34} {first_ms:>12.1f} {plain_ms:>12.1f} "
              f"{first_ms / plain_ms:>6.2f}x")
        print(f"{size:>6}  {'export: serving worker peak RSS':<34} {rss / 1024:>10.1f}MB")


if __name__ == "__main__":
    main()
