"""Reports (DESIGN §6) on a fixture of known cases: every figure against hand-computed
values, the XLSX rows, the chart's font, the scheduled reports and the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from matplotlib.ft2font import FT2Font
from openpyxl import load_workbook

from bot import reports, services
from bot.domain import errors
from bot.domain.metrics import Rate
from bot.i18n import translator
from storage.reports import unit_counts
from tests.conftest import PEOPLE, file_one, local

MONDAY = local(2026, 11, 23, 10, 0)  # week 2026-W48
AS_OF = local(2026, 11, 30, 9, 0)  # the next Monday, when the weekly report goes out


def pair(rate: Rate) -> tuple[int, int]:
    return rate.numerator, rate.denominator


@pytest.fixture
async def known(svc, clock):
    """Six cases filed on Monday 2026-11-23 10:00 (hand-computed figures in the tests):

    C1 routine ZJJ: signed and answered on time, published, rated satisfied.
    C2 routine ZJJ: signed late (Wed), answered on time, rated unsatisfied (reopened).
    C3 routine CGJ: never signed (sign and reply deadlines missed by AS_OF).
    C4 special LYQ: signed and answered on time (no review), rated basically satisfied.
    C5: rejected.  C6: accepted, never assigned.
    """
    clock.set(MONDAY)
    d = PEOPLE.dispatcher
    c1 = await file_one(svc)
    c2 = await file_one(svc)
    c3 = await file_one(svc, category="environment")
    c4 = await file_one(svc, PEOPLE.other_citizen)
    c5 = await file_one(svc, PEOPLE.other_citizen)
    c6 = await file_one(svc, PEOPLE.other_citizen, category="transport")
    await services.assign_case(svc, d, c1, "ZJJ", track="routine")
    await services.assign_case(svc, d, c2, "ZJJ", track="routine")
    await services.assign_case(svc, d, c3, "CGJ", track="routine")
    await services.assign_case(svc, d, c4, "LYQ", track="special")
    await services.reject_case(svc, d, c5, "invalid", "内容无法核实")
    clock.set(local(2026, 11, 23, 11, 0))
    await services.sign_assignment(svc, PEOPLE.housing, c1)
    await services.sign_assignment(svc, PEOPLE.langya, c4)
    clock.set(local(2026, 11, 23, 15, 0))
    await services.post_answer(svc, PEOPLE.langya, c4, "final", "已派人维修完毕。")
    clock.set(local(2026, 11, 24, 10, 0))
    await services.post_answer(svc, PEOPLE.housing, c1, "final", "电梯已修好。")
    clock.set(local(2026, 11, 24, 11, 0))
    await services.publish_answer(svc, d, c1)
    await services.rate_case(svc, PEOPLE.citizen, c1, "satisfied")
    await services.rate_case(svc, PEOPLE.other_citizen, c4, "basically_satisfied")
    clock.set(local(2026, 11, 25, 10, 0))
    await services.sign_assignment(svc, PEOPLE.housing, c2)
    clock.set(local(2026, 11, 25, 11, 0))
    await services.post_answer(svc, PEOPLE.housing, c2, "final", "已协调物业处理。")
    await services.publish_answer(svc, d, c2)
    clock.set(local(2026, 11, 25, 12, 0))
    await services.rate_case(svc, PEOPLE.citizen, c2, "unsatisfied", "没解决")
    clock.set(AS_OF)
    return [c1, c2, c3, c4, c5, c6]


async def weekly(svc, **kwargs) -> reports.Report:
    period = reports.week_period("2026-W48", svc.policy)
    return await reports.build_report(svc.db, svc.policy, period, AS_OF, **kwargs)


async def test_every_weekly_figure_matches_the_hand_computed_value(svc, known):
    c1, c2, c3, c4, _c5, _c6 = known
    report = await weekly(svc)
    assert report.period.start == local(2026, 11, 23, 0, 0)
    assert report.period.end == local(2026, 11, 30, 0, 0)
    assert (report.received, report.accepted, report.rejected) == (6, 5, 1)
    assert report.by_track == {"routine": 3, "special": 1, "": 1}
    assert report.by_category == {"housing": 3, "transport": 1, "environment": 1}
    assert report.by_unit == {"ZJJ": 2, "CGJ": 1, "LYQ": 1, "": 1}
    # Reply rate: C1, C2, C4 answered of the five accepted (C6 was never assigned).
    assert pair(report.reply) == (3, 5)
    assert set(report.reply.counted) == {c1, c2, c4}
    # Sign: C1 and C4 on time, C2 late, C3 missed.
    assert pair(report.sign) == (2, 4)
    # Reply stage: C1, C2, C4 on time; C3 missed (due Thursday 10:00).
    assert pair(report.reply_stage) == (3, 4)
    # Resolve: C1, C2, C4 on time; C3 still pending (due Wednesday 2 Dec), not counted.
    assert pair(report.resolve) == (3, 3)
    assert pair(report.on_time) == (8, 11)
    # Satisfaction: satisfied + basically satisfied of three ratings.
    assert pair(report.satisfaction) == (2, 3)
    # Backlog: C3 only, at CGJ, overdue since its sign deadline (Tuesday 10:00).
    assert report.backlog == {"CGJ": 1}
    [overdue] = report.overdue
    assert (overdue.number, overdue.unit_code, overdue.stage) == (c3, "CGJ", "sign")
    assert overdue.due == local(2026, 11, 24, 10, 0)
    assert overdue.days == pytest.approx(5 + 23 / 24)
    # Week on week: the week before had nothing.
    assert report.previous is not None and report.previous.received == 0


async def test_the_unit_figures_are_the_sql_aggregates_and_agree_with_a_unit_report(svc, known):
    report = await weekly(svc)
    figures = {u.unit_code: u for u in report.units}
    assert (figures["ZJJ"].cases, pair(figures["ZJJ"].reply)) == (2, (2, 2))
    assert pair(figures["ZJJ"].on_time) == (5, 6)
    assert pair(figures["ZJJ"].satisfaction) == (1, 2)
    assert pair(figures["CGJ"].reply) == (0, 1) and pair(figures["CGJ"].on_time) == (0, 2)
    assert pair(figures["LYQ"].on_time) == (3, 3) and pair(figures["LYQ"].satisfaction) == (1, 1)
    counts = await unit_counts(svc.db, report.period.start, report.period.end, AS_OF)
    for code in ("ZJJ", "CGJ", "LYQ"):
        single = await weekly(svc, unit=code)
        assert pair(single.reply) == pair(counts[code].reply)
        assert pair(single.on_time) == pair(counts[code].on_time)
        assert pair(single.sign) == pair(counts[code].sign)
        assert pair(single.satisfaction) == pair(counts[code].satisfaction)


async def test_ranking_order_follows_the_policy_score(svc, known):
    # ZJJ: 0.3·1 + 0.3·5/6 + 0.4·1/2 = 0.75; CGJ: no ratings, so (0.3·0 + 0.3·0)/0.6 = 0;
    # LYQ: 1.0.
    period = reports.parse_period("quarterly", "2026-Q4", AS_OF, svc.policy)
    report = await reports.build_report(svc.db, svc.policy, period, AS_OF)
    # With the policy's minimum of 5 cases, nobody is ranked, but every unit is listed.
    assert all(r.place is None for r in report.ranking)
    assert {r.figures.unit_code for r in report.ranking} >= set(svc.policy.units)
    lenient = dataclasses.replace(
        svc.policy, reports=dataclasses.replace(svc.policy.reports, min_cases_for_ranking=1)
    )
    report = await reports.build_report(svc.db, lenient, period, AS_OF)
    ranked = [(r.place, r.figures.unit_code, r.score) for r in report.ranking if r.place]
    assert [(p, u) for p, u, _ in ranked] == [(1, "LYQ"), (2, "ZJJ"), (3, "CGJ")]
    assert [s for _, _, s in ranked] == pytest.approx([1.0, 0.75, 0.0])
    t = translator("zh_Hans")
    text = reports.summary_text(report, t, lenient)
    ranking = text[text.index(t.gettext("Ranking (score):")) :]
    assert ranking.index("1. 琅琊区") < ranking.index("2. 市住房") < ranking.index("3. 市城市管理")


async def test_the_xlsx_lists_exactly_the_cases_behind_the_figures(svc, known):
    c1, c2, c3, c4, c5, _ = known
    report = await weekly(svc)
    book = load_workbook(io.BytesIO(reports.xlsx_bytes(report, svc.policy)))
    rows = list(book["cases"].iter_rows(values_only=True))
    assert rows[0] == reports.XLSX_COLUMNS
    by_number = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert set(by_number) == set(known)
    behind = set(report.reply.behind) | set(report.on_time.behind) | set(
        report.satisfaction.behind
    )
    assert behind | {c5} == set(by_number)
    assert by_number[c1]["rating"] == "satisfied" and by_number[c1]["sign"] == "on_time"
    assert by_number[c2]["sign"] == "late" and by_number[c2]["unit"] == "ZJJ"
    assert (by_number[c3]["sign"], by_number[c3]["resolve"]) == ("missed", "pending")
    assert by_number[c4]["track"] == "special"
    assert by_number[c5]["state"] == "rejected"
    # The column counts add up to the figures.
    rows_ = by_number.values()
    assert sum(r["sign"] == "on_time" for r in rows_) == report.sign.numerator
    assert sum(r["sign"] in ("on_time", "late", "missed") for r in rows_) == report.sign.denominator
    assert sum(r["rating"] in ("satisfied", "basically_satisfied") for r in rows_) == 2
    units = list(book["units"].iter_rows(values_only=True))
    assert {u[1] for u in units[1:]} >= {"ZJJ", "CGJ", "LYQ"}


@pytest.mark.parametrize(
    ("unit", "track"),
    [(None, None), ("ZJJ", None), ("CGJ", None), ("LYQ", None), (None, "special"),
     (None, "routine"), ("ZJJ", "special")],
)
async def test_the_week_before_is_counted_in_sql_as_its_own_report_says(svc, known, unit, track):
    """A weekly report compares with the week before; that week's counts come from SQL
    aggregates, which must say what the §6 functions say in that week's own report."""
    following = await reports.build_report(
        svc.db, svc.policy, reports.week_period("2026-W49", svc.policy), AS_OF,
        unit=unit, track=track,
    )
    before = following.previous
    full = await weekly(svc, unit=unit, track=track, compare=False)
    assert before is not None and before.period == full.period
    for figure in ("accepted", "rejected", "reply", "sign", "reply_stage", "resolve",
                   "on_time", "satisfaction"):
        assert getattr(before, figure) == getattr(full, figure), figure
    if (unit, track) == (None, None):
        assert pair(before.on_time) == (8, 11) and before.received == 6  # as tested above
    # What only the report itself shows is not built for the comparison.
    assert (before.rows, before.units, before.overdue) == ([], [], [])


