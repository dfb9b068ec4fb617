"""The `iredldap` command.

    iredldap serve          run the API under gunicorn
    iredldap init           create the base of the tree (idempotent)
    iredldap init-sql       create iRedAdmin's tables in the SQL database
    iredldap create-admin   create a global admin
    iredldap demo           a private slapd, a demo domain, an admin, and the API
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click

from . import passwords, validators
from .config import Settings
from .errors import AlreadyExists, ConfigError, IredldapError


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
def main() -> None:
    """LDAP-native REST API for iRedMail-style mail servers."""


@main.command()
@click.option("--bind", "bind", default="127.0.0.1:8080", show_default=True, help="Address:port to listen on.")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--config", "gunicorn_config", type=click.Path(exists=True, dir_okay=False),
              help="A gunicorn configuration file (e.g. gunicorn.conf.py).")
def serve(bind: str, workers: int, gunicorn_config: str | None) -> None:
    """Serve the API with gunicorn."""
    _settings()  # refuse to start on a bad configuration, with one clear line
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):
        def load_config(self) -> None:
            if gunicorn_config:
                self.load_config_from_file(gunicorn_config)
            self.cfg.set("bind", [bind])
            self.cfg.set("workers", workers)

        def load(self):
            from .wsgi import application
            return application

    _Server().run()


@main.command()
def init() -> None:
    """Create the suffix entry, o=domains and o=domainAdmins where missing."""
    from .app import connect, tree_of
    from .directory.base import init_tree

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
    from .app import connect

    try:
        backends = connect(_settings())
        backends.iredadmin.create_tables()
        click.echo("iredadmin tables ready")
        for name, db in (("amavisd", backends.amavisd), ("iredapd", backends.iredapd)):
            if db.source.url.get_backend_name() == "sqlite":
                db.create_tables()
                click.echo(f"{name} tables ready")
            else:
                click.echo(f"{name}: using the tables of {db.source.url.render_as_string(hide_password=True)}")
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
    from .app import connect, tree_of
    from .directory.admins import AdminStore
    from .directory.users import UserStore

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
            UserStore(backends.directory, tree, settings).create_global_admin(mail, password_hash=hashed, name=name)
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
    from .app import connect, tree_of
    from .directory.base import init_tree
    from .directory.domains import DomainStore
    from .directory.localslapd import LocalSlapd
    from .directory.users import UserStore

    folder = Path(data_dir).resolve()
    if stop:
        LocalSlapd(folder / "slapd", port=ldap_port).stop()
        click.echo("demo slapd stopped")
        return
    folder.mkdir(parents=True, exist_ok=True)
    secrets_file = folder / "demo-secrets"
    if secrets_file.exists():
        root_pw, admin_pw, secret_key = secrets_file.read_text().split()
    else:
        root_pw, admin_pw, secret_key = (secrets.token_urlsafe(12), secrets.token_urlsafe(9) + "#1a",
                                         secrets.token_urlsafe(32))
        secrets_file.write_text(f"{root_pw}\n{admin_pw}\n{secret_key}\n")
        secrets_file.chmod(0o600)
    suffix = "dc=example,dc=com"
    slapd = LocalSlapd(folder / "slapd", port=ldap_port, suffix=suffix, root_password=root_pw)
    slapd.start()
    config = folder / "iredldap.ini"
    config.write_text(
        "[iredldap]\n"
        f"ldap_uri = {slapd.uri}\n"
        f"ldap_bind_dn = {slapd.root_dn}\n"
        f"ldap_bind_password = {root_pw}\n"
        f"ldap_suffix = {suffix}\n"
        f"sql_iredadmin_url = sqlite:///{folder / 'iredadmin.sqlite'}\n"
        f"sql_amavisd_url = sqlite:///{folder / 'amavisd.sqlite'}\n"
        f"sql_iredapd_url = sqlite:///{folder / 'iredapd.sqlite'}\n"
        f"secret_key = {secret_key}\n"
        f"storage_base_directory = {folder / 'vmail'}\n")
    try:
        settings = Settings.from_sources(path=str(config))
    except ConfigError as exc:
        _fail(exc)
    backends = connect(settings)
    tree = tree_of(settings)
    init_tree(backends.directory, tree)
    for db in (backends.iredadmin, backends.amavisd, backends.iredapd):
        db.create_tables()
    domains = DomainStore(backends.directory, tree, default_transport=settings.default_mta_transport)
    if domains.owner_of_name(domain) is None:
        domains.create(domain, {"name": "Demo domain"})
    admin = f"postmaster@{domain}"
    users = UserStore(backends.directory, tree, settings)
    try:
        users.create_global_admin(admin, password_hash=passwords.hash_password(admin_pw,
                                                                                settings.default_password_scheme))
    except AlreadyExists:
        pass
    click.echo(f"slapd:     {slapd.uri}  (bind {slapd.root_dn}; data in {slapd.data_dir})")
    click.echo(f"settings:  {config}")
    click.echo(f"API:       http://127.0.0.1:{port}/api/")
    click.echo(f"login:     username={admin} password={admin_pw}")
    click.echo(f"try:       curl -c /tmp/c -d username={admin} -d password='{admin_pw}' "
               f"http://127.0.0.1:{port}/api/login && curl -b /tmp/c http://127.0.0.1:{port}/api/domains")
    if no_serve:
        return
    os.environ["IREDLDAP_CONFIG"] = str(config)  # for the gunicorn workers
    ctx = click.get_current_context()
    ctx.invoke(serve, bind=f"127.0.0.1:{port}", workers=2, gunicorn_config=None)


if __name__ == "__main__":
    main()
