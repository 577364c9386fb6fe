"""Working-time deadline arithmetic for the PRC official working calendar.

Deadlines for citizen messages are set in working days, and the State Council publishes
each year's holidays and adjusted working weekend days (调休上班) only a few weeks before the
year starts. So the schedule for a year comes from, in order of trust:

1. the policy file (``[calendar.years.YYYY]``), which an operator can update at once;
2. the ``chinese_calendar`` package, which ships the published schedules it knows;
3. the ``holidays`` package's China holidays plus weekends, which knows the festivals of
   any year but not the adjusted working weekends, so it is only an approximation;
4. plain Monday–Friday, if even that fails.

Working time is the wall-clock time inside ``[day_start, day_end)`` on working days, in the
calendar's time zone. Everything here is pure apart from one logged warning per year for
which the calendar had to fall back to an approximation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays

__all__ = ["ScheduleSource", "WorkingCalendar", "YearSchedule"]

logger = logging.getLogger(__name__)

ScheduleSource = Literal["policy", "package", "fallback", "weekdays"]

# Module constant rather than a call in the field default (RUF009); ZoneInfo is immutable.
_SHANGHAI = ZoneInfo("Asia/Shanghai")
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule as the State Council publishes it (from the policy file)."""

    year: int
    holidays: frozenset[date]  # days off that would otherwise be working days (and festival days)
    workdays: frozenset[date]  # adjusted working weekend days (调休上班)

    def __post_init__(self) -> None:
        # The policy loader may hand over lists; freezing here keeps the dataclass hashable.
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        # A date filed under the wrong year would be silently ignored by the lookup, so a
        # typo in the policy file must fail loudly instead.
        stray = sorted(d for d in self.holidays | self.workdays if d.year != self.year)
        if stray:
            raise ValueError(
                f"calendar.years.{self.year}: dates outside {self.year}: "
                + ", ".join(d.isoformat() for d in stray)
            )