async def test_the_chart_is_a_png_and_its_font_has_every_chinese_glyph(svc, known):
    report = await weekly(svc)
    t = translator("zh_Hans")
    labels = reports.chart_labels(report, t, svc.policy)
    texts = [labels["title"], labels["received"], labels["by_unit"], *labels["rates"],
             *labels["units"], *labels["tracks"]]
    han = {c for text in texts for c in text if "\u4e00" <= c <= "\u9fff"}
    assert "住" in han and len(han) > 10
    font = FT2Font(str(reports.font_path()))
    missing = [c for c in sorted(han) if font.get_char_index(ord(c)) == 0]
    assert missing == []
    png = reports.chart_png(report, t, svc.policy)
    assert png.startswith(b"\x89PNG")


async def test_the_summary_is_short_and_in_the_readers_language(svc, known):
    report = await weekly(svc)
    for language in ("zh_Hans", "zh_Hant", "en"):
        text = reports.summary_text(report, translator(language), svc.policy)
        assert len(text) <= 1024, language
        assert "2026-W48" in text and "60.0%" in text and "(3/5)" in text
    english = reports.summary_text(report, translator("en"), svc.policy)
    assert "Reply rate: 60.0% (3/5)" in english
    assert "sign 50.0% (2/4)" in english
    assert "Satisfaction rate: 66.7% (2/3)" in english


