"""Benchmark: GET /api/ldif/domain/<domain> against `ldapsearch -LLL` of the same subtree.

    .venv/bin/python bench/ldif.py [--sizes 10000 50000] [--repeat 3]

One run, one private slapd (in a temporary folder) holding one domain per
size, the users written with slapadd (the API would take far too long).
For each size:
  * `ldapsearch -LLL` of the domain's subtree, output to /dev/null (best of
    --repeat, after one warm-up run);
  * the export endpoint, in a child process: the WSGI app of this checkout,
    logged in as a global admin, its response consumed chunk by chunk into
    /dev/null (best of --repeat, after one warm-up run), then once more under
    tracemalloc for the peak of Python's own allocations;
  * the peak RSS of that child (os.wait4), and how much it grew while
    exporting.
Prints the time ratio to ldapsearch and the memory figures of every size:
with streaming they do not depend on the size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iredldap.model import passwords  # noqa: E402
from iredldap.web.app import Backends, create_app, tree_of  # noqa: E402
from iredldap.config import Settings  # noqa: E402
from iredldap.db.engine import make_engine  # noqa: E402
from iredldap.db.iredadmin import IredadminDB  # noqa: E402
from iredldap.directory.admins import AdminStore  # noqa: E402
from iredldap.directory.base import init_tree  # noqa: E402
from iredldap.directory.connection import BASE, Directory  # noqa: E402
from iredldap.directory.domains import DomainStore  # noqa: E402
from iredldap.directory.export import render  # noqa: E402
from iredldap.directory.localslapd import SLAPADD, LocalSlapd  # noqa: E402
from iredldap.directory.users import UserStore  # noqa: E402

SUFFIX = "dc=example,dc=com"
ADMIN, ADMIN_PW = "root@admins.test", "R00t#bench"


def settings_for(uri: str, folder: Path) -> Settings:
    return Settings.from_mapping({
        "ldap_uri": uri, "ldap_bind_dn": f"cn=Manager,{SUFFIX}", "ldap_bind_password": "secret",
        "ldap_suffix": SUFFIX, "secret_key": "bench-secret-key-0123456789",
        "sql_iredadmin_url": f"sqlite:///{folder / 'iredadmin.sqlite'}",
        "sql_amavisd_url": f"sqlite:///{folder / 'amavisd.sqlite'}",
        "sql_iredapd_url": f"sqlite:///{folder / 'iredapd.sqlite'}",
    })


# -- the child: one export through the WSGI app ---------------------------------------

def child(uri: str, folder: str, domain: str, repeat: int) -> None:
    import falcon.testing

    from tests.support import ApiClient

    settings = settings_for(uri, Path(folder))
    db = IredadminDB(make_engine(settings.sql_iredadmin_url))
    app = create_app(settings, Backends(Directory(uri, settings.ldap_bind_dn, settings.ldap_bind_password), db))
    client = ApiClient(app, settings)
    client.login(ADMIN, ADMIN_PW)
    environ_args = {"path": f"/api/ldif/domain/{domain}",
                    "headers": {"Cookie": f"{settings.session_cookie_name}={client.cookie}"}}

    def export() -> tuple[int, int]:
        size = entries = 0
        with open(os.devnull, "wb") as sink:
            for chunk in app(falcon.testing.create_environ(**environ_args), lambda *a: None):
                sink.write(chunk)
                size += len(chunk)
                entries += len(re.findall(rb"(?m)^dn::? ", chunk))
        return size, entries

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    export()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        size, entries = export()
        times.append(time.perf_counter() - start)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    export()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"seconds": min(times), "bytes": size, "entries": entries, "rss_before_kb": rss_before,
                      "rss_after_kb": rss_after, "traced_peak": traced_peak}))


# -- the parent ------------------------------------------------------------------------

def populate(slapd: LocalSlapd, settings: Settings, sizes: list[int], folder: Path) -> dict[int, str]:
    """One domain per size, through the stores; the users through slapadd."""
    directory = Directory(slapd.uri, slapd.root_dn, slapd.root_password)
    tree = tree_of(settings)
    init_tree(directory, tree)
    domains = DomainStore(directory, tree, default_transport="dovecot")
    users = UserStore(directory, tree, settings)
    AdminStore(directory, tree).create_standalone(ADMIN, password_hash=passwords.hash_password(ADMIN_PW, "SSHA"),
                                                  is_global=True)
    hashed = passwords.hash_password("Us3r#bench", "SSHA512")
    names = {}
    data = folder / "users.ldif"
    out = open(data, "w")
    for size in sizes:
        domain = f"bench{size}.test"
        names[size] = domain
        domains.create(domain, {"name": f"Bench {size}"})
        users.create(f"template@{domain}", {"name": "Jürgen Müller"}, password_hash=hashed)
        template = next(directory.paged_search(tree.user(f"template@{domain}"), "(objectClass=*)", scope=BASE,
                                               raw=True))
        directory.delete(template.dn)
        for i in range(size):
            mail = f"user{i}@{domain}"
            attrs = dict(template.attrs)
            attrs.update(mail=[mail.encode()], uid=[f"user{i}".encode()], sn=[f"user{i}".encode()],
                         cn=[f"Jürgen Müller {i}".encode()],
                         homeDirectory=[f"/var/vmail/vmail1/{domain}/user{i}/".encode()])
            template.attrs = attrs
            template.dn = tree.user(mail)
            out.write(render(template, passwords=True))
    out.close()
    directory.close()
    slapd.stop()
    start = time.perf_counter()
    subprocess.run([str(SLAPADD), "-q", "-f", str(slapd.conf_path), "-l", str(data)], check=True,
                   capture_output=True)
    print(f"slapadd of {sum(sizes)} users: {time.perf_counter() - start:.1f} s", flush=True)
    data.unlink()
    slapd.start()
    return names


def ldapsearch(slapd: LocalSlapd, base: str, output: str = os.devnull) -> float:
    args = ["ldapsearch", "-LLL", "-x", "-H", slapd.uri, "-D", slapd.root_dn, "-w", slapd.root_password,
            "-b", base, "(objectClass=*)"]
    with open(output, "wb") as sink:
        start = time.perf_counter()
        subprocess.run(args, stdout=sink, check=True)
        return time.perf_counter() - start


def export_in_child(slapd: LocalSlapd, folder: Path, domain: str, repeat: int) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", slapd.uri, str(folder), domain, str(repeat)],
                            stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the export child failed ({proc.returncode})")
    result = json.loads(out)
    result["peak_rss_kb"] = usage.ru_maxrss
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        slapd = LocalSlapd(folder / "slapd", suffix=SUFFIX, root_password="secret")
        slapd.start()
        try:
            settings = settings_for(slapd.uri, folder)
            IredadminDB(make_engine(settings.sql_iredadmin_url)).create_tables()
            domains = populate(slapd, settings, args.sizes, folder)
            rows = []
            for size in args.sizes:
                base = tree_of(settings).domain(domains[size])
                ldapsearch(slapd, base, str(folder / "ldapsearch.ldif"))  # warm-up, and its size
                ldapsearch_bytes = (folder / "ldapsearch.ldif").stat().st_size
                best = min(ldapsearch(slapd, base) for _ in range(args.repeat))
                ours = export_in_child(slapd, folder, domains[size], args.repeat)
                if ours["entries"] != size + 5:  # the users, the domain and its four containers
                    raise SystemExit(f"export of {domains[size]} has {ours['entries']} entries, not {size + 5}")
                rows.append((size, best, ldapsearch_bytes, ours))
        finally:
            slapd.stop()

    print(f"{'users':>7} {'ldapsearch':>11} {'export':>9} {'ratio':>6} {'MB/s':>6} {'peak RSS':>9} "
          f"{'RSS growth':>10} {'py peak':>8}")
    for size, best, ldapsearch_bytes, ours in rows:
        print(f"{size:>7} {best:>10.2f}s {ours['seconds']:>8.2f}s {ours['seconds'] / best:>6.2f} "
              f"{ours['bytes'] / ours['seconds'] / 1e6:>6.1f} {ours['peak_rss_kb'] / 1024:>7.1f}MB "
              f"{(ours['rss_after_kb'] - ours['rss_before_kb']) / 1024:>8.1f}MB "
              f"{ours['traced_peak'] / 1e6:>6.2f}MB")
    print("ratio: export time / ldapsearch -LLL time (same subtree, both to /dev/null, best of "
          f"{args.repeat}); RSS growth: while exporting, after start-up and login; py peak: tracemalloc.")
    print("output sizes (bytes): " + ", ".join(f"{size}: ldapsearch {lb}, export {o['bytes']}"
                                               for size, _, lb, o in rows))


if __name__ == "__main__":
    main()
