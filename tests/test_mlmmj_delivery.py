"""Debian's mlmmj (scripts/test installs the `mlmmj` package) works on the
lists both backends make: `mlmmj-list` reads the subscribers, a message
piped into `mlmmj-receive` the way Postfix's pipe transport does is sent to
every subscriber at an SMTP sink on 127.0.0.1 (the list's relayhost and
smtpport, set through the profile) with the subject prefix, a moderated
list holds the post, `require_confirm` runs `mlmmj-sub -C`, and mlmmj's own
tools and ours read each other's subscriber files.

mlmmj runs as the owner of the list directory (or root); the spool here
belongs to whoever runs the tests, so its programs are run as they are.
Every program gets a timeout; every wait for mail is bounded.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from iredldap.mlmmj import Subscriber

from .fixtures_mlmmj import MLMMJ_BIN, spool_in
from .smtp_sink import SmtpSink

pytestmark = pytest.mark.servers

LIST = "sales@example.com"
SUBSCRIBERS = ["alice@example.org", "bob@example.org", "carol@example.net"]


def mlmmj(program: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run an mlmmj program by its absolute path (mlmmj refuses relative ones)."""
    path = MLMMJ_BIN / program
    assert path.is_file(), f"{path} missing: apt-get install mlmmj (scripts/test does)"
    done = subprocess.run([str(path), *args], input=stdin, capture_output=True, timeout=30,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    assert done.returncode == 0, (program, done.returncode, done.stderr)
    return done


def lines(done: subprocess.CompletedProcess) -> list[str]:
    return sorted(line for line in done.stdout.decode().splitlines() if line.strip())


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


def post(listdir: Path, sender: str = "dan@example.net", subject: str = "hello") -> None:
    """What Postfix's `mlmmj` pipe transport hands mlmmj (flags=ORhu: an
    X-Original-To: and a Return-Path: line, LF line ends); -F keeps
    mlmmj-receive in the foreground until mlmmj-process and mlmmj-send are
    done (iRedMail's mlmmj-amime-receive leaves it out and mlmmj forks)."""
    message = (f"Return-Path: <{sender}>\nX-Original-To: {LIST}\nFrom: Dan <{sender}>\nTo: {LIST}\n"
               f"Subject: {subject}\nMessage-ID: <{time.time_ns()}@example.net>\n\nHi all.\n").encode()
    mlmmj("mlmmj-receive", "-F", "-L", str(listdir), stdin=message)


def relay_to(sink: SmtpSink) -> dict[str, str]:
    return {"relay_host": "127.0.0.1", "smtp_port": str(sink.port)}


def test_mlmmj_list_prints_the_subscribers_of_each_version(list_spool):
    spool = list_spool.spool
    spool.create(LIST, {"owner": "boss@example.com", "moderators": "mod@example.com"})
    spool.add_subscribers(LIST, SUBSCRIBERS)
    spool.add_subscribers(LIST, ["dave@example.org"], subscription="digest")
    spool.add_subscribers(LIST, ["nina@example.org", "nick@example.org"], subscription="nomail")
    listdir = str(list_spool.files.list_dir(LIST))
    assert lines(mlmmj("mlmmj-list", "-L", listdir)) == SUBSCRIBERS
    assert lines(mlmmj("mlmmj-list", "-L", listdir, "-d")) == ["dave@example.org"]
    assert lines(mlmmj("mlmmj-list", "-L", listdir, "-n")) == ["nick@example.org", "nina@example.org"]
    assert lines(mlmmj("mlmmj-list", "-L", listdir, "-o")) == ["boss@example.com"]
    assert lines(mlmmj("mlmmj-list", "-L", listdir, "-m")) == ["mod@example.com"]
    assert lines(mlmmj("mlmmj-list", "-L", listdir, "-c")) == ["3"]
    spool.remove_subscribers(LIST, ["bob@example.org"])
    assert lines(mlmmj("mlmmj-list", "-L", listdir)) == ["alice@example.org", "carol@example.net"]


def test_a_post_reaches_every_subscriber_with_the_subject_prefix(list_spool, sink):
    spool = list_spool.spool
    spool.create(LIST, {"subject_prefix": "[sales]", "only_subscriber_can_post": "no", **relay_to(sink)})
    spool.add_subscribers(LIST, SUBSCRIBERS)
    spool.add_subscribers(LIST, ["dave@example.org"], subscription="digest")
    spool.add_subscribers(LIST, ["nina@example.org"], subscription="nomail")
    listdir = list_spool.files.list_dir(LIST)
    post(listdir)
    got = sink.wait_for(len(SUBSCRIBERS), timeout=20)
    assert sorted(r for m in got for r in m.rcpt_to) == SUBSCRIBERS
    for message in got:
        headers = message.headers
        assert headers["subject"] == "[sales] hello"
        assert headers["list-id"] == f"<{LIST}>" and headers["reply-to"] == LIST
        assert message.mail_from.startswith("sales+bounces-") and message.mail_from.endswith("@example.com")
    time.sleep(0.3)
    assert len(sink.messages) == len(SUBSCRIBERS)         # the digest and nomail versions get nothing now
    assert [p.name for p in (listdir / "archive").iterdir()] == ["1"]
    # Nothing left undelivered or thrown away.
    assert [p.name for p in (listdir / "queue").iterdir()] == ["discarded"]
    assert not any((listdir / "queue" / "discarded").iterdir())


def test_only_subscribers_may_post_by_default(list_spool, sink):
    spool = list_spool.spool
    spool.create(LIST, relay_to(sink))
    spool.add_subscribers(LIST, SUBSCRIBERS)
    listdir = list_spool.files.list_dir(LIST)
    post(listdir, sender="alice@example.org")
    got = sink.wait_for(len(SUBSCRIBERS), timeout=20)
    assert sorted(r for m in got for r in m.rcpt_to) == SUBSCRIBERS
    sink.state.messages.clear()
    post(listdir, sender="stranger@example.net")
    # A refusal notice goes back to the stranger; no subscriber gets the post.
    got = sink.wait_for(1, timeout=20)
    time.sleep(0.3)
    assert [r for m in sink.messages for r in m.rcpt_to] == ["stranger@example.net"], got


def test_a_moderated_list_holds_the_post(list_spool, sink):
    spool = list_spool.spool
    spool.create(LIST, {"moderated": "yes", "moderators": "mod@example.com", "only_subscriber_can_post": "no",
                        **relay_to(sink)})
    spool.add_subscribers(LIST, SUBSCRIBERS)
    listdir = list_spool.files.list_dir(LIST)
    post(listdir)
    held = list((listdir / "moderation").iterdir())
    assert held and any(p.read_bytes().find(b"Subject: hello") >= 0 for p in held)
    got = sink.wait_for(1, timeout=20)     # the moderation request
    time.sleep(0.3)
    recipients = [r for m in sink.messages for r in m.rcpt_to]
    assert recipients == ["mod@example.com"], got
    assert not set(recipients) & set(SUBSCRIBERS)
    assert not any((listdir / "archive").iterdir())


def test_require_confirm_runs_mlmmj_sub_and_mails_the_subscriber(list_spool, sink):
    spool = list_spool.spool
    spool.create(LIST, relay_to(sink))
    listdir = list_spool.files.list_dir(LIST)
    spool.add_subscribers(LIST, ["alice@example.org"], require_confirm=True)
    spool.add_subscribers(LIST, ["alice@example.org"], require_confirm=True)   # the first cookie is dropped
    cookies = [p.name for p in (listdir / "subconf").iterdir()]
    assert len(cookies) == 1 and cookies[0].endswith("-alice=example.org") and len(cookies[0]) == 16 + 18
    assert spool.subscribers(LIST) == []
    got = sink.wait_for(2, timeout=20)
    assert [m.rcpt_to for m in got] == [["alice@example.org"], ["alice@example.org"]]
    assert "+confsub-" in got[-1].headers["reply-to"] + got[-1].headers.get("from", "")
    spool.add_subscribers(LIST, ["dave@example.org"], subscription="digest", require_confirm=True)
    assert any(p.name.endswith("-dave=example.org") for p in (listdir / "subconf").iterdir())


def test_mlmmjs_own_tools_and_ours_read_each_others_files(local_spool):
    local_spool.create(LIST, {})
    listdir = str(local_spool.list_dir(LIST))
    local_spool.add_subscribers(LIST, ["alice@example.org"])
    mlmmj("mlmmj-sub", "-L", listdir, "-a", "henry@example.org", "-f", "-q", "-s")
    mlmmj("mlmmj-sub", "-L", listdir, "-a", "hanna@example.org", "-d", "-f", "-q", "-s")
    assert sorted(local_spool.subscribers(LIST), key=lambda s: s.mail) == [
        Subscriber("alice@example.org", "normal"), Subscriber("hanna@example.org", "digest"),
        Subscriber("henry@example.org", "normal")]
    local_spool.add_subscribers(LIST, ["hugo@example.org"])        # appended to mlmmj's own file
    assert sorted((Path(listdir) / "subscribers.d" / "h").read_text().split()) == ["henry@example.org",
                                                                                  "hugo@example.org"]
    mlmmj("mlmmj-unsub", "-L", listdir, "-a", "alice@example.org", "-q", "-s")
    local_spool.remove_subscribers(LIST, ["henry@example.org"])
    assert lines(mlmmj("mlmmj-list", "-L", listdir)) == ["hugo@example.org"]
    assert not (Path(listdir) / "subscribers.d" / "a").exists()
    mlmmj("mlmmj-maintd", "-F", "-L", listdir)
    assert (Path(listdir) / "mlmmj-maintd.lastrun.log").is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_as_root_the_lists_belong_to_the_spools_owner(tmp_path, sink):
    # iRedMail: the spool belongs to `mlmmj`, and mlmmj's programs (started
    # as root by cron, or by Postfix as mlmmj) run as the list's owner.
    owner = 65534
    spool = spool_in(tmp_path)
    for folder in (spool.spool_dir, spool.archive_dir):
        os.chown(folder, owner, owner)
    spool.create(LIST, {"only_subscriber_can_post": "no", **relay_to(sink)})
    spool.add_subscribers(LIST, SUBSCRIBERS)
    spool.remove_subscribers(LIST, ["carol@example.net"])
    listdir = spool.list_dir(LIST)
    made = [listdir.parent, *listdir.rglob("*")]
    assert {(p.stat().st_uid, p.stat().st_gid) for p in made} == {(owner, owner)}
    assert lines(mlmmj("mlmmj-list", "-L", str(listdir))) == SUBSCRIBERS[:2]
    post(listdir)
    assert sorted(r for m in sink.wait_for(2, timeout=20) for r in m.rcpt_to) == SUBSCRIBERS[:2]
    where = spool.delete(LIST, archive=True)
    assert where and {Path(where).stat().st_uid, Path(where).parent.stat().st_uid} == {owner}
