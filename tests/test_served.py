"""The service as shipped: gunicorn with gunicorn.conf.py on a private slapd,
faced with slow and odd clients.

Each test talks to a gunicorn this module starts on a free 127.0.0.1 port and
stops (by its PID) afterwards; every socket read has a timeout, so a stalled
server fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.base import init_tree
from iredldap.directory.connection import Directory
from iredldap.backends import tree_of

from .conftest import make_settings
from .servers import free_port

# gunicorn processes on the session's slapd; under pytest-xdist one worker runs
# the module, so its gunicorn is started once (session-scoped, as xdist may run
# other modules' tests between these)
pytestmark = [pytest.mark.slapd, pytest.mark.servers]

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"



def request(port: int, method: str, path: str, body: bytes | None = None, headers=None, timeout: float = 5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send `data` as is and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def parse(answer: bytes) -> tuple[int, dict, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def service_env(slapd, tmp):
    """(environment, settings) for a service on the private slapd, its tree and tables made."""
    settings = make_settings(tmp, ldap_uri=slapd.uri, ldap_bind_dn=slapd.root_dn,
                             ldap_bind_password=slapd.root_password)
    IredadminDB(make_engine(settings.sql_iredadmin_url)).create_tables()
    directory = Directory(slapd.uri, slapd.root_dn, slapd.root_password)
    init_tree(directory, tree_of(settings))
    directory.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IREDLDAP_")}
    env.update({
        "IREDLDAP_LDAP_URI": slapd.uri,
        "IREDLDAP_LDAP_BIND_DN": slapd.root_dn,
        "IREDLDAP_LDAP_BIND_PASSWORD": slapd.root_password,
        "IREDLDAP_LDAP_SUFFIX": settings.ldap_suffix,
        "IREDLDAP_SQL_IREDADMIN_URL": settings.sql_iredadmin_url,
        "IREDLDAP_SQL_AMAVISD_URL": settings.sql_amavisd_url,
        "IREDLDAP_SQL_IREDAPD_URL": settings.sql_iredapd_url,
        "IREDLDAP_SECRET_KEY": settings.secret_key,
    })
    return env, settings


@contextlib.contextmanager
def running(command: list[str], env: dict, port: int, logfile: Path):
    """Start `command` (a gunicorn), wait until /healthz answers, stop it by its PID afterwards."""
    with open(logfile, "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, logfile.read_text()
                try:
                    if request(port, "GET", "/healthz", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "gunicorn did not start: " + logfile.read_text()
                time.sleep(0.2)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture(scope="session")
def served(slapd, tmp_path_factory):
    """(port, settings, log file) of a gunicorn started with the shipped gunicorn.conf.py."""
    tmp = tmp_path_factory.mktemp("served")
    env, settings = service_env(slapd, tmp)
    port = free_port()
    # Only the address differs from the shipped configuration.
    command = [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}"]
    with running(command, env, port, tmp / "gunicorn.log"):
        yield port, settings, tmp / "gunicorn.log"


def test_shipped_config_uses_threaded_workers(served):
    port, _, logfile = served
    assert "Using worker: iredldap.gunicorn_worker.ThreadWorker" in logfile.read_text()


# Stalled clients: more than the sync workers the old configuration started on
# a 2-core machine (2 × cores + 1 = 5), fewer than the threads of the new one.
STALLED = 6


def test_clients_stalled_in_their_header_do_not_stall_the_service(served):
    port = served[0]
    stalled = []
    try:
        for _ in range(STALLED):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
            stalled.append(s)
        time.sleep(0.5)
        for _ in range(3):          # repeatably, not once by luck
            start = time.monotonic()
            status, _, body = request(port, "POST", "/api/login",
                                      body=b"username=nobody%40x.test&password=wrong",
                                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=3)
            assert status == 401 and json.loads(body)["_msg"] == "INVALID_CREDENTIALS"
            assert request(port, "GET", "/healthz", timeout=3)[0] == 200
            assert time.monotonic() - start < 3
    finally:
        for s in stalled:
            s.close()


def test_oversized_body_is_refused_unread_and_the_connection_closed(served):
    port = served[0]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        # Announces 50 MiB, sends 1 KiB: the answer must come without the rest.
        s.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 52428800\r\n\r\n" + b" " * 1024)
        answer = b""
        start = time.monotonic()
        while time.monotonic() - start < 5:
            chunk = s.recv(65536)
            if not chunk:
                break          # closed by the server: it does not wait to drain 50 MiB
            answer += chunk
        else:
            pytest.fail("the connection was kept open after a 413")
    status, headers, body = parse(answer)
    assert status == 413
    assert json.loads(body) == {"_success": False, "_msg": "REQUEST_TOO_LARGE",
                                "reason": "the request body is 52428800 bytes; at most 1048576 are accepted"}


def test_chunked_body_is_read_up_to_the_limit_only(served):
    port = served[0]
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"   # 1.25 MiB
    answer = raw_exchange(port, b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    status, _, payload = parse(answer)
    assert status == 413 and json.loads(payload)["_msg"] == "REQUEST_TOO_LARGE"


def test_small_chunked_body_is_read(served):
    port = served[0]
    data = b'{"username": "nobody@x.test", "password": "wrong"}'
    answer = raw_exchange(port, b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                + b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
    status, _, payload = parse(answer)
    # The parameters arrived (no MISSING_PARAMETER): the credentials were checked.
    assert status == 401 and json.loads(payload)["_msg"] == "INVALID_CREDENTIALS"


def test_request_line_too_long_answers_json(served):
    port = served[0]
    answer = raw_exchange(port, b"GET /api/domains?search=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = parse(answer)
    assert status == 414
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["_success"] is False and doc["_msg"] == "REQUEST_LINE_TOO_LONG"


def test_too_many_header_fields_answer_json(served):
    port = served[0]
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(60))
    answer = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    status, headers, body = parse(answer)
    assert status == 431 and headers["content-type"] == "application/json"
    assert json.loads(body)["_msg"] == "HEADERS_TOO_LARGE"


def test_malformed_request_line_answers_json(served):
    port = served[0]
    answer = raw_exchange(port, b"GET /healthz HTTP/9.9 extra\r\nHost: x\r\n\r\n")
    status, headers, body = parse(answer)
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["_success"] is False


def test_head_and_made_up_methods_through_gunicorn(served):
    port = served[0]
    status, headers, body = request(port, "HEAD", "/healthz")
    assert status == 200 and body == b""
    status, headers, body = request(port, "FOO", "/api/login")
    assert status == 405 and json.loads(body)["_msg"] == "METHOD_NOT_ALLOWED"
    assert headers["allow"] == "POST, OPTIONS"


def test_iredldap_serve_without_a_config_file_uses_the_threaded_worker(slapd, tmp_path):
    env, _ = service_env(slapd, tmp_path)
    port = free_port()
    command = [str(Path(sys.executable).parent / "iredldap"), "serve", "--bind", f"127.0.0.1:{port}"]
    with running(command, env, port, tmp_path / "serve.log"):
        stalled = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(STALLED)]
        try:
            for s in stalled:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
            time.sleep(0.5)
            assert request(port, "GET", "/healthz", timeout=3)[0] == 200
        finally:
            for s in stalled:
                s.close()
    assert "Using worker: iredldap.gunicorn_worker.ThreadWorker" in (tmp_path / "serve.log").read_text()


def test_a_busy_kept_alive_client_does_not_keep_the_only_thread(slapd, tmp_path):
    """One worker with one thread: a client sending request after request on
    its kept-alive connection is answered by that thread in a row (see
    ThreadWorker.handle), but only NEXT_REQUESTS_HELD at a time, so a second
    client's request is answered meanwhile, not after the first one stops."""
    import threading

    from iredldap.gunicorn_worker import NEXT_REQUESTS_HELD
    env, _ = service_env(slapd, tmp_path)
    env.update(IREDLDAP_WORKERS="1", IREDLDAP_THREADS="1")
    port = free_port()
    command = [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}"]
    with running(command, env, port, tmp_path / "gunicorn.log"):
        stop = threading.Event()
        answered: list[int] = []

        def busy() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                while not stop.is_set():
                    conn.request("GET", "/healthz")
                    resp = conn.getresponse()
                    resp.read()
                    answered.append(resp.status)
            finally:
                conn.close()
        client = threading.Thread(target=busy)
        client.start()
        try:
            deadline = time.monotonic() + 10
            while len(answered) < 3 * NEXT_REQUESTS_HELD and time.monotonic() < deadline:
                time.sleep(0.01)
            waits = []
            for _ in range(3):
                start = time.monotonic()
                assert request(port, "GET", "/healthz", timeout=5)[0] == 200
                waits.append(time.monotonic() - start)
            still_busy = client.is_alive()
        finally:
            stop.set()
            client.join(10)
    assert still_busy and len(answered) >= 3 * NEXT_REQUESTS_HELD and set(answered) == {200}, answered[-5:]
    assert max(waits) < 1.0, waits
