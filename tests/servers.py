"""Processes the tests start themselves (gunicorn, nginx, the demo): on free
127.0.0.1 ports, waited for within a bound, stopped by the PID they got."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from iredldap.directory import localslapd


def free_port() -> int:
    """A free 127.0.0.1 port below the kernel's ephemeral range, so a server
    stopped and started again on it finds it still free."""
    return localslapd.free_port("127.0.0.1")


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> int:
    """Poll `url` until it answers (any HTTP status); that status.  Fails if
    `proc` exits first or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process we started (and its group, if it leads one)."""
    if proc.poll() is not None:
        return
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
