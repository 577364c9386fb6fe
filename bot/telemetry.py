"""Prometheus metrics: one registry per application, fed without touching the handlers.

Updates are counted and timed by two `TypeHandler`s that bracket every other handler group:
one in the first group stamps the start, one in the last observes the end. An update that a
handler stops with `ApplicationHandlerStop` is counted but not timed, and a handler that runs
with `block=False` is timed only up to its start; the throttle (handlers/common.py) stops
a flooding person's updates that way, and no handler runs with `block=False`.

Figures that live in the database (cases, the outbox) are read at scrape time, so a scrape
always shows the truth rather than what a counter remembers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from telegram import Update
from telegram.ext import Application, TypeHandler

from storage.db import Reader, to_db

FIRST_GROUP = -100  # before every handler group of the bot
LAST_GROUP = 100  # after every handler group of the bot
SEND_RESULTS = ("ok", "429", "5xx", "network", "blocked", "bad_request", "render")

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


def update_type(update: object) -> str:
    """The kind of an update as Telegram names it (`message`, `callback_query`, …)."""
    if isinstance(update, Update):
        for kind in Update.ALL_TYPES:
            if getattr(update, kind, None) is not None:
                return kind
    return "other"


class _SendsCollector(Collector):
    """Sends by result, read from the outbox sender's counters at scrape time."""

    def __init__(self, sender: Callable[[], Any]) -> None:
        self._sender = sender

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "wenzheng_outbox_sends", "Outbox deliveries by result", labels=["result"]
        )
        sender = self._sender()
        if sender is not None:
            for result, count in sorted(send_results(sender).items()):
                family.add_metric([result], count)
        yield family


def send_results(sender: Any) -> Mapping[str, int]:
    """The sender's deliveries by result.

    A sender that keeps `results` (a Counter keyed by the names in SEND_RESULTS) gives the
    full split; one with only `sent`, `failed` and `retried` gives those three.
    """
    results = getattr(sender, "results", None)
    if isinstance(results, Mapping):
        return {str(key): int(value) for key, value in results.items()}
    return {"ok": sender.sent, "failed": sender.failed, "retried": sender.retried}


class Telemetry:
    """The application's metrics, in a registry of its own (tests run many bots at once)."""

    def __init__(self, sender: Callable[[], Any] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "wenzheng_updates", "Updates processed, by type", ["type"], registry=self.registry
        )
        self.handler_seconds = Histogram(
            "wenzheng_handler_seconds",
            "Time from an update's first handler to its last, by type",
            ["type"],
            registry=self.registry,
        )
        self.sweep_seconds = Histogram(
            "wenzheng_sweep_seconds",
            "Duration of the scheduler's sweeps",
            ["sweep"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.reports_built = Counter(
            "wenzheng_reports_built", "Reports built, by kind", ["kind"], registry=self.registry
        )
        self.cases = Gauge(
            "wenzheng_cases", "Cases by state and track", ["state", "track"], registry=self.registry
        )
        self.outbox_depth = Gauge(
            "wenzheng_outbox_depth", "Outbox messages waiting to be sent", registry=self.registry
        )
        self.outbox_oldest_age = Gauge(
            "wenzheng_outbox_oldest_age_seconds",
            "Age of the oldest outbox message waiting to be sent",
            registry=self.registry,
        )
        self.outbox_lag = Gauge(
            "wenzheng_outbox_lag_seconds",
            "How long the oldest due outbox message has been due",
            registry=self.registry,
        )
        self.registry.register(_SendsCollector(sender))
        self._started: dict[int, float] = {}
        self._counters: dict[str, Any] = {}  # the updates counter's child per update type
        self._timers: dict[str, Any] = {}  # the handler histogram's child per update type

    def observe_sweep(self, seconds: float, sweep: str = "deadline") -> None:
        """Record how long one sweep took (called by the scheduler's jobs)."""
        self.sweep_seconds.labels(sweep).observe(seconds)

    def count_report(self, kind: str) -> None:
        """Record that a report was built (`weekly`, `daily`, `quarterly`, `on_demand`…)."""
        self.reports_built.labels(kind).inc()

    async def update_started(self, update: object, _context: object) -> None:
        """First handler of every update: count it and stamp the start."""
        if len(self._started) > 10_000:
            self._started.clear()  # updates stopped early never reach the end; don't hoard
        self._started[id(update)] = time.perf_counter()
        kind = update_type(update)
        counter = self._counters.get(kind)
        if counter is None:  # `labels()` takes a lock and checks its values every time
            counter = self._counters[kind] = self.updates.labels(kind)
        counter.inc()

    async def update_finished(self, update: object, _context: object) -> None:
        """Last handler of every update: observe how long the handlers took."""
        started = self._started.pop(id(update), None)
        if started is not None:
            kind = update_type(update)
            timer = self._timers.get(kind)
            if timer is None:
                timer = self._timers[kind] = self.handler_seconds.labels(kind)
            timer.observe(time.perf_counter() - started)

    async def refresh(self, db: Reader, now: datetime) -> None:
        """Read the figures that live in the database into the gauges (at scrape time)."""
        self.cases.clear()
        for state, track, count in await db.fetch_all(
            "SELECT state, coalesce(track, 'none'), count(*) FROM cases GROUP BY 1, 2"
        ):
            self.cases.labels(state, track).set(count)
        backlog = await outbox_backlog(db, now)
        self.outbox_depth.set(backlog.depth)
        self.outbox_oldest_age.set(backlog.oldest_age_seconds)
        self.outbox_lag.set(backlog.lag_seconds)


@dataclass(frozen=True)
class OutboxBacklog:
    """What waits in the outbox: how many, since when, and how late the oldest due one is."""

    depth: int
    oldest_age_seconds: float
    lag_seconds: float


async def outbox_backlog(db: Reader, now: datetime) -> OutboxBacklog:
    """The outbox backlog at `now` (lag: how long the oldest pending row has been due)."""
    row = await db.fetch_one(
        "SELECT count(*), min(created_at), min(next_attempt_at) FROM outbox WHERE state = 'pending'"
    )
    if row is None or not row[0]:
        return OutboxBacklog(0, 0.0, 0.0)
    now_db = to_db(now) or 0

    def seconds_since(value: int | None) -> float:
        return 0.0 if value is None else max(0.0, (now_db - int(value)) / 1_000_000)

    return OutboxBacklog(int(row[0]), seconds_since(row[1]), seconds_since(row[2]))


def install_telemetry(application: AnyApplication) -> Telemetry:
    """Give the application its telemetry (once) and hook it around every handler group."""
    existing = getattr(application.bot_data, "telemetry", None)
    if isinstance(existing, Telemetry):
        return existing
    telemetry = Telemetry(sender=lambda: getattr(application.bot_data, "sender", None))
    application.add_handler(TypeHandler(Update, telemetry.update_started), group=FIRST_GROUP)
    application.add_handler(TypeHandler(Update, telemetry.update_finished), group=LAST_GROUP)
    application.bot_data.telemetry = telemetry
    return telemetry


def telemetry_of(application: AnyApplication) -> Telemetry:
    """The application's telemetry; installed here if `create_application` did not."""
    return install_telemetry(application)
