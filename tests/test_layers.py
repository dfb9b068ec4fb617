"""The layers can be seen in the folders, and a test holds them.

`iredldap/web/` is the only package that may import falcon.  Nothing below
it (the model, the stores, the shared modules) imports falcon or the web
package; only the entry points (`wsgi`, `cli`) sit above it and may.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "iredldap"
ENTRY_POINTS = {"wsgi.py", "cli.py"}
WEB = "iredldap.web"


def _module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, relative imports made absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_of(path) if path.name == "__init__.py" else _module_of(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _below_web() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if not p.relative_to(PACKAGE).parts[0] == "web"
                  and not (p.parent == PACKAGE and p.name in ENTRY_POINTS))


@pytest.mark.parametrize("path", _below_web(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_below_the_web_layer_imports_falcon_or_the_web_package(path):
    bad = sorted(m for m in _imports(path)
                 if m == "falcon" or m.startswith("falcon.") or m == WEB or m.startswith(WEB + "."))
    assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {bad}"


def test_the_check_sees_an_offending_import(tmp_path, monkeypatch):
    # The test above must be able to fail: a module importing falcon is caught,
    # also when the import is relative or inside a function.
    fake = tmp_path / "iredldap" / "model" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from ..web import app\n    import falcon\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "PACKAGE", tmp_path / "iredldap")
    assert {"falcon", "iredldap.web", "iredldap.web.app"} <= _imports(fake)


def test_the_model_talks_to_no_server():
    # The model (account types, parameters, validators, passwords) describes
    # what is written; the stores talk to the servers.  ldap3's pure helpers
    # (DN and filter escaping) are allowed, its connections and SQL are not.
    for path in sorted((PACKAGE / "model").rglob("*.py")):
        bad = sorted(m for m in _imports(path)
                     if (m.split(".")[0] == "ldap3" and not m.startswith("ldap3.utils"))
                     or m.split(".")[0] == "sqlalchemy"
                     or m.startswith(("iredldap.directory", "iredldap.db", "iredldap.mlmmj")))
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {bad}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "web" / "responders").glob("*.py")), ids=lambda p: p.name)
def test_responder_modules_do_not_import_each_other(path):
    # What several responders share lives in iredldap/web/common.py.
    bad = sorted(m for m in _imports(path) if m.startswith("iredldap.web.responders."))
    assert not bad, f"{path.name} imports {bad}"
