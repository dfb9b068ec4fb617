"""`pip install .` (not only an editable install) gives a working service."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# a wheel built with pip
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_schema_and_templates_and_they_are_found(tmp_path, project_wheel):
    wheel = project_wheel
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("iredldap/data/schema/iredmail.schema", "iredldap/data/schema/iredmail.ldif",
                    "iredldap/data/schema/amavis.schema", "iredldap/data/schema/indexes.conf",
                    "iredldap/data/ldif_templates/domain.ldif", "iredldap/data/ldif_templates/user.ldif"):
        assert shipped in names, shipped

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    probe = (
        "import iredldap, iredldap.paths as p, iredldap.model.templates as t, iredldap.cli;"
        "assert iredldap.__file__.startswith(%r), iredldap.__file__;"
        "print(p.schema_dir()); print(t.load('domain').object_classes)"
    ) % str(site)
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(site)},
                         check=True, capture_output=True, text=True).stdout.splitlines()
    assert out[0] == str(site / "iredldap" / "data" / "schema")
    assert out[1] == "('mailDomain',)"
