"""Prometheus metrics: requests per endpoint and status, their latency, and
LDAP and SQL errors.

    iredldap_http_requests_total{method, endpoint, status}
    iredldap_http_request_duration_seconds{method, endpoint, status}   (histogram)
    iredldap_ldap_errors_total{code}       e.g. DIRECTORY_UNAVAILABLE, NO_SUCH_ACCOUNT
    iredldap_sql_errors_total{code}        DATABASE_UNAVAILABLE or DATABASE_ERROR
    iredldap_ldap_failovers_total{from_server, to_server}
                                           connections moved from one directory
                                           server (LDAP_URI lists several) to
                                           another: away from a failed one, or
                                           back to an earlier listed one

`endpoint` is the route's URI template (`/api/user/{mail}`), never the
concrete path, and `method` one of the standard methods or `other`, so the
number of series stays bounded whatever clients send; requests no route
matched count as `unmatched`.  Error counts come from the two places where
ldap3 and SQLAlchemy errors become ours (`Directory._translated`,
`iredldap.db.engine.Database`), which call `count_error` -- this module imports no
falcon, so the store layers may use it.

gunicorn runs several worker processes.  Without PROMETHEUS_MULTIPROC_DIR
each worker counts on its own and `/metrics` shows the counters of the
worker that happened to answer.  With PROMETHEUS_MULTIPROC_DIR set (in the
environment of gunicorn, to an empty folder that is emptied at every start of
the service, e.g. systemd's RuntimeDirectory) the workers write their
counters there and `/metrics` adds up all workers -- prometheus_client's
multiprocess mode.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               disable_created_metrics, generate_latest)

# No `*_created` series beside every counter: they only double the output.
disable_created_metrics()

REQUESTS = Counter("iredldap_http_requests", "HTTP requests answered", ("method", "endpoint", "status"))
LATENCY = Histogram("iredldap_http_request_duration_seconds", "Time to answer an HTTP request",
                    ("method", "endpoint", "status"),
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
LDAP_ERRORS = Counter("iredldap_ldap_errors", "LDAP operations that failed, by our error code", ("code",))
SQL_ERRORS = Counter("iredldap_sql_errors", "SQL statements that failed, by our error code", ("code",))

FAILOVERS = Counter("iredldap_ldap_failovers", "Connections moved to another directory server",
                    ("from_server", "to_server"))

_ERRORS = {"ldap": LDAP_ERRORS, "sql": SQL_ERRORS}
# Any other method a client makes up is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def count_error(source: str, code: str) -> None:
    """One failed LDAP (`source` "ldap") or SQL ("sql") operation; never raises."""
    try:
        _ERRORS[source].labels(code=code).inc()
    except Exception:      # pragma: no cover - metrics must never break a request
        pass


def count_failover(from_server: str, to_server: str) -> None:
    """A connection moved from one directory server (its URI) to another; never raises."""
    try:
        FAILOVERS.labels(from_server=from_server, to_server=to_server).inc()
    except Exception:      # pragma: no cover - metrics must never break a request
        pass


def observe_request(method: str, endpoint: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "other"
    REQUESTS.labels(method=method, endpoint=endpoint, status=str(status)).inc()
    LATENCY.labels(method=method, endpoint=endpoint, status=str(status)).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class RequestMetrics:
    """Middleware: counts every request and its latency (first in the chain,
    so its clock covers all the others)."""

    def __init__(self, url_prefix: str = ""):
        self.url_prefix = url_prefix

    def process_request(self, req, resp) -> None:
        req.context.metrics_start = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        start = getattr(req.context, "metrics_start", None)
        if start is None:
            return
        template = req.uri_template if resource is not None else None
        endpoint = template[len(self.url_prefix):] if template else "unmatched"
        try:
            observe_request(req.method, endpoint, resp.status_code, time.perf_counter() - start)
        except Exception:      # pragma: no cover - metrics must never break a request
            pass


_FAMILIES = {"iredldap_http_requests": REQUESTS, "iredldap_http_request_duration_seconds": LATENCY,
             "iredldap_ldap_errors": LDAP_ERRORS, "iredldap_sql_errors": SQL_ERRORS}


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of a sample in this process (for tests and the CLI).

    Collects only the family the sample belongs to: the whole registry, with a
    latency histogram per endpoint, method and status, is much slower."""
    labels = labels or {}
    family = next((metric for base, metric in _FAMILIES.items() if name.startswith(base)), None)
    if family is None:
        return REGISTRY.get_sample_value(name, labels) or 0.0
    for collected in family.collect():
        for s in collected.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0
