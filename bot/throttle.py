"""A token bucket per person for incoming updates: one flood is slowed, no one else is.

PTB limits what the bot sends, not what it receives, so the gatekeeper asks this before
any handler runs. It counts seconds on a monotonic clock, not the business clock: how fast
updates arrive is a matter of real time (a test's frozen business clock would never refill
the allowance), and a clock source is an argument, so tests can move it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float
    warned: bool = False


class Throttle:
    """Admits each person's updates while their allowance lasts."""

    # Past this many people remembered, those whose allowance is full again are forgotten.
    PRUNE_AT = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[int, _Bucket] = {}
        self._clock = clock

    def admit(self, user_id: int, *, burst: int, per_minute: int) -> bool:
        """Whether this person's next update may go on (and take one token if so)."""
        if burst <= 0:
            return True
        now = self._clock()
        rate = per_minute / 60
        bucket = self._buckets.get(user_id)
        if bucket is None:
            if len(self._buckets) >= self.PRUNE_AT:
                self._prune(now, burst, rate)
            bucket = self._buckets[user_id] = _Bucket(float(burst), now)
        # A clock moved backwards gives nothing back and takes nothing away.
        bucket.tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) * rate)
        bucket.at = max(bucket.at, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.warned = False
            return True
        return False

    def first_refusal(self, user_id: int) -> bool:
        """True once per flood: the moment to tell the person, and only then."""
        bucket = self._buckets.get(user_id)
        if bucket is None or bucket.warned:
            return False
        bucket.warned = True
        return True

    def _prune(self, now: float, burst: int, rate: float) -> None:
        full = [
            uid for uid, b in self._buckets.items() if b.tokens + (now - b.at) * rate >= burst
        ]
        for uid in full:
            del self._buckets[uid]
