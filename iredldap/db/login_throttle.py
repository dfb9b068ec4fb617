"""How long a login attempt must wait, from the failed logins in the log table.

The state is the ``log`` table of the iredadmin database (rows with event
``login``: loglevel ``error`` for a failure, ``info`` for a success; iRedAdmin
writes the same rows), so every worker and every instance sees the same
counts, and iRedAdmin's own failed logins count too.

Three counters, each over the last LOGIN_FAILURE_WINDOW seconds:

* the pair (address, account): failures of this account from this address
  since its last successful login from there (its own typos are forgiven once
  it gets in);
* the account, from every address: a guesser spreading over many addresses is
  slowed on all of them;
* the address, for every account: one address spraying many accounts.

A counter at or above its threshold makes every further attempt wait
LOGIN_BACKOFF_START seconds after the newest failure it counts, doubled for
each failure past the threshold, at most LOGIN_FAILURE_WINDOW seconds.

The account and address counters do not apply to an address the account has
logged in from successfully within LOGIN_KNOWN_ADDRESS_DAYS: so the real
admin at its usual place still logs in while a guesser elsewhere is slowed,
and a guesser behind a NAT address locks out neither the other admins behind
it nor (beyond its pair) the admin it guesses for.  Only the pair counter
applies there.

A throttled attempt does not check the password (the answer tells nothing
about it) and leaves no row, so it neither counts as a failure nor pushes the
lock further: each lock ends at most LOGIN_FAILURE_WINDOW seconds after the
last attempt that was checked, whatever arrives meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from iredldap.db.iredadmin import IredadminDB

# 2 ** this is far above any window; keeps the arithmetic small.
_MAX_DOUBLINGS = 40

# msg of a login attempt's row while its password is being checked; then it
# becomes "[API] Login failed" (loglevel error) or "[API] Login" (info).
ATTEMPT_MSG = "[API] Login attempt"
# How long an attempt waits for earlier ones in progress, polling first
# after SETTLE_POLL seconds, then less and less often.
SETTLE_SECONDS = 30.0
SETTLE_POLL = 0.01
SETTLE_POLL_MAX = 0.2
# An attempt row still in progress after this long is counted as a failure.
STALE_ATTEMPT_SECONDS = 60


@dataclass(frozen=True)
class ThrottleRules:
    max_failures: int            # per account, and per (address, account)
    max_failures_per_address: int
    window: int                  # seconds
    backoff_start: int           # seconds
    known_address_days: int      # 0: no address is exempt


class LoginThrottle:
    def __init__(self, db: IredadminDB, rules: ThrottleRules):
        self.db = db
        self.rules = rules

    def delay(self, failures: int, threshold: int) -> int:
        """Seconds to wait after the newest of `failures` counted failures."""
        if failures < threshold:
            return 0
        doublings = min(failures - threshold, _MAX_DOUBLINGS)
        return min(self.rules.backoff_start * 2 ** doublings, self.rules.window)

    def wait(self, account: str, ip: str, *, attempt_id: int | None = None) -> int:
        """Seconds until an attempt at `account` from `ip` would be checked
        (0: now).

        `attempt_id` is this attempt's row, written (msg ATTEMPT_MSG) before
        this call so that attempts arriving together count each other.  An
        earlier attempt still in progress could be a failure: when it would
        tip a counter over, this waits (a moment, at most SETTLE_SECONDS)
        for it to end, then decides.  So simultaneous guesses are checked no
        more than the thresholds allow, and simultaneous right logins are
        queued, not refused.  Later attempts wait for this one instead."""
        deadline = time.monotonic() + SETTLE_SECONDS
        poll = SETTLE_POLL
        while True:
            now = self.db.now()
            failures = self.db.failed_logins(admin=account, ip=ip, since=now - timedelta(seconds=self.rules.window),
                                             exclude_id=attempt_id, pending_msg=ATTEMPT_MSG)
            if not failures:
                return 0
            stale = now - timedelta(seconds=STALE_ATTEMPT_SECONDS)
            # An attempt in progress for that long was cut off (a killed worker): a failure.
            done = [f for f in failures if not f["pending"] or f["timestamp"] < stale]
            earlier = [f for f in failures if f["pending"] and f["timestamp"] >= stale
                       and (attempt_id is None or f["id"] < attempt_id)]
            known, last_success = self._known(account, ip, now)
            wait = self._wait(done, known, last_success, now)
            if wait or not earlier:
                return wait
            worst = self._wait(done + [dict(f, timestamp=now) for f in earlier], known, last_success, now)
            if not worst:
                return 0
            if time.monotonic() >= deadline:
                # Still not ended: ask again in a second rather than guess.
                return max(wait, 1)
            time.sleep(poll)
            poll = min(poll * 2, SETTLE_POLL_MAX)

    def _known(self, account: str, ip: str, now: datetime) -> tuple[bool, int | None]:
        """Whether `ip` is a known address of `account`, and the id of the
        pair's newest successful login (the pair counter starts after it)."""
        rules = self.rules
        since = now - timedelta(seconds=rules.window)
        known_since = min(since, now - timedelta(days=rules.known_address_days))
        last_success = self.db.last_successful_login(admin=account, ip=ip, since=known_since)
        return rules.known_address_days > 0 and last_success is not None, last_success

    def _wait(self, failures: list[dict], known: bool, last_success: int | None, now: datetime) -> int:
        rules = self.rules
        of_account = [f for f in failures if f["same_admin"]]
        of_pair = [f for f in of_account if f["same_ip"] and (last_success is None or f["id"] > last_success)]
        until = [self._until(of_pair, rules.max_failures)]
        if not known:
            until.append(self._until(of_account, rules.max_failures))
            until.append(self._until([f for f in failures if f["same_ip"]], rules.max_failures_per_address))
        latest = max((u for u in until if u is not None), default=None)
        if latest is None or latest <= now:
            return 0
        return int((latest - now).total_seconds())

    def _until(self, failures: list[dict], threshold: int) -> datetime | None:
        seconds = self.delay(len(failures), threshold)
        if not seconds:
            return None
        return max(f["timestamp"] for f in failures) + timedelta(seconds=seconds)
