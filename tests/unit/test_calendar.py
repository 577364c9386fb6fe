"""Tests for bot.domain.calendar: working days, working time and deadline arithmetic.

The official-calendar expectations were written by hand from chinese_calendar 1.11's data
for 2026: 中秋 Fri 2026-09-25 to Sun 09-27 off; 国庆 Thu 10-01 to Wed 10-07 off; adjusted
working days (调休上班) Sun 2026-09-20 and Sat 2026-10-10 (others in 2026: Sun 01-04,
Sat 02-14, Sat 02-28, Sat 05-09).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.calendar import WorkingCalendar, YearSchedule

SH = ZoneInfo("Asia/Shanghai")
LOGGER = "bot.domain.calendar"


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=SH)


def fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.fixture
def weekdays() -> WorkingCalendar:
    return WorkingCalendar(kind="weekdays")


@pytest.fixture
def official() -> WorkingCalendar:
    return WorkingCalendar()


# --------------------------------------------------------------------------- weekdays


def test_day_length_default() -> None:
    assert WorkingCalendar().day_length == timedelta(hours=8, minutes=30)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Friday 16:00: 1.5 h on Friday, 7 h on Monday.
        (at(2026, 6, 5, 16), at(2026, 6, 8, 16)),
        # Saturday: counting starts Monday morning, a full day ends at Monday's close.
        (at(2026, 6, 6, 10), at(2026, 6, 8, 17, 30)),
        # Before opening: counts from 09:00 the same day.
        (at(2026, 6, 8, 8), at(2026, 6, 8, 17, 30)),
        # After hours: counts from the next working morning.
        (at(2026, 6, 8, 22), at(2026, 6, 9, 17, 30)),
        # Exactly at closing time is after hours.
        (at(2026, 6, 8, 17, 30), at(2026, 6, 9, 17, 30)),
    ],
)
def test_add_one_working_day_weekdays(
    weekdays: WorkingCalendar, start: datetime, expected: datetime
) -> None:
    result = weekdays.add_working_days(start, 1)
    assert result == expected
    assert result.tzinfo == SH


def test_fractional_days(weekdays: WorkingCalendar) -> None:
    assert weekdays.add_working_days(at(2026, 6, 8, 9), 0.25) == at(2026, 6, 8, 11, 7, 30)
    assert weekdays.add_working_days(at(2026, 6, 8, 9), 1.5) == at(2026, 6, 9, 13, 15)


def test_duration_ending_at_close_stays_on_that_day(weekdays: WorkingCalendar) -> None:
    assert weekdays.add_working_time(at(2026, 6, 8, 17), timedelta(minutes=30)) == at(
        2026, 6, 8, 17, 30
    )
    assert weekdays.add_working_time(at(2026, 6, 8, 17), timedelta(minutes=31)) == at(
        2026, 6, 9, 9, 1
    )


def test_zero_duration_is_next_working_start(weekdays: WorkingCalendar) -> None:
    assert weekdays.add_working_time(at(2026, 6, 8, 10), timedelta(0)) == at(2026, 6, 8, 10)
    assert weekdays.add_working_time(at(2026, 6, 6, 10), timedelta(0)) == at(2026, 6, 8, 9)


def test_negative_duration_rejected(weekdays: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="negative"):
        weekdays.add_working_time(at(2026, 6, 8, 10), timedelta(seconds=-1))


def test_fifteen_working_days_weekdays(weekdays: WorkingCalendar) -> None:
    # 15 working days from Monday 09:00 are three full weeks: Friday of week 3, 17:30.
    assert weekdays.add_working_days(at(2026, 6, 8, 9), 15) == at(2026, 6, 26, 17, 30)


def test_working_time_between_weekdays(weekdays: WorkingCalendar) -> None:
    assert weekdays.working_time_between(at(2026, 6, 5, 16), at(2026, 6, 8, 16)) == (
        weekdays.day_length
    )
    assert weekdays.working_time_between(at(2026, 6, 8, 12), at(2026, 6, 8, 12)) == timedelta(0)
    assert weekdays.working_time_between(at(2026, 6, 9), at(2026, 6, 8)) == timedelta(0)
    assert weekdays.working_days_between(at(2026, 6, 6), at(2026, 6, 13)) == 5.0


def test_weekdays_ignore_official_holidays(weekdays: WorkingCalendar) -> None:
    assert weekdays.is_working_day(date(2026, 10, 1))
    assert not weekdays.is_working_day(date(2026, 10, 10))
    assert weekdays.schedule_source(2026) == "weekdays"
    assert weekdays.schedule_source(2027) == "weekdays"
    assert not weekdays.next_year_schedule_missing(date(2026, 12, 1))


def test_is_working_time_and_next_starts(weekdays: WorkingCalendar) -> None:
    assert weekdays.is_working_time(at(2026, 6, 8, 9))
    assert weekdays.is_working_time(at(2026, 6, 8, 17, 29, 59))
    assert not weekdays.is_working_time(at(2026, 6, 8, 17, 30))
    assert not weekdays.is_working_time(at(2026, 6, 8, 8, 59))
    assert not weekdays.is_working_time(at(2026, 6, 6, 12))

    assert weekdays.next_working_start(at(2026, 6, 8, 12)) == at(2026, 6, 8, 12)
    assert weekdays.next_working_start(at(2026, 6, 8, 7)) == at(2026, 6, 8, 9)
    assert weekdays.next_working_start(at(2026, 6, 5, 18)) == at(2026, 6, 8, 9)

    # Strictly after: 09:00 itself moves on to the next working day.
    assert weekdays.next_working_morning(at(2026, 6, 8, 8)) == at(2026, 6, 8, 9)
    assert weekdays.next_working_morning(at(2026, 6, 8, 9)) == at(2026, 6, 9, 9)
    assert weekdays.next_working_morning(at(2026, 6, 8, 12)) == at(2026, 6, 9, 9)
    assert weekdays.next_working_morning(at(2026, 6, 5, 12)) == at(2026, 6, 8, 9)


# --------------------------------------------------------------------------- official 2026


def test_package_data_matches_expectations() -> None:
    # Guards the hand-written expectations below against a different package version.
    off = [date(2026, 9, 25), date(2026, 9, 26), date(2026, 9, 27)]
    off += [date(2026, 10, d) for d in range(1, 8)] + [date(2026, 10, 11)]
    on = [date(2026, 9, 20), date(2026, 9, 24), date(2026, 9, 28), date(2026, 9, 30)]
    on += [date(2026, 10, 8), date(2026, 10, 9), date(2026, 10, 10), date(2026, 10, 12)]
    assert not any(chinese_calendar.is_workday(d) for d in off)
    assert all(chinese_calendar.is_workday(d) for d in on)


def test_official_days_around_national_day(official: WorkingCalendar) -> None:
    assert official.schedule_source(2026) == "package"
    # 中秋: the Friday itself is a holiday.
    assert not official.is_working_day(date(2026, 9, 25))
    assert not official.is_working_day(date(2026, 9, 26))
    assert not official.is_working_day(date(2026, 9, 27))
    for d in range(1, 8):
        assert not official.is_working_day(date(2026, 10, d))
    assert official.is_working_day(date(2026, 10, 8))
    assert official.is_working_day(date(2026, 10, 9))
    assert not official.is_working_day(date(2026, 10, 11))


def test_adjusted_working_weekend_days(official: WorkingCalendar) -> None:
    assert date(2026, 9, 20).weekday() == 6  # Sunday
    assert date(2026, 10, 10).weekday() == 5  # Saturday
    assert official.is_working_day(date(2026, 9, 20))
    assert official.is_working_day(date(2026, 10, 10))
    assert official.is_working_time(at(2026, 10, 10, 10))
    # Saturday 10:00 + 1 day: 7.5 h on the adjusted Saturday, 1 h on Monday (Sunday is off).
    assert official.add_working_days(at(2026, 10, 10, 10), 1) == at(2026, 10, 12, 10)


def test_routine_case_across_national_day(official: WorkingCalendar) -> None:
    assigned = at(2026, 9, 25, 16)  # Friday, but the 中秋 holiday: counting starts Mon 09-28
    assert official.next_working_start(assigned) == at(2026, 9, 28, 9)
    # sign +1: all of Monday.
    assert official.add_working_days(assigned, 1) == at(2026, 9, 28, 17, 30)
    # reply +3: Mon 28, Tue 29, Wed 30.
    assert official.add_working_days(assigned, 3) == at(2026, 9, 30, 17, 30)
    # resolve +7: 28, 29, 30, (Oct 1-7 off), Thu 8, Fri 9, adjusted Sat 10, (Sun 11 off), Mon 12.
    assert official.add_working_days(assigned, 7) == at(2026, 10, 12, 17, 30)
    assert official.working_days_between(assigned, at(2026, 10, 12, 17, 30)) == 7.0


def test_filing_at_night(official: WorkingCalendar) -> None:
    filed = at(2026, 9, 29, 22)
    assert official.next_working_start(filed) == at(2026, 9, 30, 9)
    assert official.add_working_days(filed, 1) == at(2026, 9, 30, 17, 30)
    # Wed 30, then the holiday, then Thu 8 and Fri 9.
    assert official.add_working_days(filed, 3) == at(2026, 10, 9, 17, 30)
    # The eve of the holiday: the next morning is after the whole National Day break.
    assert official.add_working_days(at(2026, 9, 30, 22), 1) == at(2026, 10, 8, 17, 30)


def test_year_of_working_time_matches_package(official: WorkingCalendar) -> None:
    expected = sum(
        chinese_calendar.is_workday(date(2025, 1, 1) + timedelta(days=i)) for i in range(365)
    )
    assert official.working_days_between(at(2025, 1, 1), at(2026, 1, 1)) == expected
    # And back: that many days from New Year's morning end on the last working day of 2025.
    assert official.add_working_days(at(2025, 1, 1), expected) == at(2025, 12, 31, 17, 30)


# --------------------------------------------------------------------------- policy years


POLICY_2027 = YearSchedule(
    year=2027,
    holidays=frozenset(
        {date(2027, 1, 1)} | {date(2027, 2, d) for d in range(5, 12)} | {date(2027, 10, 1)}
    ),
    workdays=frozenset({date(2027, 2, 14), date(2027, 2, 20)}),  # Sun, Sat
)


def test_policy_year_wins(caplog: pytest.LogCaptureFixture) -> None:
    cal = WorkingCalendar(official_years=(POLICY_2027,))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cal.schedule_source(2027) == "policy"
        assert not cal.is_working_day(date(2027, 1, 1))  # Friday, New Year
        assert not cal.is_working_day(date(2027, 1, 3))  # ordinary Sunday
        assert cal.is_working_day(date(2027, 1, 4))  # Monday
        assert not cal.is_working_day(date(2027, 2, 8))  # Spring Festival Monday
        assert cal.is_working_day(date(2027, 2, 14))  # adjusted working Sunday
        assert cal.is_working_day(date(2027, 2, 20))  # adjusted working Saturday
        assert not cal.is_working_day(date(2027, 2, 21))  # ordinary Sunday
        # Dec 31 2026 (Thu) 17:00 + 1 day: 0.5 h, then Jan 1-3 off, then Monday 17:00.
        assert cal.add_working_days(at(2026, 12, 31, 17), 1) == at(2027, 1, 4, 17)
    assert fallback_warnings(caplog) == []


def test_policy_overrides_package_year() -> None:
    # A (hypothetical) corrected notice for 2026 replaces the package's whole year.
    corrected = YearSchedule(
        year=2026,
        holidays=frozenset(date(2026, 10, d) for d in range(1, 8)),
        workdays=frozenset({date(2026, 9, 20), date(2026, 10, 11)}),
    )
    cal = WorkingCalendar(official_years=(corrected,))
    assert cal.schedule_source(2026) == "policy"
    assert cal.is_working_day(date(2026, 9, 25))  # package: 中秋 holiday
    assert cal.is_working_day(date(2026, 10, 11))  # package: Sunday off
    assert not cal.is_working_day(date(2026, 10, 10))  # package: adjusted working Saturday
    assert not cal.is_working_day(date(2026, 10, 5))
    assert cal.schedule_source(2025) == "package"


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="outside 2027"):
        YearSchedule(2027, frozenset({date(2026, 12, 31)}), frozenset())
    with pytest.raises(ValueError, match="twice"):
        WorkingCalendar(official_years=(POLICY_2027, POLICY_2027))


# --------------------------------------------------------------------------- fallbacks


def test_2027_falls_back_to_holidays_package_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cal = WorkingCalendar()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cal.schedule_source(2027) == "fallback"
        assert not cal.is_working_day(date(2027, 10, 1))  # National Day (Friday)
        assert cal.is_working_day(date(2027, 3, 10))  # ordinary Wednesday
        assert not cal.is_working_day(date(2027, 3, 13))  # ordinary Saturday
        for i in range(365):
            cal.is_working_day(date(2027, 1, 1) + timedelta(days=i))
        cal.add_working_days(at(2027, 9, 28, 10), 10)
        cal.working_time_between(at(2027, 1, 1), at(2028, 1, 1) - timedelta(seconds=1))
    records = fallback_warnings(caplog)
    assert len(records) == 1
    message = records[0].getMessage()
    assert "2027" in message
    assert "[calendar.years.2027]" in message
    assert "holidays" in message and "workdays" in message


def test_warning_is_per_calendar(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        WorkingCalendar().is_working_day(date(2027, 5, 3))
        WorkingCalendar().is_working_day(date(2027, 5, 3))
    assert len(fallback_warnings(caplog)) == 2


@pytest.mark.parametrize("year", [1990, 2300])
def test_far_years_do_not_crash(year: int) -> None:
    cal = WorkingCalendar()
    assert cal.schedule_source(year) == "fallback"
    days = [date(year, 1, 1) + timedelta(days=i) for i in range(366 if year == 1990 else 365)]
    assert all(isinstance(cal.is_working_day(d), bool) for d in days)
    result = cal.add_working_days(at(year, 3, 1, 10), 5)
    assert cal.working_days_between(at(year, 3, 1, 10), result) == 5.0


def test_1990_uses_holidays_package() -> None:
    cal = WorkingCalendar()
    assert date(1990, 10, 1).weekday() == 0
    assert not cal.is_working_day(date(1990, 10, 1))
    assert cal.is_working_day(date(1990, 10, 3))


def test_failing_packages_degrade_to_weekdays(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import bot.domain.calendar as mod

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("broken package")

    monkeypatch.setattr(mod.chinese_calendar, "is_workday", boom)
    monkeypatch.setattr(mod.holidays, "country_holidays", boom)
    cal = WorkingCalendar()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cal.schedule_source(2026) == "fallback"
        assert cal.is_working_day(date(2026, 10, 1))  # a Thursday, as far as weekdays go
        assert not cal.is_working_day(date(2026, 10, 10))
    assert len(fallback_warnings(caplog)) == 1


# --------------------------------------------------------------------------- extras


def test_extra_days_win(caplog: pytest.LogCaptureFixture) -> None:
    cal = WorkingCalendar(
        extra_holidays=frozenset({date(2026, 6, 10), date(2026, 6, 13)}),
        extra_workdays=frozenset({date(2026, 6, 13), date(2026, 10, 2), date(2027, 3, 13)}),
    )
    assert not cal.is_working_day(date(2026, 6, 10))  # local holiday on a Wednesday
    assert cal.is_working_day(date(2026, 6, 13))  # Saturday in both: workday wins
    assert cal.is_working_day(date(2026, 10, 2))  # over the package's National Day
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cal.is_working_day(date(2027, 3, 13))  # decided before any package lookup
    assert fallback_warnings(caplog) == []

    weekdays = WorkingCalendar(kind="weekdays", extra_holidays=frozenset({date(2026, 6, 8)}))
    assert weekdays.add_working_days(at(2026, 6, 5, 16), 1) == at(2026, 6, 9, 16)


# --------------------------------------------------------------------------- next year


def test_next_year_schedule_missing() -> None:
    cal = WorkingCalendar()
    assert not cal.next_year_schedule_missing(date(2026, 11, 30))
    assert cal.next_year_schedule_missing(date(2026, 12, 1))
    assert not cal.next_year_schedule_missing(date(2025, 12, 1))
    # The current year already on the fallback: any month.
    assert cal.next_year_schedule_missing(date(2027, 3, 1))
    with_policy = WorkingCalendar(official_years=(POLICY_2027,))
    assert not with_policy.next_year_schedule_missing(date(2026, 12, 1))
    assert with_policy.next_year_schedule_missing(date(2027, 12, 1))


# --------------------------------------------------------------------------- inputs


def test_naive_datetimes_rejected(official: WorkingCalendar) -> None:
    naive = datetime(2026, 6, 8, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        official.add_working_days(naive, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        official.working_time_between(at(2026, 6, 8), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        official.is_working_time(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        official.next_working_start(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        official.next_working_morning(naive)


def test_datetime_is_not_a_date(official: WorkingCalendar) -> None:
    with pytest.raises(TypeError):
        official.is_working_day(at(2026, 6, 8, 10))


def test_bad_hours_rejected() -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(day_start=time(18), day_end=time(9))


def test_other_time_zone_input_is_converted(official: WorkingCalendar) -> None:
    # 01:00 UTC is 09:00 in Shanghai on Monday 2026-06-01 (a working day).
    start = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
    assert official.is_working_time(start)
    result = official.add_working_days(start, 1)
    assert result == at(2026, 6, 1, 17, 30)
    assert result.tzinfo == SH
    assert result.utcoffset() == timedelta(hours=8)
    # Sunday 23:00 UTC is already Monday 07:00 in Shanghai.
    assert official.next_working_start(datetime(2026, 5, 31, 23, tzinfo=UTC)) == at(2026, 6, 1, 9)
    assert official.working_time_between(
        datetime(2026, 6, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, 2, tzinfo=UTC)
    ) == timedelta(hours=1)


def test_custom_hours_and_zone() -> None:
    cal = WorkingCalendar(
        kind="weekdays", tz=ZoneInfo("Europe/Berlin"), day_start=time(8), day_end=time(16)
    )
    assert cal.day_length == timedelta(hours=8)
    start = datetime(2026, 6, 8, 8, tzinfo=ZoneInfo("Europe/Berlin"))
    assert cal.add_working_days(start, 0.5) == datetime(
        2026, 6, 8, 12, tzinfo=ZoneInfo("Europe/Berlin")
    )


# --------------------------------------------------------------------------- properties

# Kept inside years the package knows, so the properties exercise the real 2025-2026
# schedule (with its holidays and adjusted weekends) without fallback warnings.
OFFICIAL = WorkingCalendar()
WEEKDAYS = WorkingCalendar(kind="weekdays")
CALENDARS = st.sampled_from([OFFICIAL, WEEKDAYS])
STARTS = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2026, 10, 31),
    timezones=st.sampled_from([SH, ZoneInfo("UTC")]),
)
DURATIONS = st.integers(min_value=0, max_value=int(30 * 8.5 * 3600 * 1_000_000)).map(
    lambda us: timedelta(microseconds=us)
)


@settings(max_examples=300, deadline=None)
@given(cal=CALENDARS, start=STARTS, duration=DURATIONS)
def test_add_then_between_is_identity(
    cal: WorkingCalendar, start: datetime, duration: timedelta
) -> None:
    end = cal.add_working_time(start, duration)
    assert cal.working_time_between(start, end) == duration


@settings(max_examples=300, deadline=None)
@given(cal=CALENDARS, start=STARTS)
def test_add_then_between_is_identity_from_working_time(
    cal: WorkingCalendar, start: datetime
) -> None:
    start = cal.next_working_start(start)
    assert cal.is_working_time(start)
    for days in (0.25, 1, 3, 7, 15):
        end = cal.add_working_days(start, days)
        assert cal.working_days_between(start, end) == days


@settings(max_examples=300, deadline=None)
@given(cal=CALENDARS, start=STARTS, a=DURATIONS, b=DURATIONS)
def test_add_is_monotonic(
    cal: WorkingCalendar, start: datetime, a: timedelta, b: timedelta
) -> None:
    short, long = sorted((a, b))
    assert cal.add_working_time(start, short) <= cal.add_working_time(start, long)
    if short < long:
        assert cal.add_working_time(start, short) < cal.add_working_time(start, long)


@settings(max_examples=300, deadline=None)
@given(cal=CALENDARS, start=STARTS, duration=DURATIONS)
def test_result_is_working_time_or_day_end(
    cal: WorkingCalendar, start: datetime, duration: timedelta
) -> None:
    end = cal.add_working_time(start, duration)
    assert end.tzinfo == cal.tz
    on_day_end = end.timetz().replace(tzinfo=None) == cal.day_end and cal.is_working_day(end.date())
    assert cal.is_working_time(end) or on_day_end
    assert end >= start
