"""The `iredldap` command.

    iredldap serve          run the API under gunicorn
    iredldap init           create the base of the tree (idempotent)
    iredldap init-sql       create iRedAdmin's tables in the SQL database
    iredldap create-admin   create a global admin
    iredldap demo           a private slapd, a demo domain, an admin, and the API
    iredldap export         LDIF of a domain, an account, or everything
    iredldap import         load an LDIF file (checked first; parents first; resumable)
    iredldap token          API tokens: create, list, revoke
    iredldap check          find (and with --repair fix) what an outage or an import left wrong
    iredldap config-from-iredadmin   an iredldap INI from iRedAdmin(-Pro)'s settings.py
"""

from __future__ import annotations

import os
import secrets
import sys
from contextlib import nullcontext
from pathlib import Path

import click

from iredldap.model import passwords, validators
from iredldap.config import Settings
from iredldap.errors import AlreadyExists, ConfigError, InvalidInput, IredldapError, NoSuchAccount
from iredldap.private_files import make_private_dir, open_private, write_private


def _settings() -> Settings:
    try:
        return Settings.from_sources()
    except ConfigError as exc:
        click.echo(f"iredldap: configuration error: {exc.reason}", err=True)
        sys.exit(2)


def _fail(exc: IredldapError) -> None:
    click.echo(f"iredldap: {exc.code}: {exc.reason}", err=True)
    sys.exit(1)


@click.group()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="The settings file (INI, section [iredldap]). Default: $IREDLDAP_CONFIG, "
                   "else /etc/iredldap/iredldap.ini.")
def main(config_path: str | None) -> None:
    """LDAP-native REST API for iRedMail-style mail servers."""
    if config_path:
        # Through the environment, so gunicorn's workers read the same file.
        os.environ["IREDLDAP_CONFIG"] = str(Path(config_path).resolve())


@main.command()
@click.option("--bind", "bind", default="127.0.0.1:8080", show_default=True, help="Address:port to listen on.")
@click.option("--workers", type=int, default=None,
              help="gunicorn worker processes [default: two per core, 2 to 8].")
@click.option("--config", "gunicorn_config", type=click.Path(exists=True, dir_okay=False),
              help="A gunicorn configuration file (e.g. gunicorn.conf.py).")
@click.option("--pidfile", default=None, hidden=True, help="Where gunicorn writes its pid (the demo's --stop reads it).")
def serve(bind: str, workers: int | None, gunicorn_config: str | None, pidfile: str | None = None) -> None:
    """Serve the API with gunicorn."""
    from iredldap.startup import check_or_exit

    # Refuse to start on a bad configuration, a missing database driver or
    # own tables that cannot be made: one clear line, before any worker.
    check_or_exit()
    from gunicorn.app.base import BaseApplication

    from iredldap.gunicorn_worker import DEFAULT_THREADS, default_workers

    class _Server(BaseApplication):
        def load_config(self) -> None:
            # Without a file, the worker gunicorn.conf.py ships (threads: a
            # stalled client holds a thread, not a worker); a file may say otherwise.
            self.cfg.set("worker_class", "iredldap.gunicorn_worker.ThreadWorker")
            self.cfg.set("threads", DEFAULT_THREADS)
            self.cfg.set("keepalive", 5)
            if gunicorn_config:
                self.load_config_from_file(gunicorn_config)
            self.cfg.set("bind", [bind])
            self.cfg.set("workers", workers or default_workers())
            if pidfile:
                self.cfg.set("pidfile", pidfile)

        def load(self):
            from iredldap.wsgi import application
            return application

    _Server().run()


@main.command()
def init() -> None:
    """Create the suffix entry, o=domains and o=domainAdmins where missing."""
    from iredldap.backends import connect, tree_of
    from iredldap.directory.base import init_tree

    settings = _settings()
    try:
        created = init_tree(connect(settings).directory, tree_of(settings))
    except IredldapError as exc:
        _fail(exc)
    for dn in created:
        click.echo(f"created {dn}")
    if not created:
        click.echo("base tree already present")


