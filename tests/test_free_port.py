"""The ports servers of the tests and the demo are started on: picked below
the kernel's ephemeral range, so that a server stopped for a restart finds its
port still free (no bind(0) and no outgoing connection of another process can
have been given it meanwhile)."""

from __future__ import annotations

import socket

import pytest

from iredldap.directory import localslapd
from iredldap.directory.localslapd import LOWEST_PICKED_PORT, free_port


def ephemeral_range() -> tuple[int, int]:
    low, high = localslapd._EPHEMERAL_RANGE.read_text().split()
    return int(low), int(high)


def test_a_picked_port_is_below_the_ephemeral_range_and_free():
    low, _ = ephemeral_range()
    if low - LOWEST_PICKED_PORT < 1000:
        pytest.skip(f"this machine's ephemeral range starts at {low}: nothing to pick below it")
    port = free_port()
    assert LOWEST_PICKED_PORT <= port < low
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free: raises if anything holds it


def test_a_process_never_picks_a_port_twice():
    # Picked ports need not be listened on yet (a replicated pair picks
    # both before starting either), so being free is not enough.
    picked = [free_port() for _ in range(200)]
    assert len(set(picked)) == len(picked)


def test_a_held_port_is_not_picked(monkeypatch):
    # A range of 100 ports, all but one held by sockets of this test: the
    # pick must be the one left, whatever the random tries.
    low, _ = ephemeral_range()
    base = low - 100
    if base < LOWEST_PICKED_PORT:
        pytest.skip(f"this machine's ephemeral range starts at {low}")
    monkeypatch.setattr(localslapd, "LOWEST_PICKED_PORT", base)
    monkeypatch.setattr(localslapd, "_MIN_ROOM", 100)
    monkeypatch.setattr(localslapd, "_PICK_ATTEMPTS", 5_000)
    monkeypatch.setattr(localslapd, "_picked", set())
    held = []
    try:
        for port in range(base, low):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # something of the machine's: it counts as held
                s.close()
                continue
            held.append(s)
        if not held:
            pytest.skip("no port of the range could be held")
        left = held.pop(len(held) // 2)
        left_port = left.getsockname()[1]
        left.close()
        assert free_port() == left_port
    finally:
        for s in held:
            s.close()


def test_without_room_below_the_range_the_kernel_picks(monkeypatch, tmp_path):
    fake_range = tmp_path / "ip_local_port_range"
    fake_range.write_text(f"{LOWEST_PICKED_PORT + 10}\t60999\n")
    monkeypatch.setattr(localslapd, "_EPHEMERAL_RANGE", fake_range)
    port = free_port()
    low, high = ephemeral_range()  # the machine's own range, which bind(0) uses
    assert low <= port <= high