async def test_the_weekly_report_is_queued_once_per_week(svc, known, clock):
    assert await reports.enqueue_weekly(svc)
    assert not await reports.enqueue_weekly(svc)
    rows = await svc.db.fetch_all(
        "SELECT recipient_kind, params FROM outbox WHERE message_key = 'report'"
    )
    assert len(rows) == 1 and rows[0][0] == "dispatch" and "2026-W48" in rows[0][1]
    clock.advance(timedelta(days=7))
    assert await reports.enqueue_weekly(svc)


async def queued_reports(svc) -> list[str]:
    rows = await svc.db.fetch_all(
        "SELECT recipient_kind FROM outbox WHERE message_key = 'report' ORDER BY id"
    )
    return [row[0] for row in rows]


async def test_reports_missed_while_the_bot_was_down_are_queued_at_start_up(svc, clock):
    clock.set(local(2026, 12, 4, 17, 0))  # Friday: the bot's first start on this database
    assert await reports.catch_up(svc) == []
    clock.set(local(2026, 12, 7, 10, 0))  # back on Monday after 08:30 and 09:00
    assert await reports.catch_up(svc) == ["weekly", "daily"]
    assert await queued_reports(svc) == ["dispatch", "leaders"]
    assert await reports.catch_up(svc) == []  # it ran since: nothing missed
    assert not await reports.enqueue_weekly(svc)  # the job at 09:00 would not send again


