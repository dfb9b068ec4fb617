"""Shared fixtures.

The behaviour tests of the API run twice: on ldap3's MOCK_SYNC strategy
(fast) and on a real slapd started by the tests (what production sees).
Ask for `directory` to get both; `slapd_directory` for the real one only.

Markers are set here from what a test uses (`pytest_collection_modifyitems`),
so `pytest -m "not slapd and not servers"` is the fast loop (MOCK_SYNC and
SQLite only) without anyone marking by hand:

* ``slapd`` -- the test uses a real slapd: the ``[slapd]`` case of
  `directory`, or any fixture built on ``slapd`` / ``own_slapd``;
* ``servers`` -- the test uses MariaDB or PostgreSQL (a ``mariadb`` or
  ``postgresql`` parameter, e.g. `sql_url`, `policy_sql`), or runs a
  service or pip in a subprocess (gunicorn, nginx, a venv, a wheel, Debian's
  mlmmj programs: marked in its module).
"""

from __future__ import annotations

import copy
import gc
import itertools
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import ldap3
import pytest
from sqlalchemy.engine import make_url

from iredldap.backends import Backends, tree_of
from iredldap.web.app import create_app
from iredldap.config import Settings
from iredldap.db.amavisd import AmavisdDB
from iredldap.db.engine import make_engine
from iredldap.db.iredapd import IredapdDB
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.base import init_tree
from iredldap.directory.connection import Directory
from iredldap.directory.mock import mock_server
from iredldap.private_files import create_private

from .support import ApiClient, Factory

pytest_plugins = ["tests.fixtures_slapd", "tests.fixtures_sql", "tests.fixtures_policy", "tests.fixtures_mlmmj"]

# SQLite and slapd's mdb sync every commit to the disk; the tests need no
# durability, and on a shared disk the syncs cost more than the tests: their
# temporary folders (tmp_path, the session's slapd) go to memory where the
# machine has a tmpfs.  PYTEST_DEBUG_TEMPROOT is pytest's own setting for it;
# one given by the caller wins.
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", "/dev/shm")

# Fixtures that stand for a real slapd (see the module's doc).
SLAPD_FIXTURES = frozenset({"slapd", "own_slapd"})
SERVER_PARAMS = frozenset({"mariadb", "postgresql"})


# Modules whose tests start services, venvs or whole worlds and take many
# seconds each.  pytest-xdist hands out tests in collection order as workers
# come free: run first, these keep one worker from finishing long after the
# other (longest first is the classic rule for a short tail).  Whole modules
# move, so their module-scoped fixtures are still made once.
SLOW_MODULES = ("test_plain_install.py", "test_replication.py", "test_worker_kill.py", "test_readme.py",
                "test_packaging.py", "test_served.py", "test_paging.py", "test_failover.py",
                "test_mlmmj_attacks.py", "test_review_reshape.py", "test_openapi_schemathesis.py")

# Modules whose tests mostly wait: for a slapd stopped or paused on purpose,
# a timeout, a racer's patience, a program of mlmmj.  The workers go through
# the tests in step, so such a module in one piece has every worker waiting
# at once with the cores idle; its tests are spread over the run instead, one
# at a time between the others, to wait while the others compute.
WAITING_MODULES = ("test_journal.py", "test_races.py", "test_quota_total.py", "test_mlmmj_lists_slapd.py",
                   "test_login_throttle.py", "test_mlmmj_delivery.py", "test_own_tables.py", "test_merge_review.py")
# Modules with module-scoped fixtures: nothing is put between their tests
# (pytest would make those fixtures again after each interruption).
KEEP_TOGETHER = ("test_authz_table.py", "test_lean_mock.py", "test_sql_errors.py")


def _module_of(item) -> str:
    return item.nodeid.split("::")[0].rpartition("/")[2]


