"""Chasing deadlines (跟踪催办) and escalation (督办), as pure planning over one assignment.

Deadlines stay data: the sweep asks the index which assignments are due for a look, and
this module says which steps are due now and when to look again. Every step has a key
stored on the assignment with its event, so no step ever fires twice — not across
restarts, not for two sweeps close together, not after the clock jumps backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.domain.calendar import WorkingCalendar
from bot.domain.policy import ChasingPolicy, TrackPolicy


@dataclass(frozen=True)
class ChaseStep:
    """One chasing step that is due: a reminder, an overdue notice or an escalation."""

    key: str
    kind: str  # reminder | overdue | supervision | leaders
    stage: str  # sign | reply | resolve
    due: datetime


def _reminder_at(
    start: datetime, due: datetime, fraction: float, wall_clock: bool, calendar: WorkingCalendar
) -> datetime:
    if wall_clock:
        return start + (due - start) * fraction
    return calendar.add_working_time(start, calendar.working_time_between(start, due) * fraction)


def _next_morning(after: date, around_the_clock: bool, calendar: WorkingCalendar) -> datetime:
    """The morning after `after` on which the next overdue notice goes out."""
    end_of_day = datetime.combine(after, calendar.day_end, tzinfo=calendar.tz)
    if around_the_clock:
        return datetime.combine(after + timedelta(days=1), calendar.day_start, tzinfo=calendar.tz)
    return calendar.next_working_morning(end_of_day)


def _in_working_day(moment: datetime, calendar: WorkingCalendar) -> bool:
    """Inside working hours, end of day included (a deadline at 17:30 is chased at 17:30)."""
    local = moment.astimezone(calendar.tz)
    return (
        calendar.is_working_day(local.date())
        and calendar.day_start <= local.time().replace(tzinfo=None) <= calendar.day_end
    )


def plan_chase(
    *,
    stages: dict[str, datetime],
    assigned_at: datetime,
    fired: frozenset[str],
    track: TrackPolicy,
    chasing: ChasingPolicy,
    calendar: WorkingCalendar,
    now: datetime,
) -> tuple[list[ChaseStep], datetime | None]:
    """The steps due now for an assignment's open stages, and when to look again."""
    steps: list[ChaseStep] = []
    upcoming: list[datetime] = []
    around = track.around_the_clock
    overdue_stages: list[tuple[str, datetime]] = []
    for stage, due in sorted(stages.items(), key=lambda item: item[1]):
        wall_clock = getattr(track, stage).unit == "h"
        if now < due:
            key = f"{stage}:reminder"
            if key not in fired:
                remind = _reminder_at(assigned_at, due, chasing.reminder_at, wall_clock, calendar)
                if now >= remind:
                    steps.append(ChaseStep(key, "reminder", stage, due))
                else:
                    upcoming.append(remind)
            upcoming.append(due)
            continue
        overdue_stages.append((stage, due))
        notices = sorted(k.rsplit(":", 1)[1] for k in fired if k.startswith(f"{stage}:overdue:"))
        if notices:
            next_at = _next_morning(date.fromisoformat(notices[-1]), around, calendar)
        else:
            next_at = (
                due
                if around or wall_clock or _in_working_day(due, calendar)
                else (calendar.next_working_start(due))
            )
        if now >= next_at:
            today = now.astimezone(calendar.tz).date()
            steps.append(ChaseStep(f"{stage}:overdue:{today.isoformat()}", "overdue", stage, due))
            next_at = _next_morning(today, around, calendar)
        upcoming.append(next_at)
    if overdue_stages:
        stage, due = overdue_stages[0]  # the earliest missed deadline
        for level, days in (
            ("supervision", chasing.supervision_after_days),
            ("leaders", chasing.leaders_after_days),
        ):
            key = f"escalation:{level}"
            if key in fired:
                continue
            threshold = calendar.add_working_days(due, days)
            if now >= threshold:
                steps.append(ChaseStep(key, level, stage, due))
            else:
                upcoming.append(threshold)
    return steps, (min(upcoming) if upcoming else None)
