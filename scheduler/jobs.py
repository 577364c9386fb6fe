"""The scheduled jobs, on PTB's JobQueue — itself APScheduler's AsyncIOScheduler, so the
bot runs one scheduler, not two. Jobs call services and keep no state of their own."""

from __future__ import annotations

import logging
import time
from typing import Any

from telegram.ext import ContextTypes

from bot import services

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 60  # seconds


async def deadline_sweep(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every minute (and once at start-up): reminders, overdue notices, escalations."""
    svc: services.Services = context.bot_data.services  # type: ignore[attr-defined]
    started = time.perf_counter()
    taken = await services.chase_due(svc)
    logger.debug(
        "deadline sweep took %.1f ms (%d steps)", (time.perf_counter() - started) * 1000, taken
    )


async def callback_sweep(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every minute: remind citizens to rate, close windows that ended."""
    svc: services.Services = context.bot_data.services  # type: ignore[attr-defined]
    await services.sweep_callbacks(svc)


def schedule(app: Any) -> None:
    """Add the jobs to the application's job queue."""
    queue = app.job_queue
    if queue is None:
        raise RuntimeError("PTB's job queue needs APScheduler installed")
    # The scheduler's time zone is the policy's: set through PTB's Defaults(tzinfo) when
    # the application is built (reconfiguring APScheduler here would drop PTB's executor).
    # Once right now, so downtime never skips a deadline: an interval job whose first
    # run is "now" is pushed a whole interval on by APScheduler, a one-off job is not.
    queue.run_once(deadline_sweep, when=0, name="start-up-sweep")
    queue.run_once(callback_sweep, when=0, name="start-up-callback-sweep")
    for job, name in ((deadline_sweep, "deadline-sweep"), (callback_sweep, "callback-sweep")):
        queue.run_repeating(
            job,
            interval=SWEEP_INTERVAL,
            first=SWEEP_INTERVAL,
            name=name,
            job_kwargs={"max_instances": 1, "coalesce": True},
        )
