"""The API's own description.

    GET /api/openapi.json       OpenApiDocument   (the OpenAPI 3.1 document)
    GET /api/docs               DocsPage          (Swagger UI showing it)
    GET /api/docs/<file>        DocsAsset         (Swagger UI's files)

Swagger UI comes from the `swagger-ui-py` package installed beside the
service (its ``swagger_ui/static`` folder), never from a CDN: the page
works on a server without Internet access.  Only its files are used, not
its Python code.  All three are public (iredldap.web.app.ROUTES): the document describes
what the source code and iRedAdmin-Pro's published API already tell, and no
account data; the client-address restriction and ENABLE_RESTFUL_API still
apply, as to every /api URL.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import falcon

from iredldap.errors import NotFound
from iredldap.model.params import Choice, Operation, Param
from iredldap.web.common import ok, read_params

_TYPES = {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".png": "image/png", ".html": "text/html; charset=utf-8"}
_ASSET_TYPES = (".js", ".css", ".png")
# Our page's own script (no inline script, so a strict Content-Security-Policy holds).
_INIT_JS = """window.addEventListener("load", function () {
  var el = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: el.getAttribute("data-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    withCredentials: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>iredldap API</title>
<link rel="stylesheet" href="{docs}/swagger-ui.css">
<link rel="icon" type="image/png" href="{docs}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-url="{document}"></div>
<script src="{docs}/swagger-ui-bundle.js"></script>
<script src="{docs}/iredldap-init.js"></script>
</body>
</html>
"""
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'")


@cache
def swagger_ui_dir() -> Path | None:
    """The folder of Swagger UI's files in the installed swagger-ui-py, or None."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def asset_names() -> tuple[str, ...]:
    folder = swagger_ui_dir()
    # Scripts, styles and icons; not its pages (the OAuth2 redirect page is not used here).
    names = sorted(p.name for p in folder.iterdir() if p.suffix in _ASSET_TYPES) if folder else []
    return tuple(n for n in names if not n.startswith("swagger-editor")) + ("iredldap-init.js",)


class OpenApiDocument:
    """Built on first use from the finished route list (this route included)."""

    operations = {"GET": Operation("The OpenAPI 3.1 document of this API",
                                   content={"application/json": {"type": "object", "required": ["openapi"]}})}

    def __init__(self, build: Callable[[], dict]):
        self._build = build
        self._body: bytes | None = None
        self._lock = threading.Lock()

    def document(self) -> dict[str, Any]:
        return json.loads(self.body())

    def body(self) -> bytes:
        with self._lock:
            if self._body is None:
                self._body = json.dumps(self._build(), indent=1).encode()
            return self._body

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        read_params(req, self.operations["GET"])
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.body()


class DocsPage:
    operations = {"GET": Operation("A page that shows the API document (Swagger UI)",
                                   content={"text/html": {"type": "string"}})}

    def __init__(self, url_prefix: str):
        self.html = _PAGE.format(docs=url_prefix + "/api/docs", document=url_prefix + "/api/openapi.json").encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        read_params(req, self.operations["GET"])
        if swagger_ui_dir() is None:
            raise NotFound("the API docs page needs the swagger-ui-py package")
        resp.content_type = _TYPES[".html"]
        resp.set_header("Content-Security-Policy", _CSP)
        resp.data = self.html


class DocsAsset:
    operations = {"GET": Operation("A file of the docs page (from the installed swagger-ui-py package)",
                                   content={_TYPES[".js"]: {"type": "string"}, _TYPES[".css"]: {"type": "string"},
                                            _TYPES[".png"]: {"type": "string", "contentMediaType": "image/png"}})}

    def __init__(self):
        self.url_params = {"name": Param("name", Choice(asset_names()), "File name")}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        read_params(req, self.operations["GET"])
        if name == "iredldap-init.js":
            data = _INIT_JS.encode()
        else:
            folder = swagger_ui_dir()
            if folder is None or name not in asset_names():
                raise NotFound(f"no such file: {name}")
            data = (folder / name).read_bytes()
        resp.content_type = _TYPES[Path(name).suffix]
        resp.cache_control = ["public", "max-age=86400"]
        resp.data = data


class ApiIndex:
    """`GET /api/`: where to go from here (what a first visitor types)."""

    operations = {"GET": Operation(
        "An index of the API: links to the docs page and the OpenAPI document, and every endpoint",
        data={"type": "object", "required": ["docs", "openapi", "endpoints"],
              "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                             "docs": {"type": "string"}, "openapi": {"type": "string"},
                             "endpoints": {"type": "array", "items": {"type": "string"}}}})}

    def __init__(self, url_prefix: str, document: OpenApiDocument):
        self.url_prefix = url_prefix
        self.document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        from iredldap import __version__

        read_params(req, self.operations["GET"])
        paths = self.document.document()["paths"]
        endpoints = [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops
                     if method in ("get", "post", "put", "delete")]
        ok(resp, {"name": "iredldap", "version": __version__,
                  "docs": self.url_prefix + "/api/docs", "openapi": self.url_prefix + "/api/openapi.json",
                  "endpoints": endpoints})


class Responders:
    """The responders of the API's description, sharing one document (routes: iredldap.web.app)."""

    def __init__(self, url_prefix: str, build: Callable[[], dict]):
        self.document = OpenApiDocument(build)
        self.index = ApiIndex(url_prefix, self.document)
        self.page = DocsPage(url_prefix)
        self.asset = DocsAsset()
