"""The `local` backend: the mlmmj spool on this machine, written the way
mlmmjadmin 3.6.3 leaves it (reference mlmmj.md 3.4-3.9 and 4), so that
Debian's mlmmj tools and a later mlmmjadmin see the same lists.

* A list is `<spool>/<domain>/<localpart>/` with mlmmj's 14 sub-directories,
  `control/listaddress` (the primary address first), an empty `index` and
  `text/` copied from `<skel>/en`; then the profile's control files.
* Subscribers: one file per first character of the address in
  `subscribers.d/`, `digesters.d/`, `nomailsubs.d/`.
* Deleting with archive moves the list to
  `<archive>/<domain>/<localpart>-<UTC YYYYmmddHHMMSS>/<localpart>/`.
* Directories are made 0700 and files 0600 (mlmmjadmin's umask 077); when
  the service runs as root, what it makes belongs to the spool's owner (the
  `mlmmj` user on iRedMail), as mlmmj's programs run as that owner.

Crash safety, where it is cheap: a new list is laid out in a hidden
directory beside its final place and renamed into it; control files and
rewritten subscriber files are written to a temporary file and renamed
over the old one.  Subscriber additions are appended under an fcntl lock of
the file, as `mlmmj-sub` does.

Differences from mlmmjadmin, on purpose: bad values are refused
(InvalidInput, nothing written) where mlmmjadmin drops or ignores them, an
update or subscriber change of a missing list is NoSuchAccount, and
`require_confirm` runs `mlmmj-sub -C` and waits for it (mlmmjadmin starts it
and does not wait), so its failure is reported.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import glob
import os
import secrets
import shutil
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from iredldap.errors import AlreadyExists, InvalidInput, ListSpoolError, ListSpoolUnavailable, NoSuchAccount
from iredldap.mlmmj import SUBSCRIPTION_KINDS, Subscriber, SubscriptionKind
from iredldap.model import mlmmj_profile as mp
from iredldap.model import validators

#: What mlmmjadmin (and mlmmj-make-ml) create in a list directory.
SUB_DIRS = ("archive", "bounce", "control", "digesters.d", "incoming", "moderation", "nomailsubs.d", "queue",
            "queue/discarded", "requeue", "subconf", "subscribers.d", "text", "unsubconf")
KIND_DIRS: dict[str, str] = {"normal": "subscribers.d", "digest": "digesters.d", "nomail": "nomailsubs.d"}
# mlmmj-sub's switch for each version.
KIND_SWITCH: dict[str, list[str]] = {"normal": [], "digest": ["-d"], "nomail": ["-n"]}
TEXT_LANGUAGE = "en"
IREDMAIL_SMTP_PORT = 10027
_TMP_PREFIX = ".iredldap-"
# A half-built list left by a crash is removed by the next create after this long.
_STALE_SECONDS = 3600
T = TypeVar("T")
# fcntl record locks (mlmmj's) only keep other processes out: the threads of
# this one take this lock around every subscriber file change as well.
_THREAD_LOCK = threading.Lock()


def list_address(mail: str, param: str = "mail") -> tuple[str, str, str]:
    """(address, local part, domain) of a list address fit to be a path in the
    spool: an address our validators accept (no '/', no leading or double
    dot, a real domain name), lower-cased.  Anything else is InvalidInput."""
    if not isinstance(mail, str) or "\x00" in mail or "/" in mail or "\\" in mail:
        raise InvalidInput(f"{param}: {mail!r} is not a valid list address", code="INVALID_MAIL", param=param)
    address = validators.email(mail, param=param)
    local, _, domain = address.rpartition("@")
    if local in (".", "..") or domain in (".", "..") or local.startswith(".") or domain.startswith("."):
        raise InvalidInput(f"{param}: {mail!r} is not a valid list address", code="INVALID_MAIL", param=param)
    return address, local, domain


def subscriber_addresses(addresses: Sequence[str], param: str) -> list[str]:
    """Checked, lower-cased, duplicates dropped; one bad address refuses all."""
    if isinstance(addresses, str):
        raise InvalidInput(f"{param}: expected a list of addresses", param=param)
    return list(dict.fromkeys(validators.email(a, param=param) for a in addresses))


def subscription_kind(subscription: str) -> SubscriptionKind:
    for kind in SUBSCRIPTION_KINDS:
        if subscription == kind:
            return kind
    raise InvalidInput(f"subscription: {subscription!r} is not one of normal, digest, nomail", param="subscription")


def _file_errors(method: Callable[..., T]) -> Callable[..., T]:
    """File-system failures of a spool method as our errors: a list directory
    that went away meanwhile is NoSuchAccount (for `delete`: nothing to do),
    anything else (no space, a read-only or broken file system, a spool we
    may not write) is ListSpoolUnavailable."""

    @functools.wraps(method)
    def translated(self: "LocalSpool", mail: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, mail, *args, **kwargs)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and method.__name__ != "create" \
                    and not self.list_dir(mail).is_dir():
                if method.__name__ == "delete":
                    return None
                raise NoSuchAccount(f"mailing list {mail} has no mlmmj directory", mail=mail) from None
            where = f" ({exc.filename})" if exc.filename else ""
            raise ListSpoolUnavailable(f"the mlmmj spool cannot be written: {exc.strerror or exc}{where}") from None

    return translated


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")


class LocalSpool:
    """ListSpool on the spool directory `spool_dir` (see the module doc).

    `archive_dir` empty: archived lists stay in the spool beside the list,
    as mlmmjadmin does.  `smtp_port`: what every new list gets in
    `control/smtpport` (iRedMail's 10027, Amavisd's MLMMJ policy bank;
    None: nothing, mlmmj's default 25).  `mlmmj_sub`: the absolute path of
    mlmmj-sub, run for subscriptions that ask for confirmation.
    """

    def __init__(self, spool_dir: str | os.PathLike, archive_dir: str | os.PathLike = "",
                 skel_dir: str | os.PathLike = "/usr/share/mlmmj/text.skel", *,
                 smtp_port: int | None = IREDMAIL_SMTP_PORT, mlmmj_sub: str = "/usr/bin/mlmmj-sub",
                 command_timeout: float = 30.0):
        self.spool_dir = Path(spool_dir)
        self.archive_dir = Path(archive_dir) if str(archive_dir) else None
        self.skel_dir = Path(skel_dir)
        self.mlmmj_sub = mlmmj_sub
        self.command_timeout = command_timeout
        self.defaults = mp.table_defaults()
        if smtp_port is not None:
            self.defaults["smtp_port"] = str(smtp_port)

    # -- paths ----------------------------------------------------------------

    def list_dir(self, mail: str) -> Path:
        """`<spool>/<domain>/<localpart>` of a list address (checked)."""
        _, local, domain = list_address(mail)
        return self.spool_dir / domain / local

    def _existing(self, mail: str) -> tuple[str, Path]:
        address = list_address(mail)[0]
        path = self.list_dir(address)
        if not path.is_dir():
            raise NoSuchAccount(f"mailing list {address} has no mlmmj directory", mail=address)
        return address, path

    # -- ownership and writes ---------------------------------------------------

    def _own(self, path: Path) -> None:
        """Give `path` to the spool's owner when we are root (mlmmj runs as
        the owner of the list directory)."""
        if os.geteuid() != 0:
            return
        try:
            st = self.spool_dir.stat()
            if (st.st_uid, st.st_gid) != (0, 0):
                os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
        except OSError as exc:
            raise ListSpoolError(f"cannot give {path} to the spool's owner: {exc.strerror}") from None

    def _mkdir(self, path: Path) -> None:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            return
        self._own(path)

    def _write(self, path: Path, content: str, tmp_dir: Path) -> None:
        """`content` into `path`, through a temporary file in `tmp_dir` (same
        file system) renamed over it."""
        tmp = tmp_dir / f"{_TMP_PREFIX}{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            self._own(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _apply(self, listdir: Path, writes: Sequence[mp.ControlWrite]) -> None:
        control = listdir / "control"
        for w in writes:
            path = control / w.file
            if w.content is None:
                path.unlink(missing_ok=True)
            elif w.keep and path.is_file() and path.stat().st_size > 0:
                continue
            else:
                self._write(path, w.content, listdir)

    def _lay_out(self, root: Path, address: str) -> None:
        skel = self.skel_dir / TEXT_LANGUAGE
        self._mkdir(root)
        for sub in SUB_DIRS:
            self._mkdir(root / sub)
        for item in sorted(skel.iterdir()):
            if item.is_file():
                self._write(root / "text" / item.name, item.read_text(encoding="utf-8", errors="surrogateescape"),
                            root)
        self._write(root / "control" / "listaddress", address + "\n", root)
        self._write(root / "index", "", root)

    # -- the ListSpool interface ---------------------------------------------------

    @_file_errors
    def create(self, mail: str, profile: Mapping[str, str]) -> None:
        address, local, domain = list_address(mail)
        mp.check_new_list_address(address)
        form = mp.check_form(profile)
        writes = mp.control_writes(address, mp.with_defaults(address, form, self.defaults))
        if not (self.skel_dir / TEXT_LANGUAGE).is_dir():
            raise ListSpoolError(f"{self.skel_dir / TEXT_LANGUAGE} does not exist", code="SKEL_DIR_NOT_EXIST")
        self._check_spool()
        domain_dir = self.spool_dir / domain
        self._mkdir(domain_dir)
        final = domain_dir / local
        self._remove_stale(domain_dir, local)
        if not final.is_dir():
            tmp = domain_dir / f"{_TMP_PREFIX}{local}.{secrets.token_hex(6)}"
            try:
                self._lay_out(tmp, address)
                self._apply(tmp, writes)
                os.rename(tmp, final)
                return
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not final.is_dir():
                    raise
                # Someone else made it meanwhile: write the profile into theirs.
        # There already (mlmmjadmin's create does not check): make sure of the
        # layout and the primary address, and write the profile again.
        for sub in SUB_DIRS:
            self._mkdir(final / sub)
        self._set_listaddress(final, address, old=None)
        self._apply(final, writes)

    @staticmethod
    def _remove_stale(domain_dir: Path, local: str) -> None:
        """Half-built copies of this list (a create that crashed), when old."""
        now = time.time()
        for item in domain_dir.glob(f"{_TMP_PREFIX}{glob.escape(local)}.*"):
            try:
                if item.is_dir() and now - item.stat().st_mtime > _STALE_SECONDS:
                    shutil.rmtree(item, ignore_errors=True)
            except FileNotFoundError:
                continue

    @_file_errors
    def update(self, mail: str, profile: Mapping[str, str]) -> None:
        form = mp.check_form(profile)
        address, path = self._existing(mail)
        self._apply(path, mp.control_writes(address, form))

    @_file_errors
    def profile(self, mail: str) -> dict[str, str | list[str]]:
        address, path = self._existing(mail)

        def read(name: str) -> str | None:
            try:
                return (path / "control" / name).read_text(encoding="utf-8", errors="surrogateescape")
            except (FileNotFoundError, IsADirectoryError):
                return None

        return mp.profile_of(address, read)

    def exists(self, mail: str) -> bool:
        return self.list_dir(mail).is_dir()

    @_file_errors
    def delete(self, mail: str, *, archive: bool) -> str | None:
        address, local, domain = list_address(mail)
        path = self.spool_dir / domain / local
        if not path.is_dir():
            return None
        if not archive:
            shutil.rmtree(path)
            return None
        base = (self.archive_dir if self.archive_dir is not None else self.spool_dir) / domain
        if self.archive_dir is not None:
            self.archive_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._mkdir(base)
        stamp = utc_stamp()
        outer = base / f"{local}-{stamp}"
        if outer.exists():
            outer = base / f"{local}-{stamp}-{stamp}"
        n = 1
        while outer.exists():     # a third delete within the same second
            outer = base / f"{local}-{stamp}-{stamp}.{n}"
            n += 1
        self._mkdir(outer)
        os.rename(path, outer / local)
        return str(outer)

    @_file_errors
    def rename(self, mail: str, new_mail: str) -> None:
        old, path = self._existing(mail)
        # (a new address's pattern is the store's to check: moving a list
        # back, on an undo, may go to an address made before the rule)
        new, local, domain = list_address(new_mail, "new_mail")
        if new == old:
            return
        target = self.spool_dir / domain / local
        if target.exists():
            raise AlreadyExists(f"mailing list {new} has an mlmmj directory already", mail=new)
        self._mkdir(self.spool_dir / domain)
        readdressed = ("listaddress", "customheaders")
        saved = {name: (path / "control" / name).read_text(encoding="utf-8", errors="surrogateescape")
                 for name in readdressed if (path / "control" / name).is_file()}
        os.rename(path, target)
        try:
            self._set_listaddress(target, new, old=old)
            given = mp.file_lines(saved.get("customheaders"))
            self._apply(target, mp.control_writes(new, {"custom_headers": "\n".join(given)}))
        except BaseException:
            # Half-way (a write failed): the list goes back where it was, as it was.
            try:
                os.rename(target, path)
                for name, content in saved.items():
                    self._write(path / "control" / name, content, path)
            except (OSError, UnicodeError):
                pass
            raise

    def _set_listaddress(self, listdir: Path, address: str, old: str | None) -> None:
        path = listdir / "control" / "listaddress"
        current = mp.file_lines(path.read_text(encoding="utf-8")) if path.is_file() else []
        extras = [a for a in mp.extra_addresses_of(address, "\n".join(current)) if a.strip().lower() != old]
        wanted = "".join(f"{a}\n" for a in [address, *extras])
        if current[:1] != [address] or old is not None:
            self._write(path, wanted, listdir)

    # -- subscribers -------------------------------------------------------------------

    @_file_errors
    def subscribers(self, mail: str) -> list[Subscriber]:
        path = self.list_dir(mail)
        found: list[Subscriber] = []
        for kind in SUBSCRIPTION_KINDS:
            for address in self._addresses_in(path / KIND_DIRS[kind]):
                found.append(Subscriber(address, kind))
        return found

    @staticmethod
    def _addresses_in(folder: Path) -> Iterator[str]:
        if not folder.is_dir():
            return
        for item in sorted(folder.iterdir()):
            if item.is_file() and not item.name.startswith("."):
                for line in mp.file_lines(item.read_text(encoding="utf-8", errors="surrogateescape")):
                    if line.strip():
                        yield line.strip()

    @_file_errors
    def add_subscribers(self, mail: str, addresses: Sequence[str], *,
                        subscription: SubscriptionKind = "normal", require_confirm: bool = False) -> None:
        kind = subscription_kind(subscription)
        wanted = subscriber_addresses(addresses, "add_subscribers")
        _, path = self._existing(mail)
        if require_confirm:
            for address in wanted:
                self._ask_confirmation(path, address, kind)
            return
        by_file: dict[str, list[str]] = {}
        for address in wanted:
            by_file.setdefault(address[0], []).append(address)
        for first, group in by_file.items():
            self._append(path / KIND_DIRS[kind] / first, group)

    @_file_errors
    def remove_subscribers(self, mail: str, addresses: Sequence[str]) -> None:
        remove_all = list(addresses) == ["ALL"]
        unwanted = set() if remove_all else set(subscriber_addresses(addresses, "remove_subscribers"))
        _, path = self._existing(mail)
        for kind in SUBSCRIPTION_KINDS:
            folder = path / KIND_DIRS[kind]
            if remove_all:
                for item in folder.iterdir() if folder.is_dir() else ():
                    if item.is_file():
                        item.unlink()
                continue
            for first in sorted({a[0] for a in unwanted}):
                self._rewrite_without(path, folder / first, unwanted)

    def _locked(self, path: Path, flags: int) -> int:
        """An fd of `path` under an exclusive fcntl lock (mlmmj's own locking),
        reopened if the file was replaced while we waited."""
        while True:
            fd = os.open(path, flags, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                try:
                    same = os.stat(path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
            except BaseException:
                os.close(fd)
                raise
            if same:
                return fd
            os.close(fd)
            if not flags & os.O_CREAT and not path.exists():
                raise FileNotFoundError(path)

    def _append(self, path: Path, addresses: list[str]) -> None:
        with _THREAD_LOCK:
            self._append_locked(path, addresses)

    def _append_locked(self, path: Path, addresses: list[str]) -> None:
        new = not path.exists()
        fd = self._locked(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        try:
            if new:
                self._own(path)
            with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as fh:
                present = {line.strip() for line in mp.file_lines(fh.read())}
                missing = [a for a in addresses if a not in present]
                if missing:
                    fh.seek(0, os.SEEK_END)
                    fh.write("".join(f"{a}\n" for a in missing))
                    fh.flush()
                    os.fsync(fh.fileno())
        finally:
            os.close(fd)

    def _rewrite_without(self, listdir: Path, path: Path, unwanted: set[str]) -> None:
        with _THREAD_LOCK:
            self._rewrite_locked(listdir, path, unwanted)

    def _rewrite_locked(self, listdir: Path, path: Path, unwanted: set[str]) -> None:
        try:
            fd = self._locked(path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            with os.fdopen(os.dup(fd), "r", encoding="utf-8") as fh:
                lines = [line.strip() for line in mp.file_lines(fh.read()) if line.strip()]
            kept = [line for line in lines if line not in unwanted]
            if kept == lines:
                return
            if kept:
                self._write(path, "".join(f"{a}\n" for a in kept), listdir)
            else:
                path.unlink()
        finally:
            os.close(fd)

    def _ask_confirmation(self, listdir: Path, address: str, kind: str) -> None:
        """What mlmmjadmin does for require_confirm=yes: drop the address's old
        confirmation cookies, then `mlmmj-sub -C` (which writes a new one and
        mails the subscriber); unlike mlmmjadmin we wait for it."""
        if not os.path.isabs(self.mlmmj_sub) or not os.access(self.mlmmj_sub, os.X_OK):
            raise ListSpoolError(f"{self.mlmmj_sub}: no mlmmj-sub to ask for confirmation",
                                 code="SUB_COMMAND_NOT_FOUND")
        suffix = "-" + address.replace("@", "=")
        subconf = listdir / "subconf"
        for item in subconf.iterdir() if subconf.is_dir() else ():
            if item.name.endswith(suffix) and len(item.name) == 16 + len(suffix):
                item.unlink(missing_ok=True)
        argv = [self.mlmmj_sub, "-C", "-L", str(listdir), *KIND_SWITCH[kind], "-a", address]
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.command_timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ListSpoolError(f"mlmmj-sub did not finish within {self.command_timeout:g}s") from None
        except OSError as exc:
            raise ListSpoolError(f"cannot run {self.mlmmj_sub}: {exc.strerror}", code="SUB_COMMAND_NOT_FOUND") from None
        if done.returncode != 0:
            message = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-300:]
            raise ListSpoolError(f"mlmmj-sub failed ({done.returncode}): {message}")

    # -- health ------------------------------------------------------------------------

    def _check_spool(self) -> None:
        if not self.spool_dir.is_dir() or not os.access(self.spool_dir, os.W_OK | os.X_OK):
            raise ListSpoolUnavailable(f"the mlmmj spool {self.spool_dir} is missing or not writable")

    def ping(self) -> None:
        self._check_spool()
        if not (self.skel_dir / TEXT_LANGUAGE).is_dir():
            raise ListSpoolUnavailable(f"mlmmj's texts {self.skel_dir / TEXT_LANGUAGE} are missing")
