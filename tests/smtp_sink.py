"""A small SMTP server on 127.0.0.1 that keeps every message it is given
(envelope sender, recipients, data) -- where mlmmj's `relayhost`/`smtpport`
point in the delivery tests.  Threads only, stopped by the test that
started it."""

from __future__ import annotations

import socketserver
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes

    @property
    def headers(self) -> dict[str, str]:
        from email.parser import BytesHeaderParser
        message = BytesHeaderParser().parsebytes(self.data)
        return {k.lower(): str(v) for k, v in message.items()}


@dataclass
class SinkState:
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


def _address(arg: str) -> str:
    value = arg.split(":", 1)[1].strip()
    value = value.split(" ", 1)[0]
    return value.strip("<>")


class _Handler(socketserver.StreamRequestHandler):
    timeout = 10

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        state: SinkState = self.server.state  # type: ignore[attr-defined]
        self.reply("220 sink.test ESMTP")
        mail_from, rcpts = "", []
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("HELO", "EHLO"):
                self.reply("250 sink.test")
            elif verb == "MAIL":
                mail_from, rcpts = _address(line), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(_address(line))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go on")
                lines = []
                while True:
                    chunk = self.rfile.readline(1 << 20)
                    if not chunk or chunk in (b".\r\n", b".\n"):
                        break
                    lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                with state.changed:
                    state.messages.append(Received(mail_from, list(rcpts), b"".join(lines)))
                    state.changed.notify_all()
                self.reply("250 queued")
            elif verb == "RSET":
                mail_from, rcpts = "", []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not here")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpSink:
    def __init__(self) -> None:
        self.state = SinkState()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)

    def start(self) -> "SmtpSink":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def messages(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.messages)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The messages once there are at least `count` (or at the timeout)."""
        deadline = time.monotonic() + timeout
        with self.state.changed:
            while len(self.state.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.state.changed.wait(left)
            return list(self.state.messages)