def _run_order(items: list) -> list:
    """SLOW_MODULES first; then the others in their order, with the tests of
    WAITING_MODULES (taken from each module in turn) spread evenly between them."""
    slow = [item for item in items if _module_of(item) in SLOW_MODULES]
    by_module: dict[str, list] = {}
    for item in items:
        if _module_of(item) in WAITING_MODULES:
            by_module.setdefault(_module_of(item), []).append(item)
    waiting = [item for turn in itertools.zip_longest(*by_module.values()) for item in turn if item is not None]
    # The places a waiting test may go: before any other test, but not between two of a KEEP_TOGETHER module.
    runs: list[list] = []
    for item in items:
        module = _module_of(item)
        if module in SLOW_MODULES or module in WAITING_MODULES:
            continue
        if runs and module in KEEP_TOGETHER and _module_of(runs[-1][-1]) == module:
            runs[-1].append(item)
        else:
            runs.append([item])
    ordered = list(slow)
    for i, run in enumerate(runs):
        ordered.extend(waiting[len(waiting) * i // len(runs):len(waiting) * (i + 1) // len(runs)])
        ordered.extend(run)
    if not runs:
        ordered.extend(waiting)
    return ordered


# Modules whose tests share one costly session fixture (the project's wheel
# and a venv made with pip from it, a gunicorn): all the tests of a group go
# to one worker, which makes it once.  pytest-xdist's own `xdist_group` mark
# cannot do it on pytest 9 (it puts the group into `item._nodeid`, which
# pytest 9 no longer reads), so the scheduler below groups these.
ONE_WORKER_GROUPS = {"test_plain_install.py": "wheel", "test_packaging.py": "wheel", "test_served.py": "served"}


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (setup.cfg's addopts): one worker more than cores.  Many
    tests wait on a slapd, a gunicorn, pip or a clock while their worker sits
    idle, and the extra worker fills those gaps.  Measured on 2 cores, the
    whole suite: 3:26 with 3 workers, 3:58 with 2, 4:13 with 4, whose start-up
    costs more than it fills; the fast loop 67 s with 3, 77 s with 2, 70 s
    with 4.  Again on 2026-12-04, the suite much faster by then, within the
    same half hour: 2:26 with 3 workers, 2:47 with 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:      # (not on Linux)
        cores = os.cpu_count() or 1
    return cores + 1


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModuleGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            group = ONE_WORKER_GROUPS.get(nodeid.split("::")[0].rpartition("/")[2])
            if group is not None:
                return group
            return super()._split_scope(nodeid)

    return ModuleGroups(config, log)


def pytest_collection_modifyitems(config, items):
    items[:] = _run_order(items)
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if SLAPD_FIXTURES & set(getattr(item, "fixturenames", ())) or params.get("backend") == "slapd":
            item.add_marker(pytest.mark.slapd)
        if any(isinstance(v, str) and v in SERVER_PARAMS for v in params.values()):
            item.add_marker(pytest.mark.servers)


# The cyclic garbage collector.  A test process holds a large, long-lived
# heap (falcon, SQLAlchemy, ldap3, hypothesis and schemathesis, the collected
# tests) and makes many short-lived objects; with Python's default thresholds
# the collector walks the young objects every 700 allocations and the whole
# heap every hundred of those passes, a tenth of the suite's CPU.  Once the
# tests are collected, the heap so far is frozen out of its reach (it lives
# until the process ends anyway) and the young generation may grow to 10,000
# objects before a pass.  Objects are still collected; the tests that count
# what is left alive (test_paging) rely on reference counting, as the service does.
GC_YOUNG_THRESHOLD = 10_000


def pytest_collection_finish(session):
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


SUFFIX = "dc=example,dc=com"
ROOT_DN = f"cn=Manager,{SUFFIX}"
ROOT_PASSWORD = "secret"


def make_settings(tmp_path, **overrides) -> Settings:
    raw = {
        "ldap_uri": "ldap://127.0.0.1:389",
        "ldap_bind_dn": ROOT_DN,
        "ldap_bind_password": ROOT_PASSWORD,
        "ldap_suffix": SUFFIX,
        "sql_iredadmin_url": f"sqlite:///{tmp_path / 'iredadmin.sqlite'}",
        "sql_amavisd_url": f"sqlite:///{tmp_path / 'amavisd.sqlite'}",
        "sql_iredapd_url": f"sqlite:///{tmp_path / 'iredapd.sqlite'}",
        "secret_key": "test-secret-key-0123456789",
        "storage_base_directory": "/var/vmail/vmail1",
        "default_password_scheme": "SSHA512",
    }
    raw.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_mapping(raw)


def mock_directory() -> Directory:
    """A Directory on a fresh MOCK_SYNC server that knows our schema."""
    server = mock_server()
    seed = ldap3.Connection(server, user=ROOT_DN, password=ROOT_PASSWORD, client_strategy=ldap3.MOCK_SYNC)
    # MOCK_SYNC can only check a simple bind against a clear-text password entry.
    seed.strategy.add_entry(ROOT_DN, {"objectClass": ["person"], "cn": ["Manager"], "sn": ["Manager"],
                                      "userPassword": [ROOT_PASSWORD]})
    return Directory("ldap://mock", ROOT_DN, ROOT_PASSWORD, server=server, strategy=ldap3.MOCK_SYNC)


@pytest.fixture(params=["mock", "slapd"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def settings(request, tmp_path) -> Settings:
    """The default settings.  A test on a directory backend gets the settings
    of that backend's `Stage`, laid back to its start (see there); any other
    test, settings of its own over SQLite files in its `tmp_path`."""
    if "backend" in request.fixturenames:
        return _stage(request).reset(request).settings
    return make_settings(tmp_path)


@pytest.fixture
def directory(backend, request, settings) -> Directory:
    stage = _stage_of(request, settings)
    if stage is not None:
        yield stage.directory
        return
    if backend == "mock":
        directory = mock_directory()
    else:
        server = request.getfixturevalue("slapd_clean")
        directory = Directory(server.uri, server.root_dn, server.root_password)
    init_tree(directory, tree_of(settings))
    yield directory
    directory.close()


@pytest.fixture
def slapd_directory(slapd_clean, settings) -> Directory:
    directory = Directory(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password)
    init_tree(directory, tree_of(settings))
    yield directory
    directory.close()


SQLITE_FILES = {"iredadmin": "iredadmin.sqlite", "amavisd": "amavisd.sqlite", "iredapd": "iredapd.sqlite"}


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory) -> dict[str, Path]:
    """iRedAdmin's, Amavisd's and iRedAPD's SQLite files with all their tables,
    made once a session by the stores' own `create_tables`; each test gets
    copies (`sqlite_copy`), which is much cheaper than creating the tables."""
    folder = tmp_path_factory.mktemp("sqlite-templates")
    settings = make_settings(folder)
    engine = make_engine(settings.sql_iredadmin_url)
    IredadminDB(engine).create_tables()
    engine.dispose()
    for db in (AmavisdDB(settings.sql_amavisd_url), IredapdDB(settings.sql_iredapd_url)):
        db.create_tables()
        db.engine.dispose()
    templates = {kind: folder / name for kind, name in SQLITE_FILES.items()}
    # The last connection's close folded the write-ahead log into the file.
    leftovers = [p for p in folder.iterdir() if p.name.endswith(("-wal", "-shm"))]
    assert not leftovers, leftovers
    return templates


def sqlite_copy(templates: dict[str, Path], kind: str, url: str) -> bool:
    """Put a copy of the `kind` template where `url` (an SQLite file) points;
    False (nothing done) when `url` is not a missing SQLite file."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database.startswith("file:") \
            or u.database == ":memory:" or Path(u.database).exists():
        return False
    target = Path(u.database)
    target.parent.mkdir(parents=True, exist_ok=True)
    create_private(target)      # 0600, as the engine makes a new file (iredldap.db.engine)
    shutil.copyfile(templates[kind], target)
    return True


@pytest.fixture
def iredadmin(request, settings, sqlite_templates) -> IredadminDB:
    stage = _stage_of(request, settings)
    if stage is not None:
        return stage.iredadmin
    copied = sqlite_copy(sqlite_templates, "iredadmin", settings.sql_iredadmin_url)
    db = IredadminDB(make_engine(settings.sql_iredadmin_url))
    if not copied:
        db.create_tables()
    return db


def build_app(settings: Settings, directory: Directory, iredadmin: IredadminDB, templates: dict[str, Path],
              list_spool=None):
    """The API on `directory`, `iredadmin` and Amavisd's and iRedAPD's embedded
    SQLite files (copies of the templates, with their tables) beside it;
    `list_spool`: the mlmmj side of subscribable lists (default: MLMMJ_BACKEND's)."""
    amavisd, iredapd = AmavisdDB(settings.sql_amavisd_url), IredapdDB(settings.sql_iredapd_url)
    for kind, db in (("amavisd", amavisd), ("iredapd", iredapd)):
        if not sqlite_copy(templates, kind, getattr(settings, f"sql_{kind}_url")):
            db.create_tables()
    return create_app(settings, Backends(directory=directory, iredadmin=iredadmin, amavisd=amavisd,
                                         iredapd=iredapd, list_spool=list_spool))


@pytest.fixture
def app(request, settings, directory, iredadmin, sqlite_templates):
    stage = _stage_of(request, settings)
    if stage is not None and directory is stage.directory and iredadmin is stage.iredadmin:
        return stage.app
    return build_app(settings, directory, iredadmin, sqlite_templates)


# -- one app per worker and backend -------------------------------------------------

class Stage:
    """The app most tests use, made once per worker and directory backend.

    Making an app costs more than most tests: falcon compiles its router on
    the first request, SQLAlchemy compiles every statement once per engine,
    ldap3 opens and binds a connection.  A test that takes the default
    fixtures (`settings`, `directory`, `iredadmin`, `app` and what builds on
    them) gets this app instead, after `reset()` laid the directory and the
    three SQLite files back to what they held when the stage was made (the
    bare tree of `init_tree`, tables without rows) -- the state a new app
    would have found.  The app keeps nothing of its own between requests
    (sessions, tokens, throttling, audit and the journal are in SQL; the
    metrics are the process's, which tests read as differences), so a test
    cannot tell it from a new one.  Attributes a test put on the Directory
    object itself (`directory.add = refusing`) are taken off again.  A test
    that asks for `api` (the global admin's client) starts from the same
    state with that admin and its session in it (`signed_in`), as the
    `global_admin` and `api` fixtures would have made them."""

    def __init__(self, folder: Path, directory: Directory, templates: dict[str, Path]):
        self.folder = folder
        self.settings = make_settings(folder)
        self.directory = directory
        init_tree(directory, tree_of(self.settings))
        copied = sqlite_copy(templates, "iredadmin", self.settings.sql_iredadmin_url)
        assert copied
        self.iredadmin = IredadminDB(make_engine(self.settings.sql_iredadmin_url))
        self.app = build_app(self.settings, directory, self.iredadmin, templates)
        self.start = SavedState(directory, self.settings)
        self._directory_attrs = dict(vars(directory))
        # The start with the global admin and its session (see `reset`), and
        # whether the test now running got it.
        self.signed_in: tuple[SavedState, str] | None = None
        self.signed_in_laid = False
        # More apps over the same directory and iredadmin database, made once
        # by fixtures that need other backends (the policy tests' databases).
        self.apps: dict[tuple, object] = {}

    def reset(self, request) -> "Stage":
        vars(self.directory).clear()
        vars(self.directory).update(self._directory_attrs)
        if getattr(self.directory._server, "dit", None) is None:
            # A real slapd: the session server, emptied as `slapd_clean` does for the tests that ask for it.
            request.getfixturevalue("slapd_clean")
        # A test of the global admin's client (`api`, most of them) starts
        # from the start plus that admin and its session, saved the first
        # time a test asks for it (and then exactly the state the `global_admin`
        # and `api` fixtures would make: a login costs more than laying it down).
        self.signed_in_laid = "api" in request.fixturenames
        if self.signed_in_laid and self.signed_in is None:
            self.signed_in = self._sign_in()
        (self.signed_in[0] if self.signed_in_laid else self.start).restore(self.directory, self.settings, over=True)
        # Tests make settings of their own over `tmp_path` for a second app
        # on "the same database" (another worker, a restart): the files there
        # are links to the stage's (SQLite follows them, its write-ahead log
        # stays beside the real file).
        tmp_path = request.getfixturevalue("tmp_path")
        for name in SQLITE_FILES.values():
            link = tmp_path / name
            if not link.exists():
                link.symlink_to(self.folder / name)
        return self


    def _sign_in(self) -> tuple["SavedState", str]:
        """The start plus the global admin and its session (made by a real
        add and login through the app), and the session's cookie."""
        self.start.restore(self.directory, self.settings, over=True)
        Factory(self.directory, self.settings).global_admin(*GLOBAL_ADMIN)
        client = ApiClient(self.app, self.settings)
        client.login(*GLOBAL_ADMIN)
        return SavedState(self.directory, self.settings), client.cookie or ""


def _stage(request) -> Stage:
    backend = request.getfixturevalue("backend")
    stages = request.getfixturevalue("_stages")
    stage = stages.get(backend)
    if stage is None:
        folder = request.getfixturevalue("tmp_path_factory").mktemp(f"stage-{backend}")
        templates = request.getfixturevalue("sqlite_templates")
        if backend == "mock":
            directory = mock_directory()
        else:
            # Emptied first: the stage's start is the bare tree, whatever an
            # earlier test of this worker left on the session's slapd.
            server = request.getfixturevalue("slapd_clean")
            directory = Directory(server.uri, server.root_dn, server.root_password)
        stage = stages[backend] = Stage(folder, directory, templates)
    return stage


def _stage_of(request, settings: Settings) -> Stage | None:
    """The stage whose settings these are, if any."""
    if "backend" not in request.fixturenames:
        return None
    stage = request.getfixturevalue("_stages").get(request.getfixturevalue("backend"))
    return stage if stage is not None and stage.settings is settings else None


@pytest.fixture
def stage(request, settings) -> Stage | None:
    """The `Stage` the test's default fixtures come from, or None."""
    return _stage_of(request, settings)


@pytest.fixture(scope="session")
def _stages():
    stages: dict[str, Stage] = {}
    yield stages
    for stage in stages.values():
        stage.start.close()
        if stage.signed_in is not None:
            stage.signed_in[0].close()
        stage.directory.close()


# -- a world built once, laid down again for each test ------------------------------

class SavedState:
    """What the directory and the three SQLite files held at one moment.  A
    module whose tests each need the same costly world builds it once, saves
    it, and `restore`s it for each test: every test still starts on its own
    copy, as if it had built the world.

    On ldap3's mock the entries are copied as they are; on a slapd they are
    read back (user attributes, values as stored) and added again in tree
    order after the tree is emptied, so operational attributes such as
    entryUUID and the timestamps are new ones."""

    def __init__(self, directory: Directory, settings: Settings):
        self.suffix = settings.ldap_suffix
        dit = getattr(directory._server, "dit", None)
        self.mock_entries = copy.deepcopy(dit) if dit is not None else None
        self.entries: list[tuple[str, dict[str, list[bytes]]]] = []
        if dit is None:
            conn = directory._connection()
            conn.search(self.suffix, "(objectClass=*)", ldap3.SUBTREE, attributes=[ldap3.ALL_ATTRIBUTES])
            found = [(e["dn"], dict(e["raw_attributes"])) for e in conn.response if e.get("type") == "searchResEntry"]
            self.entries = sorted(found, key=lambda item: len(ldap3.utils.dn.to_dn(item[0])))
        from .fixtures_slapd import add_request
        # Each entry's add request, encoded once (fixtures_slapd: laid down thousands of times a run).
        self.add_requests = [(dn, add_request(dn, attrs)) for dn, attrs in self.entries]
        self.databases: dict[str, sqlite3.Connection] = {}
        for kind in SQLITE_FILES:
            live = sqlite3.connect(_sqlite_path(getattr(settings, f"sql_{kind}_url")))
            kept = sqlite3.connect(":memory:")
            try:
                live.backup(kept)       # what readers see, the write-ahead log included
            finally:
                live.close()
            self.databases[kind] = kept

    def restore(self, directory: Directory, settings: Settings, *, over: bool = False) -> None:
        """Into `directory` and the SQLite files of `settings`.  Without
        `over` the files must not exist yet (restore before the app is made);
        with it, they are overwritten in place -- no transaction may be open
        on them (between requests, the app's pooled connections hold none)."""
        if self.mock_entries is not None:
            dit = directory._server.dit
            dit.clear()
            dit.update(copy.deepcopy(self.mock_entries))
        else:
            from .fixtures_slapd import add_encoded, wipe_tree

            conn = directory._connection()
            wipe_tree(conn, self.suffix)
            for dn, request in self.add_requests:
                add_encoded(conn, dn, request)
        for kind, kept in self.databases.items():
            path = Path(_sqlite_path(getattr(settings, f"sql_{kind}_url")))
            if path.exists() and not over:
                raise RuntimeError(f"{path} is open already: restore before the app is made")
            if not path.exists():
                create_private(path)
            target = sqlite3.connect(path)
            try:
                kept.backup(target)
            finally:
                target.close()

    def close(self) -> None:
        for kept in self.databases.values():
            kept.close()


def _sqlite_path(url: str) -> str:
    u = make_url(url)
    assert u.get_backend_name() == "sqlite" and u.database, url
    return u.database


@pytest.fixture
def factory(directory, settings) -> Factory:
    return Factory(directory, settings)


@pytest.fixture
def client(app, settings) -> ApiClient:
    return ApiClient(app, settings)


GLOBAL_ADMIN = ("root@admins.test", "R00t#secret")


@pytest.fixture
def global_admin(factory, stage) -> tuple[str, str]:
    if stage is not None and stage.signed_in_laid and factory.dir is stage.directory:
        return GLOBAL_ADMIN     # laid down with the stage's signed-in start
    return factory.global_admin(*GLOBAL_ADMIN)


@pytest.fixture
def api(client, global_admin, stage) -> ApiClient:
    """A client logged in as a global admin."""
    if stage is not None and stage.signed_in_laid and client.client.app is stage.app:
        client.cookie = stage.signed_in[1]      # the session laid down with it
        return client
    client.login(*global_admin)
    return client


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel` builds of this checkout, built once per test process
    (test_packaging looks into it, test_plain_install installs it)."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                    str(Path(__file__).resolve().parent.parent)], check=True, capture_output=True, timeout=300)
    return next(dist.glob("iredldap-*.whl"))