@dataclass(frozen=True, eq=False)
class WorkingCalendar:
    """Working days and hours, and deadline arithmetic in working time.

    ``kind="official"`` follows the PRC official schedule (policy years, then the
    ``chinese_calendar`` package, then an approximation); ``kind="weekdays"`` is plain
    Monday–Friday. ``extra_workdays`` and ``extra_holidays`` are local exceptions that win
    over both. All datetime arguments must be timezone-aware; results are in ``tz``.
    """

    kind: Literal["official", "weekdays"] = "official"
    tz: ZoneInfo = _SHANGHAI
    day_start: time = time(9, 0)
    day_end: time = time(17, 30)
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    official_years: tuple[YearSchedule, ...] = ()  # policy-supplied years; win over the package

    # Caches: the deadline sweep asks about the same dates over and over in a hot loop.
    _day_cache: dict[date, bool] = field(default_factory=dict, init=False, repr=False)
    _package_years: dict[int, bool] = field(default_factory=dict, init=False, repr=False)
    _fallback_years: dict[int, frozenset[date] | None] = field(
        default_factory=dict, init=False, repr=False
    )
    _policy: dict[int, YearSchedule] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("official", "weekdays"):
            raise ValueError(f"unknown calendar kind {self.kind!r}")
        if self.day_start.tzinfo is not None or self.day_end.tzinfo is not None:
            # Hours are wall-clock hours in `tz`; an aware time would make comparisons raise.
            raise ValueError("day_start and day_end must be naive times (they are read in tz)")
        if not self.day_start < self.day_end:
            raise ValueError("day_start must be before day_end")
        object.__setattr__(self, "extra_holidays", frozenset(self.extra_holidays))
        object.__setattr__(self, "extra_workdays", frozenset(self.extra_workdays))
        object.__setattr__(self, "official_years", tuple(self.official_years))
        for schedule in self.official_years:
            # Two entries for one year means the policy file is ambiguous; refuse to guess.
            if schedule.year in self._policy:
                raise ValueError(f"calendar.years.{schedule.year} is given twice")
            self._policy[schedule.year] = schedule

    # ------------------------------------------------------------------ working days

    @property
    def day_length(self) -> timedelta:
        """The working time in one full working day (``day_end - day_start``)."""
        return datetime.combine(date.min, self.day_end) - datetime.combine(date.min, self.day_start)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day; never raises for a valid ``date``."""
        if isinstance(day, datetime):
            # A datetime is a date subclass but never equals a date, so it would silently
            # miss every set; the caller must pick the local date itself.
            raise TypeError("is_working_day() takes a date, not a datetime")
        cached = self._day_cache.get(day)
        if cached is None:
            cached = self._decide(day)
            self._day_cache[day] = cached
        return cached

    def _decide(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        if self.kind == "weekdays":
            return day.weekday() < 5
        schedule = self._policy.get(day.year)
        if schedule is not None:
            return (day.weekday() < 5 and day not in schedule.holidays) or (
                day in schedule.workdays
            )
        if self._package_knows(day.year):
            try:
                return bool(chinese_calendar.is_workday(day))
            except Exception:
                logger.exception("chinese_calendar failed on %s; using the fallback", day)
        return self._fallback_is_working_day(day)

    def _package_knows(self, year: int) -> bool:
        known = self._package_years.get(year)
        if known is None:
            try:
                chinese_calendar.is_workday(date(year, 1, 1))
                known = True
            except Exception:
                # NotImplementedError is the documented answer for an unknown year; anything
                # else is treated the same so that a bad package release cannot crash us.
                known = False
            self._package_years[year] = known
        return known

    def _fallback_is_working_day(self, day: date) -> bool:
        if day.year not in self._fallback_years:
            self._fallback_years[day.year] = self._load_fallback_year(day.year)
        festival_days = self._fallback_years[day.year]
        return day.weekday() < 5 and (festival_days is None or day not in festival_days)

    def _load_fallback_year(self, year: int) -> frozenset[date] | None:
        try:
            festival_days: frozenset[date] | None = frozenset(
                holidays.country_holidays("CN", years=year).keys()
            )
            approximation = "the `holidays` package's China holidays plus weekends"
        except Exception:
            festival_days = None
            approximation = "plain Monday-Friday"
        # Called once per year per calendar, so this warns exactly once per year.
        logger.warning(
            "The official working schedule for %d is missing (not in the policy file, and "
            "chinese_calendar %s does not know it); using %s, which has no adjusted working "
            "weekend days (调休上班). Add it to the policy as [calendar.years.%d] with "
            "`holidays = [...]` and `workdays = [...]` lists of ISO dates from the State "
            "Council notice.",
            year,
            getattr(chinese_calendar, "__version__", "?"),
            approximation,
            year,
        )
        return festival_days

    def schedule_source(self, year: int) -> ScheduleSource:
        """Where the working days of ``year`` come from."""
        if self.kind == "weekdays":
            return "weekdays"
        if year in self._policy:
            return "policy"
        if self._package_knows(year):
            return "package"
        return "fallback"

    def next_year_schedule_missing(self, today: date) -> bool:
        """Whether an operator should add a year's official schedule to the policy now.

        True when the current year is already on the fallback, or in December when next
        year would be (the State Council notice is usually out by then).
        """
        if self.kind != "official":
            return False
        if self.schedule_source(today.year) == "fallback":
            return True
        return today.month == 12 and self.schedule_source(today.year + 1) == "fallback"

    # ------------------------------------------------------------------ working time

    def _local(self, at: datetime, name: str = "datetime") -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got naive {at!r}")
        return at.astimezone(self.tz)

    def _at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.tz)

    def _next_working_day_after(self, day: date) -> date:
        day += _ONE_DAY
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def is_working_time(self, at: datetime) -> bool:
        """Whether ``at`` falls inside working hours of a working day."""
        local = self._local(at, "at")
        return self.day_start <= local.time() < self.day_end and self.is_working_day(local.date())

    def next_working_morning(self, at: datetime) -> datetime:
        """The first ``day_start`` of a working day strictly after ``at``."""
        local = self._local(at, "at")
        day = local.date()
        if local.time() < self.day_start and self.is_working_day(day):
            return self._at(day, self.day_start)
        return self._at(self._next_working_day_after(day), self.day_start)

    def next_working_start(self, at: datetime) -> datetime:
        """``at`` itself if it is working time, else the start of the next working period."""
        local = self._local(at, "at")
        if self.is_working_time(local):
            return local
        return self.next_working_morning(local)

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of working time after ``start``.

        A start outside working hours counts from the next working morning. A duration
        that runs out exactly at the end of a working day ends at that ``day_end``, not at
        the next morning, so a one-day deadline reads "today 17:30".
        """
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        pos = self.next_working_start(self._local(start, "start"))
        day = pos.date()
        remaining = duration
        # One iteration per working day: fast enough for any realistic deadline.
        while True:
            available = self._at(day, self.day_end) - pos
            if remaining <= available:
                return pos + remaining
            remaining -= available
            day = self._next_working_day_after(day)
            pos = self._at(day, self.day_start)

    def add_working_days(self, start: datetime, days: float) -> datetime:
        """``add_working_time`` with ``days`` full working days (fractions allowed)."""
        return self.add_working_time(start, days * self.day_length)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The working time inside ``[start, end)``; zero if ``end <= start``."""
        local_start = self._local(start, "start")
        local_end = self._local(end, "end")
        if local_end <= local_start:
            return _ZERO
        total = _ZERO
        day = local_start.date()
        last = local_end.date()
        while day <= last:
            if self.is_working_day(day):
                lo = max(local_start, self._at(day, self.day_start))
                hi = min(local_end, self._at(day, self.day_end))
                if hi > lo:
                    total += hi - lo
            day += _ONE_DAY
        return total

    def working_days_between(self, start: datetime, end: datetime) -> float:
        """``working_time_between`` in working days (fractional)."""
        return self.working_time_between(start, end) / self.day_length