async def test_only_the_reports_whose_moment_passed_during_the_downtime_are_queued(svc, clock):
    clock.set(local(2026, 12, 7, 8, 0))  # Monday, before both reports
    await reports.note_running(svc)
    clock.set(local(2026, 12, 7, 8, 45))  # down across 08:30 only
    assert await reports.catch_up(svc) == ["daily"]
    clock.set(local(2026, 12, 12, 9, 30))  # down from Monday 08:45 to Saturday
    assert await reports.catch_up(svc) == ["weekly"]  # no daily report on a day off
    assert await queued_reports(svc) == ["leaders", "dispatch"]


async def test_the_quarterly_notice_missed_on_its_day_is_queued_at_start_up(svc, clock):
    clock.set(local(2027, 1, 4, 8, 0))  # Monday, a working day of a quarter's first month
    await reports.note_running(svc)
    clock.set(local(2027, 1, 4, 9, 15))
    assert await reports.catch_up(svc) == ["weekly", "daily", "quarterly"]


async def test_the_daily_report_goes_on_working_days_only(svc, clock):
    clock.set(local(2026, 11, 28, 8, 30))  # a Saturday
    assert not await reports.enqueue_daily(svc)
    clock.set(local(2026, 11, 30, 8, 30))
    assert await reports.enqueue_daily(svc)
    assert not await reports.enqueue_daily(svc)
    row = await svc.db.fetch_one("SELECT recipient_kind, params FROM outbox")
    assert row is not None and row[0] == "leaders" and "high_level" in row[1]


async def test_the_quarterly_notice_goes_to_dispatch_and_each_unit_group(svc, clock):
    await services.bind_chat(svc, None, -501, "unit", unit_code="ZJJ", system=True)
    await services.bind_chat(svc, None, -502, "unit", unit_code="CGJ", system=True)
    clock.set(local(2027, 1, 4, 9, 0))
    assert await reports.enqueue_quarterly(svc)
    assert not await reports.enqueue_quarterly(svc)
    rows = await svc.db.fetch_all(
        "SELECT recipient_kind, recipient_ref FROM outbox WHERE message_key = 'report'"
    )
    assert [(r[0], r[1]) for r in rows] == [("dispatch", None), ("unit", "CGJ"), ("unit", "ZJJ")]


async def test_reports_are_for_staff_only(svc, known):
    report = await reports.request_report(svc, PEOPLE.leader, "week", None, "2026-W48")
    assert pair(report.reply) == (3, 5)
    for outsider in (PEOPLE.citizen, PEOPLE.housing, PEOPLE.outsider):
        with pytest.raises(errors.NotAllowed):
            await reports.request_report(svc, outsider, "week")
    with pytest.raises(errors.UnknownCode):
        await reports.request_report(svc, PEOPLE.dispatcher, "week", "NOPE")
    with pytest.raises(errors.InvalidInput):
        await reports.request_report(svc, PEOPLE.dispatcher, "week", None, "2026-W99")
    stats = await reports.current_stats(svc, PEOPLE.supervisor)
    assert stats.overdue == 1 and sum(stats.open_by_state.values()) == 3
    with pytest.raises(errors.NotAllowed):
        await reports.current_stats(svc, PEOPLE.citizen)


async def test_the_cli_writes_text_chart_and_spreadsheet(svc, known, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "WENZHENG_DATABASE": str(svc.db.path)}
    env.pop("WENZHENG_POLICY", None)  # the example policy
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot.cli", "report", "weekly", "--week", "2026-W48",
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "report-weekly-2026-W48.png",
        "report-weekly-2026-W48.txt",
        "report-weekly-2026-W48.xlsx",
    ]
    text = (out / "report-weekly-2026-W48.txt").read_text(encoding="utf-8")
    assert "2026-W48" in text and "(3/5)" in text
    assert (out / "report-weekly-2026-W48.png").read_bytes().startswith(b"\x89PNG")
    book = load_workbook(out / "report-weekly-2026-W48.xlsx")
    assert book["cases"].max_row == 1 + len(known)


async def test_a_december_weekly_report_warns_that_next_years_calendar_is_missing(svc):
    november = await reports.build_report(
        svc.db, svc.policy, reports.week_period("2026-W48", svc.policy), AS_OF)
    december = await reports.build_report(
        svc.db, svc.policy, reports.week_period("2026-W49", svc.policy), AS_OF)
    g = translator("en")
    assert "2027" not in reports.summary_text(november, g, svc.policy)
    assert "[calendar.years.2027]" in reports.summary_text(december, g, svc.policy)
