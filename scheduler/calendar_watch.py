"""A daily look at the working calendar: from 1 December, warn the desk when next
year's official schedule is missing from the policy."""

from __future__ import annotations

from datetime import time
from typing import Any

from telegram.ext import ContextTypes

from bot import services


async def calendar_check(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Once a day (and at start-up): warn the desk if next year's schedule is missing."""
    svc: services.Services = context.bot_data.services  # type: ignore[attr-defined]
    await services.warn_if_calendar_missing(svc)


def schedule(app: Any) -> None:
    """Check at start-up and every morning at 09:00 in the policy's time zone."""
    svc: services.Services = app.bot_data.services
    tz = svc.policy.calendar.tz
    app.job_queue.run_once(calendar_check, when=0, name="start-up-calendar-check")
    app.job_queue.run_daily(calendar_check, time=time(9, 0, tzinfo=tz), name="calendar-check")
