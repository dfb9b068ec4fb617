"""A private OpenLDAP server for the demo and the tests.

Everything lives in one data folder: the generated configuration, the mdb
database, the pid file, the log and the chosen port.  Nothing system-wide is
touched, so several servers (one per folder) can run side by side.

slapd is run in the foreground (``-d none``) rather than letting it
daemonize, because that is the only way to get its startup errors:
a daemonizing slapd sends them to syslog, and ``-d 0`` prints nothing at all
(2.5 treats level 0 as "no messages").  ``none`` still prints errors but not
one line per operation.  The process gets its own session, so it outlives the
Python process that started it; a later ``start()`` finds it again through the
pid file.

Two configuration styles are supported:

* ``"conf"`` (default): a ``slapd.conf`` that includes the ``.schema`` files,
  the way iRedMail runs slapd;
* ``"ldif"``: a ``slapd.d`` built with ``slapadd -n0`` from the ``.ldif``
  schema files, proving those load into a cn=config server.  The config
  database can then be changed as :attr:`LocalSlapd.config_dn` with the same
  password.  Indexes are not set in this style (apply
  ``schema/indexes.ldif`` to try them), unless the server replicates.

``replication`` (a :class:`Replication`) makes the server one provider of a
multi-provider (mirror) set, in either style: its ``serverID``, the
``syncprov`` overlay on the database, one ``syncrepl`` consumer per other
provider (refreshAndPersist of the whole suffix, bound as the rootdn) and
``multiprovider on``; by default delta-syncrepl (an ``accesslog``
database, cn=accesslog, that the consumers replicate the changes from);
with iRedMail's indexes (entryCSN and entryUUID among
them, which syncprov needs).  deploy/openldap/ shows the same directives for
a real pair of servers.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Literal

import ldap3
from ldap3.core.exceptions import LDAPException

from iredldap.paths import schema_dir
from iredldap.private_files import PRIVATE_DIR, PRIVATE_UMASK, make_private_dir, open_private, write_private

__all__ = ["LocalSlapd", "Replication", "SLAPD", "SLAPADD", "free_port", "slapd_available", "ssha"]

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SYSTEM_SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

# Standard schemas in load order; ours come after them (iRedMail also loads
# corba, which no entry uses).
STANDARD_SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
OUR_SCHEMAS = ("amavis", "iredmail")

# mdb maps the whole file size up front (sparse); iRedMail uses 2 GiB, 1 GiB
# is plenty here and friendlier to small disks.
MAX_SIZE = 1 << 30
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

ConfigStyle = Literal["conf", "ldif"]

# slapd processes started by this Python process, by pid, so stop() can reap
# them; otherwise a killed child stays a zombie and still looks alive.
_children: dict[int, subprocess.Popen[bytes]] = {}


def slapd_available() -> bool:
    return SLAPD.is_file() and os.access(SLAPD, os.X_OK)


def ssha(password: str) -> str:
    """``{SSHA}`` hash (salted SHA-1) as slapd's rootpw expects."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


# Ports are picked below the kernel's ephemeral range.  A port the kernel
# handed out for bind(0) can, once its server stops for a restart, be handed
# to anyone's next bind(0) or be the source port of anyone's next outgoing
# connection, and then the restart on the same port fails with "Address
# already in use".  Nothing takes a port below that range unless asked for it.
LOWEST_PICKED_PORT = 10000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_PICK_ATTEMPTS = 200
_MIN_ROOM = 1000  # fewer ports than that below the range: let the kernel pick

