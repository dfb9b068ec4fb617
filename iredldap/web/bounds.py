"""Bounded input and odd requests: body size, JSON depth, HEAD, unknown methods.

`BodyLimit` refuses a body over MAX_REQUEST_BODY with 413 before reading it
(from Content-Length), a body shorter than its Content-Length with 400, and
reads a chunked body (no Content-Length) only up to the limit (JSON nested
too deep for Python's parser is a malformed body, 400, through
`model/json_text.loads`, which app.py gives falcon).  `json_dumps`
answers even when a message quotes a lone surrogate a client sent.  `Methods`
answers HEAD with the GET responder and its access rule (falcon routes HEAD
only to an `on_head`), and answers a method falcon does not know (`FOO`)
like any method the route lacks: 405 with an Allow header, not 400.
"""

from __future__ import annotations

import io
import json

import falcon

from iredldap.errors import InvalidInput, RequestTooLarge

_READ_CHUNK = 64 * 1024


def json_dumps(value) -> bytes:
    """UTF-8 JSON; with \\u escapes where a value holds a lone surrogate (an
    error message naming what a client sent), which UTF-8 cannot encode."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value).encode("ascii")


class BodyLimit:
    """Middleware: no request body over `max_bytes` is read."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        length = req.content_length            # a malformed header is falcon's 400
        if length is not None:
            if length > self.max_bytes:
                raise RequestTooLarge(f"the request body is {length} bytes; at most {self.max_bytes} are accepted")
            if length:
                # Read now, so a body cut short (the client hung up) is refused
                # instead of being taken for the whole: falcon's bounded stream
                # would hand its first bytes over as a complete form.
                body = _read_up_to(req.stream, length)
                if len(body) < length:
                    raise InvalidInput(f"the request body ended after {len(body)} of the {length} bytes "
                                       f"its Content-Length announced", code="INVALID_REQUEST")
                req.env["wsgi.input"] = req.stream = io.BytesIO(body)
            return
        if "chunked" not in (req.get_header("Transfer-Encoding") or "").lower():
            return
        # No length announced: read at most one byte more than allowed, then
        # hand falcon the body as if it had come with a Content-Length (its
        # bounded stream reads nothing of a body without one).
        data = bytearray()
        while len(data) <= self.max_bytes:
            chunk = req.stream.read(min(_READ_CHUNK, self.max_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        if len(data) > self.max_bytes:
            raise RequestTooLarge(f"the request body is over {self.max_bytes} bytes")
        req.env["wsgi.input"] = req.stream = io.BytesIO(bytes(data))
        req.env["CONTENT_LENGTH"] = str(len(data))


def _read_up_to(stream, length: int) -> bytes:
    """Up to `length` bytes of `stream`, fewer only if it ends (or breaks) first."""
    data = bytearray()
    while len(data) < length:
        try:
            chunk = stream.read(min(_READ_CHUNK, length - len(data)))
        except OSError:     # (the connection broke)
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


# Stands in for a method falcon does not know: one no resource implements,
# so falcon's own 405 responder answers, with the route's Allow header.
_UNIMPLEMENTED = "CONNECT"
_KNOWN = frozenset(falcon.COMBINED_METHODS) - {"WEBSOCKET"}


class Methods:
    """Middleware: HEAD as GET, unknown methods as not allowed.

    The method is swapped before routing and put back in process_response,
    which runs before falcon sends the answer: falcon then drops the body of
    a HEAD answer, and the metrics and access log see the method as sent.
    Put it right after RequestMetrics (whose process_response runs last).
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        sent = req.method
        if sent == "HEAD":
            req.method = "GET"
        elif sent not in _KNOWN:
            req.method = _UNIMPLEMENTED
        else:
            return
        req.context.method_sent = sent

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        sent = getattr(req.context, "method_sent", None)
        if sent is not None:
            req.method = sent
        allow = resp.get_header("Allow")
        if allow:
            methods = [m.strip() for m in allow.split(",")]
            if "GET" in methods and "HEAD" not in methods:
                methods.insert(methods.index("GET") + 1, "HEAD")
                resp.set_header("Allow", ", ".join(methods))
