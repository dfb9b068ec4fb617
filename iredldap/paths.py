"""Where the files shipped beside the code are: the schema and the LDIF templates.

In a checkout they sit at the top of the tree (`schema/`, `ldif_templates/`);
after `pip install .` setuptools has copied them into the package as
`iredldap.data.schema` and `iredldap.data.ldif_templates`.
"""

from __future__ import annotations

import importlib.resources
from functools import cache
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _find(folder: str, marker: str) -> Path:
    in_checkout = _CHECKOUT / folder
    if (in_checkout / marker).is_file():
        return in_checkout
    # The data folders have no __init__.py, so `files()` may give a
    # namespace-package MultiplexedPath: ask it for the marker file itself.
    installed = Path(str(importlib.resources.files(f"iredldap.data.{folder}").joinpath(marker)))
    if installed.is_file():
        return installed.parent
    raise FileNotFoundError(f"cannot find {folder}/{marker} beside the iredldap package")


@cache
def schema_dir() -> Path:
    return _find("schema", "iredmail.schema")


@cache
def templates_dir() -> Path:
    return _find("ldif_templates", "domain.ldif")
