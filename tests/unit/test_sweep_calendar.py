"""The deadline sweep's cached calendar gives exactly the working calendar's answers.

`SweepCalendar` keeps a running total of working time per day so the sweep need not walk
the calendar day by day for each assignment; these properties hold it to
`WorkingCalendar` over the real 2025-2026 schedule (holidays and adjusted working
weekends), a plain weekday calendar in a zone with summer time (whose changes take the
exact datetime way), and one instance asked in any order (asking about an earlier day
rebuilds its table). It works on moments as stored (integer microseconds, `to_db`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.calendar import WorkingCalendar
from bot.domain.chasing import SweepCalendar, _scaled
from storage.db import from_db, to_db

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = st.sampled_from(
    [
        WorkingCalendar(),
        WorkingCalendar(kind="weekdays", tz=BERLIN, day_start=time(8), day_end=time(16, 45)),
        WorkingCalendar(extra_holidays=frozenset({date(2026, 3, 4)})),
    ]
)
MOMENTS = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2026, 10, 31),
    timezones=st.sampled_from([SH, BERLIN, UTC]),
)
DURATIONS = st.integers(min_value=0, max_value=int(20 * 8.5 * 3600 * 1_000_000)).map(
    lambda us: timedelta(microseconds=us)
)


@settings(max_examples=200, deadline=None)
@given(
    calendar=CALENDARS,
    questions=st.lists(st.tuples(MOMENTS, MOMENTS, DURATIONS), min_size=1, max_size=12),
    fraction=st.floats(min_value=0, max_value=30),
)
def test_the_sweep_calendar_answers_as_the_working_calendar(
    calendar: WorkingCalendar,
    questions: list[tuple[datetime, datetime, timedelta]],
    fraction: float,
) -> None:
    cached = SweepCalendar(calendar)  # one instance for all: the table grows both ways
    for start, end, duration in questions:
        at, until, amount = us(start), us(end), duration // timedelta(microseconds=1)
        assert cached.working_time_between(at, until) == us_of(
            calendar.working_time_between(start, end)
        )
        assert cached.working_days_between(at, until) == calendar.working_days_between(start, end)
        assert from_db(cached.add_working_time(at, amount)) == calendar.add_working_time(
            start, duration
        )
        for days in (0.75, 2, 5, fraction):
            assert from_db(
                cached.add_working_time(at, cached.working_days(days))
            ) == calendar.add_working_days(start, days)
        assert from_db(cached.next_working_start(at)) == calendar.next_working_start(start)
        assert cached.local_ordinal(at) == start.astimezone(calendar.tz).toordinal()
        assert cached.in_working_day(at) == (
            calendar.is_working_day(start.astimezone(calendar.tz).date())
            and calendar.day_start <= start.astimezone(calendar.tz).time() <= calendar.day_end
        )


@given(
    micros=st.integers(min_value=0, max_value=10**15),
    factor=st.floats(min_value=0, max_value=1000),
)
def test_scaling_rounds_as_timedelta_times_float_does(micros: int, factor: float) -> None:
    expected = (timedelta(microseconds=micros) * factor) // timedelta(microseconds=1)
    assert _scaled(micros, factor.as_integer_ratio()) == expected


def us(moment: datetime) -> int:
    stored = to_db(moment)
    assert stored is not None
    return stored


def us_of(duration: timedelta) -> int:
    return duration // timedelta(microseconds=1)


def test_a_deadline_ending_at_closing_time_stays_on_that_day() -> None:
    calendar = WorkingCalendar()
    cached = SweepCalendar(calendar)
    friday = datetime(2026, 9, 18, 9, 0, tzinfo=SH)  # Friday before the 09-20 working Sunday
    assert from_db(cached.add_working_time(us(friday), cached.working_days(1))) == datetime(
        2026, 9, 18, 17, 30, tzinfo=SH
    )
    # 1.5 working days on: the adjusted working Sunday 2026-09-20 counts.
    assert from_db(cached.add_working_time(us(friday), cached.working_days(1.5))) == datetime(
        2026, 9, 20, 13, 15, tzinfo=SH
    )


def test_the_next_notice_morning_skips_days_off_unless_chased_around_the_clock() -> None:
    cached = SweepCalendar(WorkingCalendar())
    # Thursday 2026-09-24: Mid-Autumn (09-25 to 09-27) comes next.
    thursday = date(2026, 9, 24).toordinal()
    assert from_db(cached.next_morning(thursday, False)) == datetime(2026, 9, 28, 9, tzinfo=SH)
    assert from_db(cached.next_morning(thursday, True)) == datetime(2026, 9, 25, 9, tzinfo=SH)
    assert cached.in_working_day(us(datetime(2026, 9, 24, 17, 30, tzinfo=SH)))
    assert not cached.in_working_day(us(datetime(2026, 9, 25, 10, 0, tzinfo=SH)))
