"""The deadline sweep's cached calendar gives exactly the working calendar's answers.

`SweepCalendar` keeps a running total of working time per day so the sweep need not walk
the calendar day by day for each assignment; these properties hold it to
`WorkingCalendar` over the real 2025-2026 schedule (holidays and adjusted working
weekends), a plain weekday calendar in a zone with summer time, and one instance asked in
any order (asking about an earlier day rebuilds its table).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.calendar import WorkingCalendar
from bot.domain.chasing import SweepCalendar

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
)
def test_the_sweep_calendar_answers_as_the_working_calendar(
    calendar: WorkingCalendar, questions: list[tuple[datetime, datetime, timedelta]]
) -> None:
    cached = SweepCalendar(calendar)  # one instance for all: the table grows both ways
    for start, end, duration in questions:
        assert cached.working_time_between(start, end) == calendar.working_time_between(
            start, end
        )
        assert cached.working_days_between(start, end) == calendar.working_days_between(
            start, end
        )
        assert cached.add_working_time(start, duration) == calendar.add_working_time(
            start, duration
        )
        for days in (0.75, 2, 5):
            assert cached.add_working_days(start, days) == calendar.add_working_days(start, days)
        assert cached.next_working_start(start) == calendar.next_working_start(start)


def test_a_deadline_ending_at_closing_time_stays_on_that_day() -> None:
    calendar = WorkingCalendar()
    cached = SweepCalendar(calendar)
    friday = datetime(2026, 9, 18, 9, 0, tzinfo=SH)  # Friday before the 09-20 working Sunday
    assert cached.add_working_days(friday, 1) == datetime(2026, 9, 18, 17, 30, tzinfo=SH)
    # 1.5 working days on: the adjusted working Sunday 2026-09-20 counts.
    assert cached.add_working_days(friday, 1.5) == datetime(2026, 9, 20, 13, 15, tzinfo=SH)


def test_the_next_notice_morning_skips_days_off_unless_chased_around_the_clock() -> None:
    cached = SweepCalendar(WorkingCalendar())
    # Thursday 2026-09-24: Mid-Autumn (09-25 to 09-27) comes next.
    assert cached.next_morning(date(2026, 9, 24), False) == datetime(2026, 9, 28, 9, tzinfo=SH)
    assert cached.next_morning(date(2026, 9, 24), True) == datetime(2026, 9, 25, 9, tzinfo=SH)
    assert cached.in_working_day(datetime(2026, 9, 24, 17, 30, tzinfo=SH))
    assert not cached.in_working_day(datetime(2026, 9, 25, 10, 0, tzinfo=SH))