@main.command("init-sql")
def init_sql() -> None:
    """Create iRedAdmin's tables (sessions, log, deleted_mailboxes ...) where missing.

    Amavisd's and iRedAPD's tables are created only in embedded SQLite
    databases; on MariaDB/PostgreSQL those of the iRedMail server are used
    as they are.
    """
    from iredldap.backends import connect

    try:
        settings = _settings()
        backends = connect(settings)
        backends.iredadmin.create_tables()
        click.echo("iredadmin tables ready")
        amavisd, iredapd = backends.policy_databases(settings)
        for name, db in (("amavisd", amavisd), ("iredapd", iredapd)):
            if db.database.url.get_backend_name() == "sqlite":
                db.create_tables()
                click.echo(f"{name} tables ready")
            else:
                click.echo(f"{name}: using the tables of {db.database.url.render_as_string(hide_password=True)}")
    except IredldapError as exc:
        _fail(exc)


@main.command("create-admin")
@click.argument("mail")
@click.option("--password", envvar="IREDLDAP_ADMIN_PASSWORD", help="Plain password (or IREDLDAP_ADMIN_PASSWORD).")
@click.option("--standalone/--mail-user", default=False, show_default=True,
              help="A mailAdmin under o=domainAdmins, or a mail user with domainGlobalAdmin: yes "
                   "(its domain must exist).")
@click.option("--name", default="", help="Display name.")
@click.option("--exist-ok", is_flag=True, help="Succeed quietly if the admin already exists.")
def create_admin(mail: str, password: str | None, standalone: bool, name: str, exist_ok: bool) -> None:
    """Create a global admin, as iRedMail's installer makes the postmaster."""
    from iredldap.backends import connect, tree_of
    from iredldap.directory.admins import AdminStore
    from iredldap.directory.users import UserStore

    settings = _settings()
    try:
        mail = validators.email(mail)
    except IredldapError as exc:
        _fail(exc)
    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    hashed = passwords.hash_password(password, settings.default_password_scheme)
    backends = connect(settings)
    tree = tree_of(settings)
    try:
        if standalone:
            AdminStore(backends.directory, tree).create_standalone(mail, password_hash=hashed, name=name,
                                                                   is_global=True)
        else:
            UserStore(backends.directory, tree, settings, kept_maildirs=backends.iredadmin.kept_maildirs) \
                .create_global_admin(mail, password_hash=hashed, name=name)
    except AlreadyExists:
        if exist_ok:
            click.echo(f"{mail} already exists")
            return
        _fail(AlreadyExists(f"{mail} already exists"))
    except IredldapError as exc:
        _fail(exc)
    click.echo(f"created global admin {mail}")