# Ports this process has picked; a server need not be listening yet when the
# next port is picked (a replicated pair picks both before starting either).
_picked: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bind_to(family: socket.AddressFamily, host: str, port: int) -> int | None:
    """The port a socket bound to `port` (0: the kernel's pick) got, or None."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return None
        return int(s.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing holds now and that this process has
    not picked before.  It lies below the kernel's ephemeral range, so a
    server can be stopped and started on it again; when that range leaves
    no room below it, the kernel picks."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    top = _ephemeral_low()
    below_range = top - LOWEST_PICKED_PORT >= _MIN_ROOM
    rng = secrets.SystemRandom()
    for _ in range(_PICK_ATTEMPTS):
        port = _bind_to(family, host, rng.randrange(LOWEST_PICKED_PORT, top) if below_range else 0)
        if port is not None and port not in _picked:
            _picked.add(port)
            return port
    raise OSError(f"no free port found on {host} in {_PICK_ATTEMPTS} tries")


def _pid_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (someone else's unreaped child) is as good as gone
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _ldif_value(attr: str, value: str) -> str:
    # Values here are plain ASCII; still, never emit one LDIF would misread.
    if value != value.strip() or value.startswith((":", "<")) or not value.isascii():
        return f"{attr}:: " + base64.b64encode(value.encode()).decode()
    return f"{attr}: {value}"


@dataclass(frozen=True)
class Replication:
    """This server's part in a multi-provider set: its `server_id` (1-4095)
    and the other providers as serverID -> URI (each is the `rid` of the
    consumer of that provider).  `retry` is syncrepl's (seconds between
    attempts to reach a provider that is down, "+": for ever)."""
    server_id: int
    providers: dict[int, str] = field(default_factory=dict)
    retry: str = "1 +"
    checkpoint: str = "100 5"
    session_log: int = 1000
    # Delta-syncrepl: the providers exchange the changes themselves (from an
    # accesslog database, cn=accesslog) rather than whole entries, so two
    # changes of one entry made on two providers at once both survive
    # (with whole entries the later one wins and the other's values are lost).
    delta: bool = True
    log_purge: str = "07+00:00 01+00:00"

    def __post_init__(self) -> None:
        ids = [self.server_id, *self.providers]
        if any(not 1 <= i <= 4095 for i in ids) or len(set(ids)) != len(ids):
            raise ValueError("serverIDs must be distinct numbers from 1 to 4095")

    def syncrepl(self, suffix: str, bind_dn: str, password: str) -> list[str]:
        """The syncrepl directives' values, one per other provider."""
        delta = (' logbase="cn=accesslog" logfilter="(&(objectClass=auditWriteObject)(reqResult=0))" '
                 'syncdata=accesslog' if self.delta else "")
        return [f'rid={rid:03d} provider={uri} bindmethod=simple binddn="{bind_dn}" credentials={password} '
                f'searchbase="{suffix}" scope=sub type=refreshAndPersist retry="{self.retry}" '
                f'timeout=3 network-timeout=3 keepalive=60:3:10{delta}'
                for rid, uri in sorted(self.providers.items())]


