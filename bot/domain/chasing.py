"""Chasing deadlines (跟踪催办) and escalation (督办), as pure planning over one assignment.

Deadlines stay data: the sweep asks the index which assignments are due for a look, and
this module says which steps are due now, records each as an event, and says when to look
again. Every step has a key stored on the assignment with its event, so no step ever
fires twice — not across restarts, not for two sweeps close together, not after the clock
jumps backwards.

The sweep plans many assignments against the same days, so `SweepCalendar` answers the
working-time questions from a per-day table instead of walking the calendar day by day
for every assignment.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from bot.domain.calendar import WorkingCalendar
from bot.domain.case import (
    Actor,
    Assignment,
    AssignmentState,
    Event,
)
from bot.domain.policy import ChasingPolicy, Policy, Track, TrackPolicy

CHASED_STATES = frozenset({AssignmentState.ASSIGNED, AssignmentState.SIGNED})
_ZERO = timedelta(0)
_MICROSECOND = timedelta(microseconds=1)


class SweepCalendar:
    """A working calendar's deadline arithmetic, cached by day for one sweep.

    Working time up to a moment is the working time of the whole days before it (a running
    total kept per day) plus the part of its own day; so the working time between two
    moments is one subtraction, and adding working time is a binary search over the days,
    however far apart the moments are. Inside, moments are (day ordinal, microseconds into
    the local day) pairs. The answers are exactly `WorkingCalendar`'s (a test holds them to
    it), including its wall-clock arithmetic in its own time zone; moments it returns
    are in UTC.
    """

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self.tz = calendar.tz
        self.day_length = calendar.day_length
        self._start = _micros(calendar.day_start)
        self._end = _micros(calendar.day_end)
        # Per day from ordinal _first on: working time before it (µs), and whether it is
        # a working day.
        self._first = 0
        self._totals: list[int] = []
        self._working: list[bool] = []
        self._splits: dict[datetime, tuple[int, int]] = {}
        self._midnights: dict[int, datetime] = {}
        self._mornings: dict[tuple[date, bool], datetime] = {}

    # -- days -------------------------------------------------------------------------

    def _cover(self, first: int, last: int) -> None:
        """Make the table reach from day ordinal `first` to `last` (inclusive)."""
        is_working_day = self.calendar.is_working_day
        length = self._end - self._start
        if not self._totals:
            self._first, self._totals, self._working = first, [0], []
        if first < self._first:
            # Earlier days: rebuild from the new first day (rare: an older deadline).
            working = [is_working_day(date.fromordinal(o)) for o in range(first, self._first)]
            totals = [0]
            for flag in working:
                totals.append(totals[-1] + (length if flag else 0))
            shift = totals.pop()
            self._totals = totals + [total + shift for total in self._totals]
            self._working = working + self._working
            self._first = first
        totals, flags = self._totals, self._working
        ordinal = self._first + len(flags)  # the first day without its flag yet
        while ordinal <= last:
            flag = is_working_day(date.fromordinal(ordinal))
            flags.append(flag)
            totals.append(totals[-1] + (length if flag else 0))
            ordinal += 1

    def _index(self, ordinal: int) -> int:
        if not self._totals or not self._first <= ordinal < self._first + len(self._working):
            self._cover(ordinal, ordinal)
        return ordinal - self._first

    def _is_working(self, ordinal: int) -> bool:
        index = self._index(ordinal)  # first: covering an earlier day replaces the lists
        return self._working[index]

    def _split(self, moment: datetime) -> tuple[int, int]:
        """(local day ordinal, microseconds into that day) of an aware moment."""
        split = self._splits.get(moment)
        if split is None:
            if moment.tzinfo is None:
                raise ValueError(f"moment must be timezone-aware, got naive {moment!r}")
            local = moment.astimezone(self.tz)
            split = (
                local.toordinal(),
                ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000
                + local.microsecond,
            )
            self._splits[moment] = split
        return split

    def _moment(self, ordinal: int, into: int) -> datetime:
        midnight = self._midnights.get(ordinal)
        if midnight is None:
            midnight = datetime.combine(date.fromordinal(ordinal), time(0), tzinfo=self.tz)
            self._midnights[ordinal] = midnight
        # Wall-clock arithmetic in the calendar's zone, as WorkingCalendar does; the
        # answer in UTC, as the database's times are, because comparing moments of two
        # zones costs ten times more and the sweep compares them over and over.
        return (midnight + timedelta(microseconds=into)).astimezone(UTC)

    def _position(self, ordinal: int, into: int) -> int:
        """Working time (µs) from the table's first day to a moment."""
        index = self._index(ordinal)
        total = self._totals[index]
        if self._working[index]:
            total += min(max(into, self._start), self._end) - self._start
        return total

    def _next_working_day(self, ordinal: int) -> int:
        """The first working day strictly after `ordinal`."""
        ordinal += 1
        while not self._is_working(ordinal):
            ordinal += 1
        return ordinal

    def _working_start(self, ordinal: int, into: int) -> tuple[int, int]:
        """The moment itself if it is working time, else the next working morning."""
        if self._is_working(ordinal):
            if into < self._start:
                return ordinal, self._start
            if into < self._end:
                return ordinal, into
        return self._next_working_day(ordinal), self._start

    # -- what planning asks ------------------------------------------------------------

    def local_date(self, moment: datetime) -> date:
        """The calendar day of `moment` in the calendar's zone."""
        return date.fromordinal(self._split(moment)[0])

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The working time inside [start, end); zero if end <= start."""
        if end <= start:
            return _ZERO
        first, last = self._split(start), self._split(end)
        self._cover(first[0], last[0])  # both first: covering an earlier day moves the table
        return timedelta(microseconds=self._position(*last) - self._position(*first))

    def working_days_between(self, start: datetime, end: datetime) -> float:
        """`working_time_between` in working days (fractional)."""
        return self.working_time_between(start, end) / self.day_length

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of working time after `start` (a start outside working
        hours counts from the next working morning; a duration ending exactly at the end
        of a day ends at that day's end)."""
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        ordinal, into = self._working_start(*self._split(start))
        target = self._position(ordinal, into) + duration // _MICROSECOND
        totals = self._totals
        while totals[-1] < target:  # grow by the working days still missing
            last = self._first + len(self._working) - 1
            self._cover(last, last + -(-(target - totals[-1]) // (self._end - self._start)))
            totals = self._totals
        # The day whose running total at its end first reaches the target.
        index = bisect_left(totals, target, lo=ordinal - self._first + 1) - 1
        return self._moment(self._first + index, self._start + target - totals[index])

    def add_working_days(self, start: datetime, days: float) -> datetime:
        """`add_working_time` with `days` full working days (fractions allowed)."""
        return self.add_working_time(start, days * self.day_length)

    def next_working_start(self, moment: datetime) -> datetime:
        """`moment` if it is working time, else the next working morning."""
        return self._moment(*self._working_start(*self._split(moment)))

    def next_morning(self, after: date, around_the_clock: bool) -> datetime:
        """The morning after `after` on which the next overdue notice goes out: the next
        day's, around the clock; else the next working day's."""
        key = (after, around_the_clock)
        morning = self._mornings.get(key)
        if morning is None:
            ordinal = after.toordinal()
            following = ordinal + 1 if around_the_clock else self._next_working_day(ordinal)
            morning = self._moment(following, self._start)
            self._mornings[key] = morning
        return morning

    def in_working_day(self, moment: datetime) -> bool:
        """Inside working hours, end of day included (a deadline at 17:30 is chased then)."""
        ordinal, into = self._split(moment)
        return self._is_working(ordinal) and self._start <= into <= self._end


def _micros(clock: time) -> int:
    return ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000 + clock.microsecond


class ChaseStep(NamedTuple):
    """One chasing step that is due: a reminder, an overdue notice or an escalation."""

    key: str
    kind: str  # reminder | overdue | supervision | leaders
    stage: str  # sign | reply | resolve
    due: datetime


def _reminder_at(
    start: datetime, due: datetime, fraction: float, wall_clock: bool, calendar: SweepCalendar
) -> datetime:
    if wall_clock:
        return start + (due - start) * fraction
    return calendar.add_working_time(start, calendar.working_time_between(start, due) * fraction)


def _last_notices(fired: frozenset[str]) -> dict[str, str]:
    """The date of the latest overdue notice of each stage, from the fired keys."""
    last: dict[str, str] = {}
    for key in fired:
        stage, _, rest = key.partition(":overdue:")
        if rest and rest > last.get(stage, ""):
            last[stage] = rest
    return last


def plan_chase(
    *,
    stages: dict[str, datetime],
    assigned_at: datetime,
    fired: frozenset[str],
    track: TrackPolicy,
    chasing: ChasingPolicy,
    calendar: SweepCalendar,
    now: datetime,
) -> tuple[list[ChaseStep], datetime | None]:
    """The steps due now for an assignment's open stages, and when to look again."""
    now = now.astimezone(UTC)  # the stored deadlines' zone: cheap comparisons
    steps: list[ChaseStep] = []
    upcoming: list[datetime] = []
    around = track.around_the_clock
    overdue_stages: list[tuple[str, datetime]] = []
    last_notices: dict[str, str] | None = None
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
        if last_notices is None:
            last_notices = _last_notices(fired)
        last_notice = last_notices.get(stage)
        if last_notice is not None:
            next_at = calendar.next_morning(date.fromisoformat(last_notice), around)
        else:
            next_at = (
                due
                if around or wall_clock or calendar.in_working_day(due)
                else calendar.next_working_start(due)
            )
        if now >= next_at:
            today = calendar.local_date(now)
            steps.append(ChaseStep(f"{stage}:overdue:{today.isoformat()}", "overdue", stage, due))
            next_at = calendar.next_morning(today, around)
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


@dataclass(frozen=True)
class ChasedCase:
    """What chasing needs of an assignment's case: which round is current, the track."""

    id: int
    number: str
    track: Track | None
    round: int
    is_open: bool


def _fired_after(fired: list[str], steps: list[ChaseStep]) -> list[str]:
    """The fired keys once `steps` are taken. An overdue notice replaces the stage's
    earlier ones: planning only reads the latest, so the list stays short however long a
    case stays overdue."""
    renewed = [f"{step.stage}:overdue:" for step in steps if step.kind == "overdue"]
    if renewed:
        prefixes = tuple(renewed)
        fired = [key for key in fired if not key.startswith(prefixes)]
    else:
        fired = list(fired)
    fired.extend(step.key for step in steps)
    return fired


_SYSTEM = Actor.system()


def chase_assignment(
    assignment: Assignment,
    case: ChasedCase,
    policy: Policy,
    calendar: SweepCalendar,
    now: datetime,
) -> list[Event]:
    """Take the chasing steps due now on one assignment; returns their events.

    Each step's key goes into `assignment.chase_fired` with its event, and
    `next_check_at` says when to look again (None: nothing left to chase — the case is
    closed or off the round, or the assignment finished). An open question to the
    citizen that pauses the clock stops the resolve stage from being chased.
    """
    if (
        case.track is None
        or not case.is_open
        or assignment.round != case.round
        or assignment.state not in CHASED_STATES
    ):
        assignment.next_check_at = None
        return []
    stages = assignment.open_stage_deadlines()
    if assignment.paused_at is not None:
        stages.pop("resolve", None)  # waiting for the citizen: the clock is stopped
    # The calendar is asked in the stored deadlines' zone: comparing and hashing moments
    # of one fixed zone is several times cheaper than of the policy's zone.
    utc_now = now.astimezone(UTC)
    steps, next_check = plan_chase(
        stages=stages,
        assigned_at=assignment.assigned_at,
        fired=frozenset(assignment.chase_fired),
        track=policy.track(case.track),
        chasing=policy.chasing,
        calendar=calendar,
        now=utc_now,
    )
    events: list[Event] = []
    if steps:
        assignment.chase_fired = _fired_after(assignment.chase_fired, steps)
    role = assignment.role.value
    unit = assignment.unit_code
    for step in steps:
        details = {"stage": step.stage, "due": step.due.isoformat(), "role": role}
        if step.kind == "reminder":
            events.append(Event("ReminderSent", now, _SYSTEM, unit, details))
        elif step.kind == "overdue":
            days = calendar.working_days_between(step.due, utc_now)
            events.append(
                Event(
                    "OverdueNoticeSent",
                    now,
                    _SYSTEM,
                    unit,
                    {"days_overdue": round(days, 1), **details},
                )
            )
        else:
            events.append(
                Event(
                    "CaseEscalated",
                    now,
                    _SYSTEM,
                    unit,
                    {"level": step.kind, "reason": "overdue", **details},
                )
            )
    assignment.next_check_at = next_check
    return events
