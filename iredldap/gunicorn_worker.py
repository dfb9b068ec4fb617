"""gunicorn's threaded worker, answering malformed requests in our JSON envelope.

gunicorn.conf.py names `iredldap.gunicorn_worker.ThreadWorker` as the worker
class (gunicorn takes any subclass of its workers there).  It is gunicorn's
`gthread` worker with two differences:

* A request gunicorn itself refuses before the app sees it -- a request line
  over `limit_request_line` (414), too many or too large header fields (431),
  a malformed request line, header or chunk (400) -- is answered with
  `{"_success": false, "_msg": CODE, "reason": ...}` instead of gunicorn's
  HTML page.  Anything else goes to gunicorn's own handling.
* A connection whose request body was not read to its end (the app refused it
  unread: 413) is closed instead of kept alive, so gunicorn does not read and
  discard a body of any size before the next request.
* After answering on a kept-alive connection, the thread waits a moment
  (NEXT_REQUEST_WAIT) for the client's next request and answers it itself,
  up to NEXT_REQUESTS_HELD requests in a row.  gunicorn hands every kept-alive
  connection back to its main thread's poller, which hands the next request
  to a thread again: two hand-offs between threads (a pipe, a queue, a future)
  cost a request more CPU than its own work.  A client that sends nothing
  within the moment goes back to the poller as before; one that goes on
  sending still does so after NEXT_REQUESTS_HELD, so no client keeps a thread
  for good while other connections wait for one.

Both hook into gunicorn methods that are not a documented API
(`handle_error`, `handle_request`, the body readers); where gunicorn changes
them the hooks fall back to gunicorn's default behaviour.
"""

from __future__ import annotations

import json
import os
import select

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.workers import gthread

# Serving defaults (gunicorn.conf.py, `iredldap serve`, the demo).  Measured
# on iRedMail's slapd (bench/users.py): throughput is best at about two
# worker processes per core -- each request mostly waits on slapd or the
# database -- and more threads per worker add nothing to it.  The threads
# are there for slow clients: one that stalls in its request holds a
# thread, not a worker.  They are not fewer than 8 because stalled
# connections need not spread over the workers: one worker may accept all
# of them and must still have a thread for the next request.
WORKERS_PER_CORE = 2
MAX_DEFAULT_WORKERS = 8
DEFAULT_THREADS = 8

# See ThreadWorker.handle.
NEXT_REQUEST_WAIT = 0.005
NEXT_REQUESTS_HELD = 16


def default_workers(cores: int | None = None) -> int:
    """About two workers per core: at least 2, at most MAX_DEFAULT_WORKERS."""
    if cores is None:
        cores = os.cpu_count() or 1
    return max(2, min(WORKERS_PER_CORE * cores, MAX_DEFAULT_WORKERS))


# gunicorn's exception -> (status, reason phrase, our code).
_REFUSALS: tuple[tuple[tuple[type[Exception], ...], int, str, str], ...] = (
    ((http_errors.LimitRequestLine,), 414, "URI Too Long", "REQUEST_LINE_TOO_LONG"),
    ((http_errors.LimitRequestHeaders,), 431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE"),
    (tuple(getattr(http_errors, name) for name in (
        "InvalidRequestLine", "InvalidRequestMethod", "InvalidHTTPVersion", "InvalidHeader",
        "InvalidHeaderName", "ObsoleteFolding", "InvalidChunkSize", "ChunkMissingTerminator",
        "InvalidChunkExtension") if hasattr(http_errors, name)),
     400, "Bad Request", "INVALID_REQUEST"),
)


def refusal_of(exc: Exception) -> tuple[int, str, str] | None:
    for classes, status, reason, code in _REFUSALS:
        if isinstance(exc, classes):
            return status, reason, code
    return None


def json_error(status: int, reason: str, code: str, detail: str) -> bytes:
    body = json.dumps({"_success": False, "_msg": code, "reason": detail}).encode("ascii")
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def body_left(req) -> bool:
    """Whether some of the request's body is still unread on the socket."""
    reader = getattr(getattr(req, "body", None), "reader", None)
    if isinstance(reader, LengthReader):
        return reader.length > 0
    if isinstance(reader, ChunkedReader):
        return reader.parser is not None
    return False


def _readable(sock, timeout: float) -> bool:
    """Whether the socket has bytes to read (or its end) within `timeout` seconds."""
    try:
        return bool(select.select([sock], [], [], timeout)[0])
    except (OSError, ValueError):    # closed meanwhile
        return False


class ThreadWorker(gthread.ThreadWorker):
    def handle(self, conn):
        """gunicorn's handling of one request on `conn`; then, while the
        connection stays open and the client's next request arrives within
        NEXT_REQUEST_WAIT, that one too (NEXT_REQUESTS_HELD at most)."""
        for _ in range(NEXT_REQUESTS_HELD):
            keepalive = super().handle(conn)
            if keepalive is not True or not self.alive:
                return keepalive
            if not conn.parser.unreader.buf.getvalue() and not _readable(conn.sock, NEXT_REQUEST_WAIT):
                return keepalive
            # (The next request is here: read in this thread, as a connection
            # the poller found readable is.)
            conn.data_ready = True
        return keepalive

    def handle_error(self, req, client, addr, exc):
        refused = refusal_of(exc)
        if refused is None:
            return super().handle_error(req, client, addr, exc)
        status, reason, code = refused
        ip = (addr or ("", -1))[0]
        self.log.warning("Invalid request from ip=%s: %s", ip, exc)
        # gunicorn's messages name the limit or the malformed part, never a
        # header value; cut anyway (a request line can be long).
        detail = f"{reason}: {str(exc)[:200]}"
        try:
            util.write_nonblock(client, json_error(status, reason, code, detail))
        except Exception:
            self.log.debug("Failed to send error message.")

    def handle_request(self, req, conn):
        keepalive = super().handle_request(req, conn)
        if keepalive and body_left(req):
            return False
        return keepalive