@main.command()
@click.option("--dir", "data_dir", default="var/demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the private slapd, the SQLite database and the settings.")
@click.option("--ldap-port", default=3890, show_default=True, help="Port of the private slapd (127.0.0.1).")
@click.option("--port", default=8080, show_default=True, help="Port of the API (127.0.0.1).")
@click.option("--domain", default="example.com", show_default=True, help="The demo domain.")
@click.option("--no-serve", is_flag=True, help="Prepare everything, print the login, and stop.")
@click.option("--stop", is_flag=True, help="Stop the demo's private slapd and exit.")
def demo(data_dir: str, ldap_port: int, port: int, domain: str, no_serve: bool, stop: bool) -> None:
    """Start a private slapd, load a demo domain and admin, and serve the API.

    Running it again reuses what is there: nothing is duplicated.
    """
    from iredldap.backends import connect, tree_of
    from iredldap.directory.base import init_tree
    from iredldap.directory.domains import DomainStore
    from iredldap.directory.localslapd import LocalSlapd
    from iredldap.directory.users import UserStore

    folder = Path(data_dir).resolve()
    api_pid_file = folder / "api.pid"
    if stop:
        _stop_demo_api(api_pid_file)
        slapd = LocalSlapd(folder / "slapd", port=ldap_port)
        slapd_pid = slapd.pid()
        slapd.stop()
        click.echo(f"stopped the demo slapd (pid {slapd_pid}; data kept in {folder / 'slapd'})" if slapd_pid
                   else "the demo slapd was not running")
        return
    if not no_serve:
        # Before anything is printed or started: a busy port would otherwise
        # show the success banner and then gunicorn's errors.
        _refuse_busy_port(port, api_pid_file)
    # Bind password, SECRET_KEY, databases, slapd: owner only, from creation on.
    make_private_dir(folder)
    secrets_file = folder / "demo-secrets"
    if secrets_file.exists():
        root_pw, admin_pw, secret_key = secrets_file.read_text().split()
    else:
        root_pw, admin_pw, secret_key = (secrets.token_urlsafe(12), secrets.token_urlsafe(9) + "#1a",
                                         secrets.token_urlsafe(32))
        write_private(secrets_file, f"{root_pw}\n{admin_pw}\n{secret_key}\n")
    suffix = "dc=example,dc=com"
    slapd = LocalSlapd(folder / "slapd", port=ldap_port, suffix=suffix, root_password=root_pw)
    slapd.start()
    config = folder / "iredldap.ini"
    write_private(
        config,
        "[iredldap]\n"
        f"ldap_uri = {slapd.uri}\n"
        f"ldap_bind_dn = {slapd.root_dn}\n"
        f"ldap_bind_password = {root_pw}\n"
        f"ldap_suffix = {suffix}\n"
        f"sql_iredadmin_url = sqlite:///{folder / 'iredadmin.sqlite'}\n"
        f"sql_amavisd_url = sqlite:///{folder / 'amavisd.sqlite'}\n"
        f"sql_iredapd_url = sqlite:///{folder / 'iredapd.sqlite'}\n"
        f"secret_key = {secret_key}\n"
        f"storage_base_directory = {folder / 'vmail'}\n"
        # Subscribable lists on a private mlmmj spool (Debian's mlmmj for its texts and tools).
        "mlmmj_backend = local\n"
        f"mlmmj_spool_dir = {folder / 'mlmmj'}\n"
        f"mlmmj_archive_dir = {folder / 'mlmmj-archive'}\n")
    for spool in ("mlmmj", "mlmmj-archive"):
        make_private_dir(folder / spool)
    try:
        settings = Settings.from_sources(path=str(config))
    except ConfigError as exc:
        _fail(exc)
    backends = connect(settings)
    tree = tree_of(settings)
    init_tree(backends.directory, tree)
    for db in (backends.iredadmin, *backends.policy_databases(settings)):
        db.create_tables()
    domains = DomainStore(backends.directory, tree, default_transport=settings.default_mta_transport)
    if domains.owner_of_name(domain) is None:
        domains.create(domain, {"name": "Demo domain"})
    admin = f"postmaster@{domain}"
    users = UserStore(backends.directory, tree, settings, kept_maildirs=backends.iredadmin.kept_maildirs)
    try:
        users.create_global_admin(admin, password_hash=passwords.hash_password(admin_pw,
                                                                                settings.default_password_scheme))
    except AlreadyExists:
        pass
    click.echo(f"slapd:     {slapd.uri}  (bind {slapd.root_dn}; data in {slapd.data_dir})")
    click.echo(f"settings:  {config}")
    click.echo(f"           export IREDLDAP_CONFIG={config}   # for iredldap token/export/import ...")
    click.echo(f"API:       http://127.0.0.1:{port}/api/  (docs: http://127.0.0.1:{port}/api/docs)")
    click.echo(f"login:     username={admin} password={admin_pw}")
    click.echo(f"lists:     POST /api/ml/news@{domain} makes an mlmmj list in {folder / 'mlmmj'}")
    click.echo(f"try:       curl -c /tmp/c -d username={admin} -d password='{admin_pw}' "
               f"http://127.0.0.1:{port}/api/login && curl -b /tmp/c http://127.0.0.1:{port}/api/domains")
    if no_serve:
        return
    os.environ["IREDLDAP_CONFIG"] = str(config)  # for the gunicorn workers
    ctx = click.get_current_context()
    click.echo("stop:      scripts/demo --stop  (or Ctrl-C)")
    ctx.invoke(serve, bind=f"127.0.0.1:{port}", workers=None, gunicorn_config=None,
               pidfile=str(api_pid_file))