class LocalSlapd:
    """One slapd serving ``suffix`` from ``data_dir``.

    Attributes: ``uri`` (property), ``host``, ``port``, ``suffix``,
    ``root_dn``, ``root_password``; in the ``"ldif"`` style also
    ``config_dn`` (rootdn of cn=config, same password).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        suffix: str = "dc=example,dc=com",
        root_dn: str | None = None,
        root_password: str = "secret",
        config_style: ConfigStyle = "conf",
        replication: Replication | None = None,
    ) -> None:
        if config_style not in ("conf", "ldif"):
            raise ValueError(f"config_style must be 'conf' or 'ldif', not {config_style!r}")
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.suffix = suffix
        self.root_dn = root_dn or f"cn=Manager,{suffix}"
        self.root_password = root_password
        self.config_style: ConfigStyle = config_style
        self.config_dn = "cn=admin,cn=config"
        self.replication = replication
        self._port: int | None = port or None

    # --- locations -----------------------------------------------------------

    db_dir = property(lambda self: self.data_dir / "db", doc="the mdb database")
    accesslog_dir = property(lambda self: self.data_dir / "accesslog", doc="delta-syncrepl's change log")
    conf_path = property(lambda self: self.data_dir / "slapd.conf", doc="slapd.conf (config_style 'conf')")
    slapd_d = property(lambda self: self.data_dir / "slapd.d", doc="cn=config (config_style 'ldif')")
    pid_file = property(lambda self: self.data_dir / "slapd.pid")
    log_file = property(lambda self: self.data_dir / "slapd.log")

    @property
    def port(self) -> int:
        """The TCP port; with port=0 one is chosen once and kept in <data_dir>/port."""
        if self._port is None:
            port_file = self.data_dir / "port"
            if port_file.is_file():
                self._port = int(port_file.read_text().strip())
            else:
                self._port = free_port(self.host)
                make_private_dir(self.data_dir)
                write_private(port_file, f"{self._port}\n")
        return self._port

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ldap://{host}:{self.port}"

    # --- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Start slapd unless this data folder's slapd already runs."""
        if self.running():
            return
        pid = self._pid()
        if pid is not None:
            # Alive but not answering: probably still starting up.
            if self._wait_ready(pid):
                return
            self.stop()
        if not slapd_available():
            raise RuntimeError(f"{SLAPD} not found: install OpenLDAP's slapd")
        # The config holds the rootpw hash and the database every entry's
        # userPassword: owner only (slapd creates its files under our umask).
        make_private_dir(self.data_dir)
        self.db_dir.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        if self.replication and self.replication.delta:
            self.accesslog_dir.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        if self.config_style == "conf":
            write_private(self.conf_path, self._slapd_conf())
            config_args = ["-f", str(self.conf_path)]
        else:
            self._build_slapd_d()
            config_args = ["-F", str(self.slapd_d)]
        listen = self.uri + "/"
        with open_private(self.log_file) as log:
            proc = subprocess.Popen(
                [str(SLAPD), "-h", listen, *config_args, "-d", "none"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # keep running when our process group gets a signal
                umask=PRIVATE_UMASK,
            )
        _children[proc.pid] = proc
        if not self._wait_ready(proc.pid):
            self._terminate(proc.pid)
            output = self.log_file.read_text(errors="replace")
            raise RuntimeError(f"slapd did not start on {listen} (data in {self.data_dir}):\n{output}")

    def stop(self) -> None:
        """Stop this data folder's slapd, if running, and wait until it is gone."""
        pid = self._pid()
        if pid is not None:
            self._terminate(pid)
        self.pid_file.unlink(missing_ok=True)

    def running(self) -> bool:
        return self._pid() is not None and self._port_answers()

    def pid(self) -> int | None:
        """The pid of this data folder's slapd, if one is alive (answering or not)."""
        return self._pid()

    def wipe(self) -> None:
        """Stop and delete the database and generated config (the port file stays)."""
        self.stop()
        for path in (self.db_dir, self.accesslog_dir, self.slapd_d):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.conf_path, self.log_file, self.data_dir / "slapd.args", self.data_dir / "config.ldif"):
            path.unlink(missing_ok=True)

    def connection(self, user: str | None = None, password: str | None = None) -> ldap3.Connection:
        """An ldap3 connection bound as `user` (default: the rootdn); raises if the bind fails.

        No schema is read (``get_info=NONE``), so ldap3 sends Python values
        as ``str()`` gives them: write booleans as ``"TRUE"``/``"FALSE"``.
        """
        if user is None:
            user, password = self.root_dn, self.root_password
        server = ldap3.Server(self.uri, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(server, user=user, password=password, auto_bind=True, receive_timeout=30)

    # --- helpers -------------------------------------------------------------

    def _is_ours(self, argv: list[str]) -> bool:
        """Whether a command line is a slapd of this data folder (either style)."""
        return bool(argv) and Path(argv[0]).name == "slapd" and (
            str(self.conf_path) in argv or str(self.slapd_d) in argv
        )

    def _pid(self) -> int | None:
        """Pid of the slapd serving this data folder, or None."""
        pid = self._pid_file_pid()
        if pid is None:
            # slapd writes the pid file only once it is listening; a child of
            # ours that has not got that far yet still counts.
            for child_pid, proc in list(_children.items()):
                if proc.poll() is None and self._is_ours([str(a) for a in proc.args]):  # type: ignore[union-attr]
                    return child_pid
            return None
        if not _pid_alive(pid):
            return None
        try:  # guard against a recycled pid
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return pid
        return pid if self._is_ours(argv) else None

    def _port_answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def _ldap_answers(self) -> bool:
        server = ldap3.Server(self.uri, connect_timeout=1, get_info=ldap3.NONE)
        try:
            conn = ldap3.Connection(server, auto_bind=True, receive_timeout=2)  # anonymous
        except LDAPException:
            return False
        conn.unbind()
        return True

    def _pid_file_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _wait_ready(self, pid: int) -> bool:
        # slapd writes its pid file only after binding the listener, so a
        # matching pid file proves the port belongs to this process and not to
        # some other server that happens to answer there.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return False
            if self._pid_file_pid() == pid and self._ldap_answers():
                return True
            time.sleep(0.05)
        return False

    def _terminate(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        child = _children.pop(pid, None)
        if child is not None:
            child.wait(timeout=STOP_TIMEOUT)

    def _schema_files(self, suffix: str) -> list[Path]:
        files = [SYSTEM_SCHEMA_DIR / f"{name}.{suffix}" for name in STANDARD_SCHEMAS]
        files += [schema_dir() / f"{name}.{suffix}" for name in OUR_SCHEMAS]
        return files

    def _modules(self) -> list[str]:
        # Debian builds back_mdb (and syncprov) as modules; other builds compile them in.
        names: tuple[str, ...] = ("back_mdb", "pw-sha2")
        if self.replication:
            names += ("syncprov", "accesslog") if self.replication.delta else ("syncprov",)
        return [name for name in names if (MODULE_DIR / f"{name}.la").exists()
                or (MODULE_DIR / f"{name}.so").exists()]

    @staticmethod
    def _index_values() -> list[str]:
        indexes = (schema_dir() / "indexes.conf").read_text()
        return [line.strip()[len("index "):].strip() for line in indexes.splitlines()
                if line.strip().startswith("index ")]

    def _slapd_conf(self) -> str:
        lines = ["# Generated by iredldap.directory.localslapd; rewritten on every start.", ""]
        lines += [f'include "{path}"' for path in self._schema_files("schema")]
        lines += ["", f'pidfile "{self.pid_file}"', f'argsfile "{self.data_dir / "slapd.args"}"']
        modules = self._modules()
        if modules:
            lines.append(f'modulepath "{MODULE_DIR}"')
            lines += [f"moduleload {name}" for name in modules]
        lines.append("sizelimit unlimited")
        if self.replication:
            lines.append(f"serverID {self.replication.server_id}")
        if self.replication and self.replication.delta:
            # The change log the other providers replicate from (before the
            # database whose changes it logs).
            lines += ["", "database mdb", 'suffix "cn=accesslog"', f'directory "{self.accesslog_dir}"',
                      f"maxsize {MAX_SIZE}", "index default eq", "index entryCSN,objectClass,reqEnd,reqResult,reqStart,reqDN",
                      f'limits dn.exact="{self.root_dn}" size=unlimited time=unlimited',
                      "overlay syncprov", "syncprov-nopresent TRUE", "syncprov-reloadhint TRUE"]
        lines += [
            "",
            "database mdb",
            f'suffix "{self.suffix}"',
            f'rootdn "{self.root_dn}"',
            f"rootpw {ssha(self.root_password)}",
            f'directory "{self.db_dir}"',
            f"maxsize {MAX_SIZE}",
            "",
        ]
        lines += [f"index {value}" for value in self._index_values()]
        if self.replication:
            repl = self.replication
            lines += ["", *(f"syncrepl {value}" for value in repl.syncrepl(self.suffix, self.root_dn, self.root_password)),
                      *(["multiprovider on"] if repl.providers else []), "", "overlay syncprov",
                      f"syncprov-checkpoint {repl.checkpoint}", f"syncprov-sessionlog {repl.session_log}"]
            if repl.delta:
                lines += ["", "overlay accesslog", 'logdb "cn=accesslog"', "logops writes", "logsuccess TRUE",
                          f"logpurge {repl.log_purge}"]
        return "\n".join(lines) + "\n"

    def _config_ldif(self) -> str:
        records: list[list[str]] = [
            ["dn: cn=config", "objectClass: olcGlobal", "cn: config",
             _ldif_value("olcPidFile", str(self.pid_file)),
             _ldif_value("olcArgsFile", str(self.data_dir / "slapd.args")),
             *([f"olcServerID: {self.replication.server_id}"] if self.replication else [])],
        ]
        modules = self._modules()
        if modules:
            records.append(["dn: cn=module{0},cn=config", "objectClass: olcModuleList", "cn: module{0}",
                            _ldif_value("olcModulePath", str(MODULE_DIR)),
                            *(f"olcModuleLoad: {name}" for name in modules)])
        records.append(["dn: cn=schema,cn=config", "objectClass: olcSchemaConfig", "cn: schema"])
        text = "\n\n".join("\n".join(r) for r in records) + "\n\n"
        # The schema LDIF files are complete entries; paste them in load order.
        for path in self._schema_files("ldif"):
            text += path.read_text().strip() + "\n\n"
        tail: list[list[str]] = [
            ["dn: olcDatabase={-1}frontend,cn=config", "objectClass: olcDatabaseConfig",
             "objectClass: olcFrontendConfig", "olcDatabase: {-1}frontend", "olcSizeLimit: unlimited"],
            ["dn: olcDatabase={0}config,cn=config", "objectClass: olcDatabaseConfig", "olcDatabase: {0}config",
             _ldif_value("olcRootDN", self.config_dn), _ldif_value("olcRootPW", ssha(self.root_password))],
        ]
        repl = self.replication
        main = "{1}mdb"
        if repl and repl.delta:
            # The change log first: the accesslog overlay of the mail
            # database names it.
            main = "{2}mdb"
            tail += [
                ["dn: olcDatabase={1}mdb,cn=config", "objectClass: olcDatabaseConfig", "objectClass: olcMdbConfig",
                 "olcDatabase: {1}mdb", "olcSuffix: cn=accesslog",
                 _ldif_value("olcDbDirectory", str(self.accesslog_dir)), f"olcDbMaxSize: {MAX_SIZE}",
                 "olcDbIndex: default eq", "olcDbIndex: entryCSN,objectClass,reqEnd,reqResult,reqStart,reqDN",
                 _ldif_value("olcLimits", f'dn.exact="{self.root_dn}" size=unlimited time=unlimited')],
                ["dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config", "objectClass: olcOverlayConfig",
                 "objectClass: olcSyncProvConfig", "olcOverlay: {0}syncprov", "olcSpNoPresent: TRUE",
                 "olcSpReloadHint: TRUE"],
            ]
        tail.append([f"dn: olcDatabase={main},cn=config", "objectClass: olcDatabaseConfig", "objectClass: olcMdbConfig",
                     f"olcDatabase: {main}", _ldif_value("olcSuffix", self.suffix), _ldif_value("olcRootDN", self.root_dn),
                     _ldif_value("olcRootPW", ssha(self.root_password)), _ldif_value("olcDbDirectory", str(self.db_dir)),
                     f"olcDbMaxSize: {MAX_SIZE}"])
        if repl:
            tail[-1] += [f"olcDbIndex: {value}" for value in self._index_values()]
            tail[-1] += [_ldif_value("olcSyncrepl", f"{{{n}}}{value}") for n, value in
                         enumerate(repl.syncrepl(self.suffix, self.root_dn, self.root_password))]
            if repl.providers:
                tail[-1].append("olcMultiProvider: TRUE")
            tail.append([f"dn: olcOverlay={{0}}syncprov,olcDatabase={main},cn=config", "objectClass: olcOverlayConfig",
                         "objectClass: olcSyncProvConfig", "olcOverlay: {0}syncprov",
                         f"olcSpCheckpoint: {repl.checkpoint}", f"olcSpSessionLog: {repl.session_log}"])
            if repl.delta:
                tail.append([f"dn: olcOverlay={{1}}accesslog,olcDatabase={main},cn=config",
                             "objectClass: olcOverlayConfig", "objectClass: olcAccessLogConfig",
                             "olcOverlay: {1}accesslog", "olcAccessLogDB: cn=accesslog", "olcAccessLogOps: writes",
                             "olcAccessLogSuccess: TRUE", f"olcAccessLogPurge: {repl.log_purge}"])
        return text + "\n\n".join("\n".join(r) for r in tail) + "\n"

    def _build_slapd_d(self) -> None:
        # Rebuilt on every start, like slapd.conf; the data lives in db/.
        shutil.rmtree(self.slapd_d, ignore_errors=True)
        self.slapd_d.mkdir(mode=PRIVATE_DIR)
        ldif = self.data_dir / "config.ldif"
        write_private(ldif, self._config_ldif())
        result = subprocess.run(
            [str(SLAPADD), "-n0", "-F", str(self.slapd_d), "-l", str(ldif)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            umask=PRIVATE_UMASK,
        )
        if result.returncode != 0:
            raise RuntimeError(f"slapadd -n0 failed ({result.returncode}):\n{result.stdout}{result.stderr}")
