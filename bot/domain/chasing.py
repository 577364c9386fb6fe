"""Chasing deadlines (跟踪催办) and escalation (督办), as pure planning over one assignment.

Deadlines stay data: the sweep asks the index which assignments are due for a look, and
this module says which steps are due now, records each as an event, and says when to look
again. Every step has a key stored on the assignment with its event, so no step ever
fires twice — not across restarts, not for two sweeps close together, not after the clock
jumps backwards.

The sweep plans up to a thousand assignments in one transaction, so planning works on
times as the database stores them — integer microseconds since the epoch, UTC — and
`SweepCalendar` answers the working-time questions from a per-day table: integer
arithmetic instead of datetime objects (several times cheaper, and planning was most of
the sweep), and no walking the calendar day by day for each assignment.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

from bot.domain.calendar import WorkingCalendar
from bot.domain.case import Actor, AssignmentRole, AssignmentState, Event
from bot.domain.policy import Policy, Track

CHASED_STATES = frozenset({AssignmentState.ASSIGNED, AssignmentState.SIGNED})
STAGES = ("sign", "reply", "resolve")
DAY = 86_400_000_000  # microseconds
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()


def _micros(moment: datetime) -> int:
    """An aware moment as stored: integer microseconds since the epoch."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _moment(micros: int) -> datetime:
    """A stored moment as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=micros)


def _clock_micros(clock: time | datetime) -> int:
    """Microseconds since midnight of a time of day (or of a datetime's wall clock)."""
    return ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000 + clock.microsecond


def _scaled(micros: int, factor: tuple[int, int]) -> int:
    """`micros` × a factor given as its `float.as_integer_ratio()`, rounded half to even
    as `timedelta * float` rounds: the working calendar scales timedeltas, and the
    sweep's moments must be exactly its moments."""
    numerator, denominator = factor
    quotient, remainder = divmod(micros * numerator, denominator)
    remainder *= 2
    if remainder > denominator or (remainder == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


class SweepCalendar:
    """A working calendar's deadline arithmetic over stored moments, cached by day for one
    sweep.

    Moments are integer microseconds since the epoch (UTC) and durations microseconds of
    working time. Working time up to a moment is the working time of the whole days before
    it (a running total kept per day) plus the part of its own day; so the working time
    between two moments is one subtraction, and adding working time is a binary search
    over the days, however far apart the moments are. Inside, moments are (day ordinal,
    microseconds into the local day) pairs; the zone's offset is looked up once per day,
    and a day on which it changes (summer time) takes the exact datetime way. The answers
    are exactly `WorkingCalendar`'s — a test holds them to it — including its wall-clock
    arithmetic in its own time zone.
    """

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self.tz = calendar.tz
        self.day_length = calendar.day_length // _MICROSECOND
        self._start = _clock_micros(calendar.day_start)
        self._end = _clock_micros(calendar.day_end)
        # Per day from ordinal _first on: working time before it (µs), and whether it is
        # a working day.
        self._first = 0
        self._totals: list[int] = []
        self._working: list[bool] = []
        # The zone's offset (µs) through a whole UTC day, and through all the wall-clock
        # times of a local day; the days on which it changes, apart. (No zone in the tz
        # database changes its offset and back again within one day.)
        self._offsets: dict[int, int] = {}
        self._wall_offsets: dict[int, int] = {}
        self._changing: set[int] = set()
        self._wall_changing: set[int] = set()
        self._mornings: dict[tuple[int, bool], int] = {}
        self._positions: dict[int, int] = {}

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
            self._positions.clear()  # they counted from the old first day
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

    def _locate(self, at: int) -> tuple[int, int]:
        """(the table's index of the local day of a stored moment, microseconds into that
        day), covering the day if need be. The sweep asks this a few times for every
        assignment, so the common case takes no other call."""
        day = at // DAY
        offset = self._offsets.get(day)
        if offset is None:
            offset = self._offset_through(day)
        if offset is None:
            local = _moment(at).astimezone(self.tz)
            ordinal, into = local.toordinal(), _clock_micros(local)
        else:
            local_at = at + offset
            ordinal, into = local_at // DAY + _EPOCH_ORDINAL, local_at % DAY
        index = ordinal - self._first
        if not 0 <= index < len(self._working):
            self._cover(ordinal, ordinal)
            index = ordinal - self._first
        return index, into

    def _position(self, at: int) -> int:
        """Working time (µs) from the table's first day to a stored moment; a moment
        outside working time is at the position of the next working morning. Kept per
        moment: planning asks for now and for each missed deadline more than once."""
        position = self._positions.get(at)
        if position is None:
            index, into = self._locate(at)  # may move the table: cached only after it
            position = self._totals[index]
            if self._working[index] and into > self._start:
                position += min(into, self._end) - self._start
            self._positions[at] = position
        return position

    def _offset_through(self, day: int) -> int | None:
        """The zone's offset through UTC day `day`, or None if it changes that day."""
        if day in self._changing:
            return None
        begin = _EPOCH + timedelta(days=day)
        first = begin.astimezone(self.tz).utcoffset()
        last = (begin + timedelta(days=1) - _MICROSECOND).astimezone(self.tz).utcoffset()
        if first is None or first != last:
            self._changing.add(day)
            return None
        offset = self._offsets[day] = first // _MICROSECOND
        return offset

    def _instant(self, ordinal: int, into: int) -> int:
        """The stored moment `into` µs after local midnight of day `ordinal`: wall-clock
        arithmetic in the calendar's zone, as WorkingCalendar does."""
        offset = self._wall_offsets.get(ordinal)
        if offset is None:
            offset = self._wall_offset_through(ordinal)
            if offset is None:
                midnight = datetime.combine(date.fromordinal(ordinal), time(0), tzinfo=self.tz)
                return _micros(midnight + timedelta(microseconds=into))
        return (ordinal - _EPOCH_ORDINAL) * DAY + into - offset

    def _wall_offset_through(self, ordinal: int) -> int | None:
        """The zone's offset of every wall-clock time of local day `ordinal`, or None if
        it changes that day."""
        if ordinal in self._wall_changing:
            return None
        day = date.fromordinal(ordinal)
        first = datetime.combine(day, time(0), tzinfo=self.tz).utcoffset()
        last = datetime.combine(day, time.max, tzinfo=self.tz).utcoffset()
        if first is None or first != last:
            self._wall_changing.add(ordinal)
            return None
        offset = self._wall_offsets[ordinal] = first // _MICROSECOND
        return offset

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

    def local_ordinal(self, at: int) -> int:
        """The ordinal of the calendar day of `at` in the calendar's zone."""
        return self._locate(at)[0] + self._first

    def working_time_between(self, start: int, end: int) -> int:
        """The working time (µs) inside [start, end); zero if end <= start."""
        if end <= start:
            return 0
        # The start first: a day before the table moves it, a later day only extends it.
        begin = self._position(start)
        return self._position(end) - begin

    def working_days_between(self, start: int, end: int) -> float:
        """`working_time_between` in working days (fractional)."""
        return self.working_time_between(start, end) / self.day_length

    def add_working_time(self, start: int, duration: int) -> int:
        """The moment `duration` µs of working time after `start` (a start outside working
        hours counts from the next working morning; a duration ending exactly at the end
        of a day ends at that day's end)."""
        if duration <= 0:
            if duration < 0:
                raise ValueError(f"duration must not be negative, got {duration} µs")
            return self.next_working_start(start)
        index, into = self._locate(start)
        target = self._totals[index] + duration
        if self._working[index] and into > self._start:
            target += min(into, self._end) - self._start
        totals = self._totals
        while totals[-1] < target:  # grow by the working days still missing
            last = self._first + len(self._working) - 1
            self._cover(last, last + -(-(target - totals[-1]) // (self._end - self._start)))
            totals = self._totals
        # The day whose running total at its end first reaches the target: after the
        # start's day, since the target lies beyond the start's position.
        found = bisect_left(totals, target, lo=index + 1) - 1
        return self._instant(self._first + found, self._start + target - totals[found])

    def working_days(self, days: float) -> int:
        """`days` working days (fractions allowed) as µs of working time, rounded as the
        working calendar rounds `days * day_length`."""
        return _scaled(self.day_length, float(days).as_integer_ratio())

    def next_working_start(self, at: int) -> int:
        """`at` if it is working time, else the next working morning."""
        index, into = self._locate(at)
        return self._instant(*self._working_start(self._first + index, into))

    def next_morning(self, after: int, around_the_clock: bool) -> int:
        """The morning after day ordinal `after` on which the next overdue notice goes
        out: the next day's, around the clock; else the next working day's."""
        key = (after, around_the_clock)
        morning = self._mornings.get(key)
        if morning is None:
            following = after + 1 if around_the_clock else self._next_working_day(after)
            morning = self._mornings[key] = self._instant(following, self._start)
        return morning

    def in_working_day(self, at: int) -> bool:
        """Inside working hours, end of day included (a deadline at 17:30 is chased then)."""
        index, into = self._locate(at)
        return self._working[index] and self._start <= into <= self._end


class ChasedCase(NamedTuple):
    """What chasing needs of an assignment's case: which round is current, the track."""

    id: int
    number: str
    track: Track | None
    round: int
    is_open: bool


class ChasedAssignment(NamedTuple):
    """What chasing reads of an assignment; its times as stored (µs since the epoch)."""

    id: int
    unit_code: str
    role: AssignmentRole
    round: int
    state: AssignmentState
    assigned_at: int
    sign_due: int | None
    reply_due: int
    resolve_due: int | None
    signed_at: int | None
    replied_at: int | None
    resolved_at: int | None
    paused_at: int | None
    chase_fired: list[str]


class ChaseOutcome(NamedTuple):
    """What one look at an assignment decided."""

    events: list[Event]
    fired: list[str] | None  # the fired keys after the steps taken; None: unchanged
    next_check: int | None  # when to look again; None: nothing left to chase


_SYSTEM = Actor.system()
_BY_DUE = itemgetter(1)
_REMINDER_KEYS = {stage: f"{stage}:reminder" for stage in STAGES}
_OVERDUE_PREFIXES = {stage: f"{stage}:overdue:" for stage in STAGES}


def _last_notices(fired: list[str]) -> dict[str, str]:
    """The date of the latest overdue notice of each stage, from the fired keys."""
    last: dict[str, str] = {}
    for key in fired:
        stage, _, rest = key.partition(":overdue:")
        if rest and rest > last.get(stage, ""):
            last[stage] = rest
    return last


def _fired_after(fired: list[str], steps: list[tuple[str, str, str, int]]) -> list[str]:
    """The fired keys once `steps` are taken. An overdue notice replaces the stage's
    earlier ones: planning only reads the latest, so the list stays short however long a
    case stays overdue."""
    kept = list(fired)
    for key, kind, stage, _ in steps:
        if kind == "overdue":
            prefix = _OVERDUE_PREFIXES[stage]
            kept = [old for old in kept if not old.startswith(prefix)]
        kept.append(key)
    return kept


class Chaser:
    """One sweep's planning: the policy's figures worked out once, the calendar's days
    cached, and `now` fixed for every assignment the sweep looks at."""

    def __init__(self, policy: Policy, now: datetime) -> None:
        self.calendar = calendar = SweepCalendar(policy.calendar)
        self.now = now
        self.now_at = _micros(now)
        self.reminder_at = float(policy.chasing.reminder_at).as_integer_ratio()
        self.escalations = tuple(
            (
                f"escalation:{level}",
                level,
                calendar.working_days(days),
            )
            for level, days in (
                ("supervision", policy.chasing.supervision_after_days),
                ("leaders", policy.chasing.leaders_after_days),
            )
        )
        # Per track: whether each stage's deadline is in wall-clock hours, and whether
        # the track is chased around the clock.
        self.tracks = {
            track: (
                {stage: getattr(rules, stage).unit == "h" for stage in STAGES},
                rules.around_the_clock,
            )
            for track, rules in policy.tracks.items()
        }
        self.today = calendar.local_ordinal(self.now_at)
        self.today_key = date.fromordinal(self.today).isoformat()
        self._after_notices: dict[tuple[str, bool], int] = {}

    def chase(self, assignment: ChasedAssignment, case: ChasedCase) -> ChaseOutcome:
        """Take the chasing steps due now on one assignment.

        Each step's key goes into the fired keys with its event; the next check is when
        to look again (None: nothing left to chase — the case is closed or off the round,
        or the assignment finished). An open question to the citizen that pauses the
        clock stops the resolve stage from being chased.
        """
        a = assignment
        if (
            case.track is None
            or not case.is_open
            or a.round != case.round
            or a.state not in CHASED_STATES
        ):
            return ChaseOutcome([], None, None)
        stages: list[tuple[str, int]] = []
        if a.sign_due is not None and a.signed_at is None:
            stages.append(("sign", a.sign_due))
        if a.replied_at is None:
            stages.append(("reply", a.reply_due))
        if (
            a.role is AssignmentRole.LEAD
            and a.resolved_at is None
            and a.resolve_due is not None
            and a.paused_at is None  # waiting for the citizen: the clock is stopped
        ):
            stages.append(("resolve", a.resolve_due))
        if len(stages) > 1:
            stages.sort(key=_BY_DUE)  # stable: equal deadlines keep the stages' order
        steps, next_check = self._plan(stages, a.assigned_at, a.chase_fired, case.track)
        if not steps:
            return ChaseOutcome([], None, next_check)
        role = a.role.value
        unit = a.unit_code
        now = self.now
        events: list[Event] = []
        notice: dict[str, Any] | None = None
        for _, kind, stage, due in steps:
            details = {"stage": stage, "due": _moment(due).isoformat(), "role": role}
            if kind == "reminder":
                events.append(Event("ReminderSent", now, _SYSTEM, unit, details))
            elif kind == "overdue":
                days = round(self.calendar.working_days_between(due, self.now_at), 1)
                if notice is None:
                    notice = {"days_overdue": days, **details}
                    events.append(Event("OverdueNoticeSent", now, _SYSTEM, unit, notice))
                else:
                    # One notice a morning per assignment, naming every deadline it has
                    # missed: the earliest in the notice's own fields, the others after.
                    more = notice.setdefault("more", [])
                    more.append({"days_overdue": days, "stage": stage, "due": details["due"]})
            else:
                details = {"level": kind, "reason": "overdue", **details}
                events.append(Event("CaseEscalated", now, _SYSTEM, unit, details))
        return ChaseOutcome(events, _fired_after(a.chase_fired, steps), next_check)

    def _plan(
        self, stages: list[tuple[str, int]], assigned_at: int, fired: list[str], track: Track
    ) -> tuple[list[tuple[str, str, str, int]], int | None]:
        """The steps due now for the open stages (deadline order) as (key, kind, stage,
        due), and when to look again."""
        calendar = self.calendar
        now = self.now_at
        wall_clock, around = self.tracks[track]
        steps: list[tuple[str, str, str, int]] = []
        upcoming: list[int] = []
        missed: tuple[str, int] | None = None  # the earliest missed deadline
        last_notices: dict[str, str] | None = None
        for stage, due in stages:
            if now < due:
                key = _REMINDER_KEYS[stage]
                if key not in fired:
                    remind = self._reminder_at(assigned_at, due, wall_clock[stage])
                    if now >= remind:
                        steps.append((key, "reminder", stage, due))
                    else:
                        upcoming.append(remind)
                upcoming.append(due)
                continue
            if missed is None:
                missed = (stage, due)
            if last_notices is None:
                last_notices = _last_notices(fired)
            last_notice = last_notices.get(stage)
            if last_notice is not None:
                next_at = self._morning_after(last_notice, around)
            elif around or wall_clock[stage] or calendar.in_working_day(due):
                next_at = due
            else:
                next_at = calendar.next_working_start(due)
            if now >= next_at:
                steps.append((f"{stage}:overdue:{self.today_key}", "overdue", stage, due))
                next_at = calendar.next_morning(self.today, around)
            upcoming.append(next_at)
        if missed is not None:
            stage, due = missed
            # Every moment in `upcoming` is after now. An escalation whose working days
            # have not passed by the earliest of them is neither due nor the next check:
            # two positions tell, where working out its moment costs a search.
            earliest = min(upcoming)
            overdue_by = calendar.working_time_between(due, earliest)
            for key, level, duration in self.escalations:
                if key in fired or duration > overdue_by:
                    continue
                threshold = calendar.add_working_time(due, duration)
                if now >= threshold:
                    steps.append((key, level, stage, due))
                else:
                    upcoming.append(threshold)
        return steps, (min(upcoming) if upcoming else None)

    def _reminder_at(self, start: int, due: int, wall_clock: bool) -> int:
        if wall_clock:
            return start + _scaled(due - start, self.reminder_at)
        calendar = self.calendar
        window = calendar.working_time_between(start, due)
        return calendar.add_working_time(start, _scaled(window, self.reminder_at))

    def _morning_after(self, notice_date: str, around_the_clock: bool) -> int:
        """The morning of the overdue notice after one sent on `notice_date` (ISO)."""
        key = (notice_date, around_the_clock)
        morning = self._after_notices.get(key)
        if morning is None:
            ordinal = date.fromisoformat(notice_date).toordinal()
            morning = self._after_notices[key] = self.calendar.next_morning(
                ordinal, around_the_clock
            )
        return morning
