"""Form bodies, and JSON sent as a form.

`curl -d '{"name": "Ann"}'` labels its JSON `application/x-www-form-urlencoded`
(curl's default for -d).  Parsed as a form it would be one parameter named
after the whole JSON text.  A form body cannot start with `{` (a field name
would have to be percent-encoded to hold one), so such a body is read as the
JSON object it is.
"""

from __future__ import annotations

import urllib.parse

import falcon

from iredldap.errors import InvalidInput
from iredldap.model import json_text


class FormOrJsonHandler(falcon.media.URLEncodedFormHandler):
    def _deserialize(self, body: bytes):
        if body.lstrip().startswith(b"{"):
            try:
                return json_text.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise InvalidInput(
                    f"the request body looks like JSON but is not valid JSON ({exc}); send JSON with "
                    "Content-Type: application/json", code="INVALID_REQUEST") from None
        try:
            require_utf8(body.decode("ascii"), "form body")
        except UnicodeDecodeError:
            pass    # not even ASCII: falcon's 400 for a malformed form
        return super()._deserialize(body)


def require_utf8(encoded: str, what: str) -> None:
    """falcon decodes the percent-escapes of a form or query string with
    replacement characters: `name=caf%E9` (a Latin-1 client) would be
    stored as "caf\ufffd".  What is not UTF-8 text (nor a lone surrogate,
    which UTF-8 cannot hold) is refused instead."""
    try:
        urllib.parse.parse_qsl(encoded, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeError:
        raise InvalidInput(f"the {what} holds text that is not UTF-8 (percent-escapes of other bytes)",
                           code="INVALID_REQUEST") from None
