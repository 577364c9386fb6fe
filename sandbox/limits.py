"""Flood limits and fault injection.

Telegram does not publish exact limits; the defaults follow its Bots FAQ (about 30 messages
per second overall, about one per second in a private chat, 20 per minute in a group) as
token buckets, so a short burst passes and a sustained stream is refused with retry_after.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["FaultConfig", "FaultDecision", "FaultInjector", "RateLimiter", "RateLimits"]


@dataclass(frozen=True)
class RateLimits:
    """Bucket sizes and refill rates for the three limits."""

    overall_per_second: float = 30.0
    overall_burst: int = 30
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: float = 20.0
    group_burst: int = 20


class _Bucket:
    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self) -> float:
        """Seconds until one token is available (0 if one is there now)."""
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """Decides whether a send may pass now, or how long the bot must wait."""

    def __init__(
        self, limits: RateLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Start with full buckets; ``clock`` is monotonic seconds."""
        self.limits = limits or RateLimits()
        self._clock = clock
        now = clock()
        self._overall = _Bucket(self.limits.overall_burst, self.limits.overall_per_second, now)
        self._chats: dict[int, _Bucket] = {}

    def _chat_bucket(self, chat_id: int, is_group: bool, now: float) -> _Bucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if is_group:
                bucket = _Bucket(self.limits.group_burst, self.limits.group_per_minute / 60.0, now)
            else:
                bucket = _Bucket(self.limits.private_burst, self.limits.private_per_second, now)
            self._chats[chat_id] = bucket
        return bucket

    def acquire(self, chat_id: int, *, is_group: bool, is_edit: bool = False) -> int | None:
        """Take a token for one message; return None if allowed, else retry_after seconds.

        Edits count only against a group's per-minute budget, as in Telegram, where
        editing in private chats is practically unlimited.
        """
        if is_edit and not is_group:
            return None
        now = self._clock()
        buckets = [self._chat_bucket(chat_id, is_group, now)]
        if not is_edit:
            buckets.append(self._overall)
        for bucket in buckets:
            bucket.refill(now)
        wait = max(bucket.wait() for bucket in buckets)
        if wait > 0:
            return max(1, math.ceil(wait))
        for bucket in buckets:
            bucket.tokens -= 1.0
        return None


@dataclass
class FaultConfig:
    """What to break. Rates are probabilities per call, drawn from the simulator's seeded RNG.

    ``methods`` limits faults to those Bot API methods (any case); None means every method
    except getUpdates, so the bot keeps receiving updates while its requests fail.
    """

    error_rate: float = 0.0
    error_status: int | None = None
    delay_rate: float = 0.0
    delay_seconds: float = 0.0
    drop_rate: float = 0.0
    reset_rate: float = 0.0
    throttle_rate: float = 0.0
    throttle_retry_after: int = 1
    methods: frozenset[str] | None = None
    forced_429: int = 0
    forced_retry_after: int = 1
    forced_methods: frozenset[str] | None = None

    @staticmethod
    def normalise(methods: Iterable[str] | None) -> frozenset[str] | None:
        """Lower-case a method list so matching is case-insensitive like Telegram."""
        return None if methods is None else frozenset(m.lower() for m in methods)


@dataclass(frozen=True)
class FaultDecision:
    """The fault chosen for one call: kind is error, delay, drop, reset, throttle or
    forced_429."""

    kind: str
    status: int = 0
    seconds: float = 0.0
    retry_after: int = 0


@dataclass
class FaultInjector:
    """Applies a :class:`FaultConfig` call by call and counts what it injected."""

    rng: random.Random
    config: FaultConfig = field(default_factory=FaultConfig)

    @staticmethod
    def _applies(method: str, methods: frozenset[str] | None) -> bool:
        if methods is None:
            return method != "getupdates"
        return method in methods

    def decide(self, method: str) -> FaultDecision | None:
        """Pick the fault (if any) for a call to ``method``."""
        cfg = self.config
        name = method.lower()
        if cfg.forced_429 > 0 and self._applies(name, cfg.forced_methods):
            cfg.forced_429 -= 1
            return FaultDecision("forced_429", status=429, retry_after=cfg.forced_retry_after)
        if not self._applies(name, cfg.methods):
            return None
        if cfg.reset_rate and self.rng.random() < cfg.reset_rate:
            return FaultDecision("reset")
        if cfg.drop_rate and self.rng.random() < cfg.drop_rate:
            return FaultDecision("drop")
        if cfg.error_rate and self.rng.random() < cfg.error_rate:
            status = cfg.error_status or self.rng.choice((500, 502))
            return FaultDecision("error", status=status)
        if cfg.throttle_rate and self.rng.random() < cfg.throttle_rate:
            return FaultDecision("throttle", status=429, retry_after=cfg.throttle_retry_after)
        if cfg.delay_rate and self.rng.random() < cfg.delay_rate:
            return FaultDecision("delay", seconds=cfg.delay_seconds)
        return None
