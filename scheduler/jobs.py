"""The scheduled jobs, on PTB's JobQueue — itself APScheduler's AsyncIOScheduler, so the
bot runs one scheduler, not two. Jobs call services and keep no state of their own."""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from telegram.ext import ContextTypes

from bot import reports, services
from bot.telemetry import telemetry_of

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 60  # seconds


async def deadline_sweep(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every minute (and once at start-up): reminders, overdue notices, escalations."""
    svc: services.Services = context.bot_data.services  # type: ignore[attr-defined]
    started = time.perf_counter()
    taken = await services.chase_due(svc)
    seconds = time.perf_counter() - started
    await reports.note_running(svc)  # for the reports' catch-up after a downtime
    telemetry_of(context.application).observe_sweep(seconds, sweep="deadline")
    logger.debug("deadline sweep took %.1f ms (%d steps)", seconds * 1000, taken)


async def start_up(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Once at start-up: the reports missed while the bot was down, then the sweep
    (downtime never skips a deadline)."""
    svc: services.Services = context.bot_data.services  # type: ignore[attr-defined]
    for kind in await reports.catch_up(svc):
        telemetry_of(context.application).count_report(kind)
    await deadline_sweep(context)


async def callback_sweep(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every minute: remind citizens to rate, close windows that ended."""
    svc: services.Services = context.bot_data.services  # type: ignore[attr-defined]
    started = time.perf_counter()
    await services.sweep_callbacks(svc)
    telemetry_of(context.application).observe_sweep(
        time.perf_counter() - started, sweep="callback"
    )


async def weekly_report(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Monday morning: last week's report (周报) to the dispatch group, once per week."""
    svc: services.Services = context.bot_data.services  # type: ignore[attr-defined]
    if await reports.enqueue_weekly(svc):
        telemetry_of(context.application).count_report("weekly")


async def daily_report(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Working mornings: the high-level (高位办) report to the leaders' group."""
    svc: services.Services = context.bot_data.services  # type: ignore[attr-defined]
    if await reports.enqueue_daily(svc):
        telemetry_of(context.application).count_report("daily")


async def quarterly_report(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Daily check: in a quarter's first month, the last quarter's notice (季度通报), once."""
    svc: services.Services = context.bot_data.services  # type: ignore[attr-defined]
    if reports.quarterly_is_due(svc) and await reports.enqueue_quarterly(svc):
        telemetry_of(context.application).count_report("quarterly")


def _at(text: str, tz: datetime.tzinfo) -> datetime.time:
    return datetime.time.fromisoformat(text).replace(tzinfo=tz)


def schedule_reports(app: Any, policy: Any) -> None:
    """The report jobs, at the policy's times in the policy's time zone. PTB counts days
    from Sunday (0) while the policy counts from Monday (0)."""
    queue = app.job_queue
    tz = policy.calendar.tz
    rules = policy.reports
    weekday = (rules.weekly_weekday + 1) % 7
    queue.run_daily(
        weekly_report, time=_at(rules.weekly_time, tz), days=(weekday,), name="weekly-report"
    )
    queue.run_daily(daily_report, time=_at(rules.daily_time, tz), name="daily-report")
    queue.run_daily(quarterly_report, time=_at(rules.weekly_time, tz), name="quarterly-report")


def schedule(app: Any) -> None:
    """Add the jobs to the application's job queue."""
    queue = app.job_queue
    if queue is None:
        raise RuntimeError("PTB's job queue needs APScheduler installed")
    # The scheduler's time zone is the policy's: set through PTB's Defaults(tzinfo) when
    # the application is built (reconfiguring APScheduler here would drop PTB's executor).
    # Once right now, so downtime never skips a deadline: an interval job whose first
    # run is "now" is pushed a whole interval on by APScheduler, a one-off job is not.
    queue.run_once(start_up, when=0, name="start-up-sweep")
    queue.run_once(callback_sweep, when=0, name="start-up-callback-sweep")
    for job, name in ((deadline_sweep, "deadline-sweep"), (callback_sweep, "callback-sweep")):
        queue.run_repeating(
            job,
            interval=SWEEP_INTERVAL,
            first=SWEEP_INTERVAL,
            name=name,
            job_kwargs={"max_instances": 1, "coalesce": True},
        )
    services_ = getattr(app.bot_data, "services", None)
    if services_ is not None:
        schedule_reports(app, services_.policy)
