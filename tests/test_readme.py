"""The README's first hour (issue #12, item 7), run as written.

The demo is started as the README says (`iredldap demo`, what scripts/demo
runs) in a scratch folder on free ports; the walkthrough block of the README
is run by bash unchanged (only `API` points at the free port); then its
effects are read back from the directory and the files it wrote.  Also: a
second demo on the busy port refuses before printing anything, and
`--stop` stops the API and slapd it started.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from iredldap.directory.connection import Directory

from .servers import free_port, stop, wait_http

# the demo: a slapd and a gunicorn
pytestmark = [pytest.mark.slapd, pytest.mark.servers]

ROOT = Path(__file__).resolve().parent.parent
IREDLDAP = str(Path(sys.executable).parent / "iredldap")


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- walkthrough -->\n```sh\n(.*?)```", text, re.S)
    assert match, "README has no walkthrough block"
    return match.group(1)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IREDLDAP_")}
    return env


@pytest.fixture
def demo(tmp_path):
    work = tmp_path / "checkout"
    work.mkdir()
    # The walkthrough calls .venv/bin/iredldap, as in a checkout.
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    port = free_port()
    proc = subprocess.Popen([IREDLDAP, "demo", "--dir", "var/demo", "--port", str(port), "--ldap-port", "0"],
                            cwd=work, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        assert wait_http(f"http://127.0.0.1:{port}/api/", proc, timeout=90) == 200
        yield work, port, proc
    finally:
        stop(proc)
        subprocess.run([IREDLDAP, "demo", "--dir", "var/demo", "--stop"], cwd=work, env=_env(),
                       capture_output=True, timeout=60)


def test_walkthrough(demo):
    work, port, proc = demo
    env = {**_env(), "API": f"http://127.0.0.1:{port}/api"}
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=work, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '"_success": false' not in run.stdout, run.stdout
    # The Bearer request at the end listed both domains.
    assert run.stdout.rstrip().endswith("}") and "example.net" in run.stdout.splitlines()[-1]

    settings = dict(line.split(" = ", 1) for line in (work / "var/demo/iredldap.ini").read_text().splitlines()
                    if " = " in line)
    directory = Directory(settings["ldap_uri"], settings["ldap_bind_dn"], settings["ldap_bind_password"])
    base = "o=domains,dc=example,dc=com"
    ann = directory.get(f"mail=ann@example.net,ou=Users,domainName=example.net,{base}")
    assert ann is not None and ann.get("cn") == ["Ann"]
    alias = directory.get(f"mail=info@example.net,ou=Aliases,domainName=example.net,{base}")
    assert alias is not None
    assert "info@example.net" in ann.get("memberOfGroup") or \
        "ann@example.net" in alias.get("mailForwardingAddress")
    for name in ("example.net.ldif", "example.net-cli.ldif"):
        ldif = (work / name).read_text()
        assert "dn: mail=ann@example.net,ou=Users,domainName=example.net," in ldif, name
        assert "# end of iredldap export" in ldif
    tokens = subprocess.run([IREDLDAP, "--config", "var/demo/iredldap.ini", "token", "list"], cwd=work,
                            env=_env(), capture_output=True, text=True, timeout=60)
    assert tokens.returncode == 0 and "walkthrough" in tokens.stdout, tokens.stdout + tokens.stderr


def test_second_demo_on_a_busy_port_refuses_before_printing(demo):
    work, port, proc = demo
    second = subprocess.run([IREDLDAP, "demo", "--dir", "var/demo", "--port", str(port), "--ldap-port", "0"],
                            cwd=work, env=_env(), capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert second.stdout == ""
    assert second.stderr.count("\n") == 1 and f"port {port}" in second.stderr
    assert "already running" in second.stderr and "--stop" in second.stderr
    assert proc.poll() is None   # the first demo still serves
    assert wait_http(f"http://127.0.0.1:{port}/api/", timeout=10) == 200


def test_stop_stops_the_api_and_slapd(demo):
    work, port, proc = demo
    ldap_uri = [l for l in (work / "var/demo/iredldap.ini").read_text().splitlines() if l.startswith("ldap_uri")]
    stopped = subprocess.run([IREDLDAP, "demo", "--dir", "var/demo", "--stop"], cwd=work, env=_env(),
                             capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the demo API (gunicorn pid {proc.pid})" in stopped.stdout
    assert "stopped the demo slapd" in stopped.stdout
    assert proc.wait(timeout=30) is not None
    with pytest.raises(AssertionError):
        wait_http(f"http://127.0.0.1:{port}/api/", timeout=2)
    port_ldap = int(ldap_uri[0].rsplit(":", 1)[1])
    import socket
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port_ldap), timeout=2).close()
    again = subprocess.run([IREDLDAP, "demo", "--dir", "var/demo", "--stop"], cwd=work, env=_env(),
                           capture_output=True, text=True, timeout=60)
    assert "the demo API was not running" in again.stdout and "the demo slapd was not running" in again.stdout


def test_cli_finds_the_demo_settings_and_names_the_file(demo, tmp_path):
    work, port, proc = demo
    # Without IREDLDAP_CONFIG the error says so (and which file would be read).
    bare = subprocess.run([IREDLDAP, "token", "list"], cwd=work, env=_env(), capture_output=True, text=True,
                          timeout=60)
    assert bare.returncode == 2
    assert "LDAP_SUFFIX" in bare.stderr and "IREDLDAP_CONFIG" in bare.stderr and "--config" in bare.stderr
    # With the file the demo's `export IREDLDAP_CONFIG=...` line names (tests/test_cli.py checks the line).
    ini = work / "var/demo/iredldap.ini"
    listed = subprocess.run([IREDLDAP, "token", "list"], cwd=work, env={**_env(), "IREDLDAP_CONFIG": str(ini)},
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    broken = tmp_path / "broken.ini"
    broken.write_text(ini.read_text().replace("ldap_suffix", "ldap_sufix"))
    bad = subprocess.run([IREDLDAP, "--config", str(broken), "export"], cwd=work, env=_env(),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and str(broken) in bad.stderr, bad.stderr