def _running_demo_api(pid_file: Path) -> int | None:
    """The pid of the demo's gunicorn, if its pid file names a live one."""
    try:
        pid = int(pid_file.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None  # exited, not yet reaped by its parent
    except (OSError, ValueError, IndexError):
        return None
    # Guard against a recycled pid: it must still be our server.
    return pid if ("iredldap" in argv or "gunicorn" in argv) else None


def _refuse_busy_port(port: int, pid_file: Path) -> None:
    import socket

    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        pid = _running_demo_api(pid_file)
        why = (f"the demo API is already running there (pid {pid}); `scripts/demo --stop` stops it" if pid
               else "something else listens there; choose another with --port")
        click.echo(f"iredldap: port {port} on 127.0.0.1 is in use: {why}", err=True)
        sys.exit(1)
    finally:
        probe.close()


def _stop_demo_api(pid_file: Path) -> None:
    import signal
    import time

    pid = _running_demo_api(pid_file)
    if pid is None:
        click.echo("the demo API was not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _running_demo_api(pid_file) == pid:
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    click.echo(f"stopped the demo API (gunicorn pid {pid})")


# -- LDIF export and import ---------------------------------------------------------


@main.command("export")
@click.argument("target", required=False)
@click.option("-o", "--output", default="-", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="The file to write (written beside it first, renamed when complete); - is standard output.")
@click.option("--no-passwords", is_flag=True,
              help="Leave password hashes out (an import of such a file cannot restore logins).")
def export_ldif(target: str | None, output: str, no_passwords: bool) -> None:
    """Export TARGET as LDIF.

    TARGET is a domain (the domain and every entry under it), @domain (its
    catch-all), or an address (a user, mailing list, alias or admin).
    Without TARGET: every entry under the domains and admins containers.
    Password hashes are included unless LDIF_EXPORT_PASSWORDS is `never` or
    --no-passwords is given.
    """
    from iredldap.backends import connect, tree_of
    from iredldap.directory.export import Exporter

    settings = _settings()
    exporter = Exporter(connect(settings).directory, tree_of(settings))
    try:
        if target is None:
            plan = exporter.plan_all()
        elif target.startswith("@"):
            plan = exporter.plan("catchall", validators.domain_name(target[1:]))
        elif "@" in target:
            plan = exporter.plan_for(validators.email(target))
        else:
            plan = exporter.plan("domain", validators.domain_name(target))
    except IredldapError as exc:
        _fail(exc)
    passwords = settings.ldif_export_passwords != "never" and not no_passwords
    err = sys.stderr
    partial = None if output == "-" else Path(output + ".part")
    count = 0
    try:
        # On a terminal the entries are counted first (names only), for the bar.
        total = exporter.count(plan) if err.isatty() else 0
        with click.progressbar(length=total, label=f"exporting {plan.title}", show_pos=True, file=err,
                               update_min_steps=max(1, total // 200)) as bar:
            def counted() -> None:
                nonlocal count
                count += 1
                bar.update(1)

            # With password hashes in it: owner only.
            with open_private(partial) if partial else nullcontext(sys.stdout.buffer) as out:
                for chunk in exporter.stream(plan, passwords=passwords, on_entry=counted):
                    out.write(chunk)
                out.flush()
    except (IredldapError, KeyboardInterrupt) as exc:
        if partial:
            partial.unlink(missing_ok=True)
        if isinstance(exc, KeyboardInterrupt):
            click.echo("iredldap: interrupted" + (f"; {partial} removed" if partial else ""), err=True)
            sys.exit(130)
        _fail(exc)
    if partial:
        os.replace(partial, output)
    click.echo(f"exported {count} entries ({plan.title}) to {'standard output' if partial is None else output}",
               err=True)


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--replace", is_flag=True, help="Make entries that exist equal to the file's (default: skip them).")
@click.option("--check", "check_only", is_flag=True, help="Only check the file; write nothing.")
def import_ldif(file: str, replace: bool, check_only: bool) -> None:
    """Import an LDIF file, such as an export.

    The whole file is checked first (syntax, schema, parents present in the
    file or the directory); if anything is wrong every problem is listed with
    its line number and nothing is written.  Then entries are added parents
    first.  An entry that exists is reported and skipped, or with --replace
    made equal to the file's (keeping its password hash if the file has
    none).  Running it again is safe: an interrupted import finishes the rest.
    """
    import tempfile

    from iredldap.backends import connect, tree_of
    from iredldap.directory.import_ import Importer, ImportFailed, ImportResult, LdifRejected

    settings = _settings()
    path = file
    if file == "-":
        spool = tempfile.NamedTemporaryFile(prefix="iredldap-import-", suffix=".ldif", delete=False)
        with spool:
            spool.write(sys.stdin.buffer.read())
        path = spool.name
        click.get_current_context().call_on_close(lambda: os.unlink(spool.name))
    try:
        importer = Importer(connect(settings).directory, tree_of(settings))
        plan = importer.check(path)
    except LdifRejected as exc:
        for problem in exc.problems:
            click.echo(f"{file}:{problem.line}: {problem.message}", err=True)
        click.echo(f"iredldap: {len(exc.problems)} problem(s) in {file}; nothing was written", err=True)
        sys.exit(1)
    except IredldapError as exc:
        _fail(exc)
    click.echo(f"{file}: {plan.total} entries, checked against {plan.schema_source}")
    if plan.operational_left_out:
        click.echo(f"left out (the server sets them): {', '.join(plan.operational_left_out)}")
    if check_only:
        return
    err = sys.stderr
    on_terminal = err.isatty()
    result = ImportResult()
    held: list[str] = []  # reports held back while the progress bar is drawn

    def summary() -> str:
        text = f"added {result.added}, skipped {result.skipped}, replaced {result.replaced}"
        return text + (f", unchanged {result.unchanged}" if replace else "")

    def flush() -> None:
        for line in held:
            click.echo(line)
        held.clear()

    try:
        with click.progressbar(length=plan.total, label="importing", show_pos=True, file=err,
                               update_min_steps=max(1, plan.total // 200)) as bar:
            def on_record(action: str, record) -> None:
                bar.update(1)
                if action in ("skipped", "replaced"):
                    line = f"{action}: {record.dn} (line {record.line})"
                    line += ": it exists" if action == "skipped" else ""
                    held.append(line) if on_terminal else click.echo(line)

            importer.run(plan, replace=replace, result=result, on_record=on_record)
    except ImportFailed as exc:
        flush()
        click.echo(summary())
        click.echo(f"{file}:{exc.record.line}: {exc.record.dn}: {exc.cause.code}: {exc.cause.reason}", err=True)
        click.echo("iredldap: the directory refused this entry; what came before it is written. "
                   "Fix it and run the same command again.", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        flush()
        click.echo(summary())
        click.echo("iredldap: interrupted; run the same command again to finish", err=True)
        sys.exit(130)
    except IredldapError as exc:
        flush()
        click.echo(summary())
        _fail(exc)
    flush()
    click.echo(summary())


# -- check ---------------------------------------------------------------------------

def checker_of(settings: Settings):
    """The Checker on the configured directory and databases."""
    from iredldap.backends import attach_journal, connect, tree_of
    from iredldap.check import Checker
    from iredldap.db.policy_accounts import PolicyAccounts

    backends = connect(settings)
    tree = tree_of(settings)
    journal = attach_journal(backends, tree)
    return Checker(backends.directory, tree, iredadmin=backends.iredadmin, journal=journal,
                   policies=PolicyAccounts(*backends.policy_databases(settings)),
                   spool=backends.list_spool_of(settings))


@main.command()
@click.argument("domains", nargs=-1)
@click.option("--repair", is_flag=True, help="Fix what is safe to fix; list the rest.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON on stdout.")
def check(domains: tuple[str, ...], repair: bool, as_json: bool) -> None:
    """Look for what an outage, a killed worker or an import left wrong.

    Unfinished multi-entry writes, half-written domains, counters that
    differ from the real count, references to addresses that do not exist,
    addresses that exist twice, Amavisd/iRedAPD rows of accounts that are
    gone, mailboxes deleted without a deleted_mailboxes row.  Only the
    DOMAINs given, or all.  Exit status 0: nothing wrong (or, with --repair,
    all of it fixed); 1: something is wrong.  For cron:
    `iredldap check --repair --json`.
    """
    import json

    from iredldap.check import KINDS

    settings = _settings()
    try:
        names = [validators.domain_name(d, param="domain") for d in domains]
        checker = checker_of(settings)
        err = sys.stderr
        if err.isatty() and not as_json:
            with click.progressbar(length=1, label="checking domains", show_pos=True, file=err) as bar:
                def progress(done: int, total: int) -> None:
                    bar.length = total
                    bar.update(1)
                report = checker.run(names, repair=repair, progress=progress)
        else:
            report = checker.run(names, repair=repair)
    except IredldapError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for kind, title in KINDS.items():
            found = [f for f in report.findings if f.kind == kind]
            if not found:
                continue
            click.echo(f"{title}: {len(found)}")
            for f in found:
                state = " [repaired]" if f.repaired else (" [not repaired]" if repair else "")
                click.echo(f"  {f.dn}: {f.detail}{state}")
        if not report.findings:
            click.echo("nothing wrong")
        elif repair:
            click.echo(f"repaired {len(report.findings) - len(report.remaining)}, left {len(report.remaining)}")
    sys.exit(0 if report.clean else 1)


# -- API tokens ---------------------------------------------------------------------

@main.group()
def token() -> None:
    """API tokens (Authorization: Bearer): create, list, revoke."""


def _token_store(settings: Settings):
    from iredldap.backends import connect
    from iredldap.db.tokens import TokenStore

    backends = connect(settings)
    return backends, TokenStore(backends.iredadmin, settings.secret_key)


def _cli_log(db, event: str, username: str, msg: str) -> None:
    """Token changes made here are in the activity log too (admin `cli:<user>`)."""
    import getpass

    try:
        who = getpass.getuser()
    except Exception:
        who = "?"
    db.add_log(admin=f"cli:{who}", ip="", username=username, event=event, msg=f"[CLI] {msg}")


@token.command("create")
@click.argument("admin")
@click.option("--name", default="", help="What the token is for.")
@click.option("--read-only", is_flag=True, help="Only GET requests.")
@click.option("--domains", default=None, help="Only these domains (comma-separated).")
@click.option("--expires", default="", help="ISO 8601 date or date-time (UTC unless an offset is given).")
@click.option("--days", type=click.IntRange(1, 36500), default=None, help="Expires in this many days.")
def token_create(admin: str, name: str, read_only: bool, domains: str | None, expires: str,
                 days: int | None) -> None:
    """Create a token for ADMIN (an active admin) and print it (shown once)."""
    from datetime import timedelta

    from iredldap.backends import tree_of
    from iredldap.directory.admins import AdminStore
    from iredldap.db.tokens import parse_time

    settings = _settings()
    try:
        admin = validators.email(admin, param="admin")
        domain_list = [validators.domain_name(d.strip(), param="domains")
                       for d in (domains or "").split(",") if d.strip()]
        if domains is not None and not domain_list:
            # Fail closed, as the API does: no domains is not "every domain".
            raise InvalidInput("--domains names no domain; leave it out for a token not limited to domains")
        if expires and days:
            raise InvalidInput("give --expires or --days, not both")
        backends, store = _token_store(settings)
        when = parse_time(expires, param="expires") if expires else (
            backends.iredadmin.now() + timedelta(days=days) if days else None)
        if AdminStore(backends.directory, tree_of(settings)).principal_for(admin) is None:
            raise InvalidInput(f"{admin} is not an active admin")
        token_id, value = store.create(admin=admin, name=name, read_only=read_only, domains=domain_list or None,
                                       expires=when)
        _cli_log(backends.iredadmin, "grant", admin, f"Create API token {token_id} for {admin}")
    except IredldapError as exc:
        _fail(exc)
    click.echo(f"id: {token_id}", err=True)
    click.echo("token (shown only now; send it as 'Authorization: Bearer <token>'):", err=True)
    click.echo(value)


@token.command("list")
@click.option("--admin", default=None, help="Only the tokens of this admin.")
@click.option("--all", "show_all", is_flag=True, help="Revoked and expired tokens too.")
def token_list(admin: str | None, show_all: bool) -> None:
    """List tokens (never the tokens themselves)."""
    settings = _settings()
    try:
        _, store = _token_store(settings)
        rows = store.list(admin=admin.lower() if admin else None)
    except IredldapError as exc:
        _fail(exc)
    rows = [r for r in rows if show_all or r["status"] == "active"]
    click.echo(f"{'ID':>5}  {'STATUS':8}  {'ADMIN':30}  {'SCOPE':24}  {'EXPIRES':25}  NAME")
    for r in rows:
        scope = ("read-only " if r["read_only"] else "") + (",".join(r["domains"]) if r["domains"] else "all")
        click.echo(f"{r['id']:>5}  {r['status']:8}  {r['admin']:30}  {scope:24}  {r['expires'] or 'never':25}  "
                   f"{r['name']}")


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token at once."""
    settings = _settings()
    try:
        backends, store = _token_store(settings)
        found = store.get(token_id)
        if found is None:
            raise NoSuchAccount(f"no API token {token_id}")
        store.revoke(token_id)
        _cli_log(backends.iredadmin, "revoke", found["admin"], f"Revoke API token {token_id} of {found['admin']}")
    except IredldapError as exc:
        _fail(exc)
    click.echo(f"revoked token {token_id}")



# -- moving from iRedAdmin-Pro --------------------------------------------------------

@main.command("config-from-iredadmin")
@click.argument("settings_py", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default="-", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="The INI file to write (mode 0600: it holds passwords); - is standard output.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def config_from_iredadmin(settings_py: str, output: str, force: bool) -> None:
    """Write an iredldap INI from iRedAdmin(-Pro)'s SETTINGS_PY.

    Reads (never runs) the file: the LDAP URI, bind DN and password, base
    DNs, the iredadmin, amavisd and iredapd databases, the API switches and
    RESTFUL_API_CLIENTS, mlmmjadmin_api_auth_token and the password scheme.
    What it could not map, and what it assumed, is listed on standard error.
    """
    from iredldap.iredadmin_settings import convert

    try:
        conv = convert(Path(settings_py).read_text(encoding="utf-8"), settings_py)
    except ConfigError as exc:
        click.echo(f"iredldap: {exc.reason}", err=True)
        sys.exit(2)
    text = conv.ini()
    if output == "-":
        click.echo(text, nl=False)
    else:
        target = Path(output)
        if target.exists() and not force:
            click.echo(f"iredldap: {output} exists (use --force to overwrite)", err=True)
            sys.exit(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        # 0600 before the secrets go in, also over an existing file; never through a link.
        try:
            write_private(target, text)
        except OSError as exc:
            click.echo(f"iredldap: cannot write {output}: {exc.strerror}", err=True)
            sys.exit(1)
        click.echo(f"wrote {output} ({len(conv.values)} settings)", err=True)
    for note in conv.notes:
        click.echo(f"note: {note}", err=True)
    for item in conv.unmapped:
        click.echo(f"not mapped: {item}", err=True)


if __name__ == "__main__":
    main()
