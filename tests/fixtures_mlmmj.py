"""Fixtures for mlmmj (subscribable) lists.

* ``local_spool`` -- a `LocalSpool` on an empty spool and archive folder
  under the test's tmp_path (texts from Debian's mlmmj package).
* ``fake_mlmmjadmin`` -- a running `tests.fake_mlmmjadmin.FakeMlmmjadmin`
  (127.0.0.1, a free port) keeping its lists in its own `LocalSpool`; it
  records each request, `stop()` makes it unreachable, `garbage = True`
  makes it answer nonsense.  Stopped after the test.
* ``mlmmjadmin_client`` -- a `MlmmjadminClient` talking to it.
* ``list_spool`` -- both backends in turn (``local`` and ``mlmmjadmin``), as
  a `SpoolUnderTest`: the ListSpool and the `LocalSpool` whose files it
  ends up writing.

Registered as a plugin (``pytest_plugins`` in conftest.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from iredldap.mlmmj import ListSpool
from iredldap.mlmmj.mlmmjadmin import MlmmjadminClient
from iredldap.mlmmj.spool import LocalSpool

from .fake_mlmmjadmin import HEADER, FakeMlmmjadmin

DEBIAN_SKEL = Path("/usr/share/mlmmj/text.skel")
MLMMJ_BIN = Path("/usr/bin")


def spool_in(folder: Path, **options) -> LocalSpool:
    """A LocalSpool with its spool and archive in `folder` (made here)."""
    for name in ("spool", "archive"):
        (folder / name).mkdir(mode=0o700, parents=True, exist_ok=True)
    assert (DEBIAN_SKEL / "en").is_dir(), "mlmmj's texts missing: apt-get install mlmmj (scripts/test does)"
    return LocalSpool(folder / "spool", folder / "archive", DEBIAN_SKEL, **options)


@dataclass
class SpoolUnderTest:
    name: str
    spool: ListSpool
    files: LocalSpool
    fake: FakeMlmmjadmin | None = None


@pytest.fixture
def local_spool(tmp_path) -> LocalSpool:
    return spool_in(tmp_path / "local")


@pytest.fixture
def fake_mlmmjadmin(tmp_path):
    fake = FakeMlmmjadmin(spool_in(tmp_path / "mlmmjadmin")).start()
    yield fake
    fake.stop()


@pytest.fixture
def mlmmjadmin_client(fake_mlmmjadmin) -> MlmmjadminClient:
    return MlmmjadminClient(fake_mlmmjadmin.url, fake_mlmmjadmin.token, header=HEADER, timeout=5)


@pytest.fixture(params=["local", "mlmmjadmin"])
def list_spool(request) -> SpoolUnderTest:
    if request.param == "local":
        spool = request.getfixturevalue("local_spool")
        return SpoolUnderTest("local", spool, spool)
    fake = request.getfixturevalue("fake_mlmmjadmin")
    return SpoolUnderTest("mlmmjadmin", request.getfixturevalue("mlmmjadmin_client"), fake.spool, fake)
