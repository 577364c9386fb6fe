"""Reports (DESIGN §6): weekly (周报), daily high-level (高位办), quarterly (季度通报), on demand.

Every figure comes from one place: the §6 functions of `bot.domain.metrics` over the
facts `storage.reports` loads (per-unit figures from its SQL aggregates, which a test holds
equal to the functions). A report is built at send time from its parameters (kind, period,
unit), and turns into a short text summary, a PNG chart and an XLSX of the cases behind it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from bot.collector import cycle_collector_paused
from bot.domain import errors
from bot.domain.metrics import (
    Outcome,
    Ranked,
    Rate,
    StageFact,
    UnitFigures,
    on_time_rate,
    rank_units,
    received,
    reply_rate,
    satisfaction_rate,
    stage_outcome,
)
from bot.domain.notifications import OutboxMessage
from bot.domain.permissions import Action
from bot.domain.policy import Policy, Track
from bot.i18n import N_, Translator
from bot.xlsx import workbook_bytes
from storage import reports as store
from storage.db import Database, from_db, to_db
from storage.outbox import claim_once, enqueue, replace_counter

logger = logging.getLogger(__name__)

MESSAGE_KEY = "report"
KINDS = ("weekly", "monthly", "quarterly", "daily")
STAGES = ("sign", "reply", "resolve")
LONGEST_OVERDUE = 5

TRACK_LABELS = {
    Track.SPECIAL: N_("Special (urgent)"),
    Track.ROUTINE: N_("Routine"),
    Track.COORDINATED: N_("Coordinated"),
    Track.HIGH_LEVEL: N_("High-level"),
}
TITLES = {
    "weekly": N_("Weekly report (周报) {label}"),
    "monthly": N_("Monthly report {label}"),
    "quarterly": N_("Quarterly notice (季度通报) {label}"),
    "daily": N_("High-level cases (高位办) daily report {label}"),
}


# -- periods ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end) in the city's time zone, with its label (2026-W48, 2026-11, 2026-Q4)."""

    kind: str
    label: str
    start: datetime
    end: datetime


def _midnight(day: date, policy: Policy) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=policy.calendar.tz)


def week_period(label: str, policy: Policy) -> Period:
    """The ISO week '2026-W48': Monday 00:00 to the next Monday 00:00."""
    match = re.fullmatch(r"(\d{4})-?W(\d{1,2})", label.strip().upper())
    if not match:
        raise errors.InvalidInput("period", field="period")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise errors.InvalidInput("period", field="period") from None
    start = _midnight(monday, policy)
    return Period("weekly", f"{year}-W{week:02d}", start, _midnight(monday + timedelta(7), policy))


def _week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _month(year: int, month: int, policy: Policy) -> Period:
    start = _midnight(date(year, month, 1), policy)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period("monthly", f"{year}-{month:02d}", start, _midnight(following, policy))


def _quarter(year: int, quarter: int, policy: Policy) -> Period:
    start = _midnight(date(year, 3 * quarter - 2, 1), policy)
    following = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return Period("quarterly", f"{year}-Q{quarter}", start, _midnight(following, policy))


def day_period(day: date, policy: Policy) -> Period:
    """One calendar day in the city."""
    return Period(
        "daily", day.isoformat(), _midnight(day, policy), _midnight(day + timedelta(1), policy)
    )


def parse_period(kind: str, text: str | None, now: datetime, policy: Policy) -> Period:
    """A period of a kind from '2026-W48', '2026-11' or '2026-Q4'; the current one if None."""
    today = now.astimezone(policy.calendar.tz).date()
    if kind == "weekly":
        return week_period(text or _week_label(today), policy)
    if kind == "daily":
        try:
            return day_period(date.fromisoformat(text) if text else today, policy)
        except ValueError:
            raise errors.InvalidInput("period", field="period") from None
    if kind == "monthly":
        if not text:
            return _month(today.year, today.month, policy)
        match = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise errors.InvalidInput("period", field="period")
        return _month(int(match.group(1)), int(match.group(2)), policy)
    if kind == "quarterly":
        if not text:
            return _quarter(today.year, (today.month - 1) // 3 + 1, policy)
        match = re.fullmatch(r"(\d{4})-?Q([1-4])", text.strip().upper())
        if not match:
            raise errors.InvalidInput("period", field="period")
        return _quarter(int(match.group(1)), int(match.group(2)), policy)
    raise errors.InvalidInput("kind", field="kind")


def previous_week(now: datetime, policy: Policy) -> Period:
    """The last complete ISO week before `now` (what the Monday report covers)."""
    today = now.astimezone(policy.calendar.tz).date()
    return week_period(_week_label(today - timedelta(days=7)), policy)


def previous_quarter(now: datetime, policy: Policy) -> Period:
    """The last complete quarter before `now`."""
    today = now.astimezone(policy.calendar.tz).date()
    quarter = (today.month - 1) // 3 + 1
    return (
        _quarter(today.year - 1, 4, policy)
        if quarter == 1
        else _quarter(today.year, quarter - 1, policy)
    )


# -- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Overdue:
    """An open case past a deadline: the unit, the stage and how long overdue."""

    number: str
    unit_code: str
    track: str
    stage: str
    due: datetime
    days: float


class CaseRow(NamedTuple):
    """One case behind the figures, as the XLSX lists it (its columns, in order).

    Moments are as stored (µs since the Unix epoch): a busy week has ~100,000 of them,
    and the XLSX writer turns stored moments into its serials directly.
    """

    number: str
    unit_code: str
    track: str
    category: str
    state: str
    filed_at: int | None
    sign_due: int | None
    reply_due: int | None
    resolve_due: int | None
    sign: str  # an Outcome's value, or "" when the stage does not exist
    reply: str
    resolve: str
    rating: str


@dataclass
class Report:
    """A period's figures, each a §6 function over the period's facts."""

    period: Period
    now: datetime
    unit: str | None
    track: str | None
    accepted: int
    rejected: int
    by_track: dict[str, int]
    by_category: dict[str, int]
    by_unit: dict[str, int]
    reply: Rate
    sign: Rate
    reply_stage: Rate
    resolve: Rate
    on_time: Rate
    satisfaction: Rate
    units: list[UnitFigures]
    ranking: list[Ranked]
    backlog: dict[str, int]
    overdue: list[Overdue]
    rows: list[CaseRow]
    open_cases: int = 0
    previous: Report | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def received(self) -> int:
        """Cases filed in the period, rejected ones included."""
        return self.accepted + self.rejected


async def build_report(
    db: Database,
    policy: Policy,
    period: Period,
    now: datetime,
    *,
    unit: str | None = None,
    track: str | None = None,
    compare: bool = True,
    figures_only: bool = False,
) -> Report:
    """Build a report of `period` as of `now`, for one unit or track if given.

    A weekly report carries the week before as `previous`, for the week-on-week line;
    that one is built `figures_only`: the headline counts from SQL aggregates, without
    the case numbers behind them, the units' figures, the backlog or the rows.
    """
    if figures_only:
        return await _figures_only(db, period, now, unit, track)
    with cycle_collector_paused():
        return await _full_report(db, policy, period, now, unit, track, compare)


async def _full_report(
    db: Database,
    policy: Policy,
    period: Period,
    now: datetime,
    unit: str | None,
    track: str | None,
    compare: bool,
) -> Report:
    """`build_report` of a whole report."""
    # The queries wait on the reader's thread one after another, and while one runs
    # (SQLite lets go of the GIL while it steps) another's rows are turned into facts
    # here: at a million cases there is about as much SQL as Python in this.
    previous = (
        build_report(
            db,
            policy,
            week_period(_week_label((period.start - timedelta(days=1)).date()), policy),
            now,
            unit=unit,
            track=track,
            compare=False,
            figures_only=True,
        )
        if compare and period.kind == "weekly"
        else None
    )
    # The period's facts are queued on the reader first; their rows become figures and
    # rows here while the reader runs the other queries (the units' aggregates, the
    # backlog, the week before), which are only needed at the end. gather, not a task
    # group: a failure comes out as itself.
    facts_loading = store.period_facts(db, period.start, period.end)
    others = asyncio.gather(
        store.unit_counts(db, period.start, period.end, now),
        _overdue(db, now, unit, track),
        previous if previous is not None else _nothing(),
    )
    try:
        facts = await facts_loading
    except BaseException:
        others.cancel()
        raise
    details = facts.details

    def keep(number: str, unit_code: str) -> bool:
        if unit is not None and unit_code != unit:
            return False
        return track is None or (number in details and details[number].track == track)

    everything = unit is None and track is None
    cases, stages, ratings = facts.cases, facts.stages, facts.ratings
    if not everything:
        cases = [(u, f) for u, f in cases if keep(f.number, u)]
        stages = [s for s in stages if keep(s.number, s.unit_code)]
        ratings = [(u, r) for u, r in ratings if keep(r.number, u)]
    accepted, rejected = received(f for _, f in cases)
    filed_accepted = [details[f.number] for _, f in cases if not f.rejected]
    by_track = Counter(d.track or "" for d in filed_accepted)
    by_category = Counter(d.category for d in filed_accepted)
    by_unit = Counter(d.lead_unit or "" for d in filed_accepted)
    by_stage: dict[str, list[StageFact]] = {stage: [] for stage in STAGES}
    for fact in stages:
        by_stage[fact.stage].append(fact)
    # The facts' moments are as stored, so `now` is too.
    stored_now = to_db(now)
    assert stored_now is not None
    sign, reply_stage, resolve = (on_time_rate(by_stage[stage], stored_now) for stage in STAGES)
    reply = reply_rate(f for _, f in cases)
    satisfaction = satisfaction_rate(r for _, r in ratings)
    rows = _rows(cases, stages, ratings, details, stored_now)
    counts, overdue, before = await others

    # Per-unit figures: the SQL aggregates (held equal to the §6 functions by a test).
    units: list[UnitFigures] = []
    codes = list(counts) if unit is None else [unit]
    if everything:
        codes = sorted(set(codes) | set(policy.units))
    for code in codes:
        c = counts.get(code)
        empty = Rate(0, 0)
        units.append(
            UnitFigures(code, c.cases, c.reply, c.on_time, c.satisfaction)
            if c is not None
            else UnitFigures(code, 0, empty, empty, empty)
        )
    weights = policy.reports.weights
    ranking = rank_units(units, weights, policy.reports.min_cases_for_ranking)
    backlog = Counter(o.unit_code for o in overdue)
    report = Report(
        period=period,
        now=now,
        unit=unit,
        track=track,
        accepted=accepted,
        rejected=rejected,
        by_track=dict(by_track.most_common()),
        by_category=dict(by_category.most_common()),
        by_unit=dict(by_unit.most_common()),
        reply=reply,
        sign=sign,
        reply_stage=reply_stage,
        resolve=resolve,
        on_time=_all_stages(sign, reply_stage, resolve),
        satisfaction=satisfaction,
        units=units,
        ranking=ranking,
        backlog=dict(backlog.most_common()),
        overdue=sorted(overdue, key=lambda o: (-o.days, o.number))[:LONGEST_OVERDUE],
        rows=rows,
    )
    report.extra["overdue_total"] = len({o.number for o in overdue})
    if track is not None:
        report.open_cases = sum((await store.open_by_state(db, track)).values())
    report.previous = before
    return report


async def _nothing() -> None:
    """No week before to compare with."""


async def _figures_only(
    db: Database, period: Period, now: datetime, unit: str | None, track: str | None
) -> Report:
    """A report with the headline counts only (a test holds them to the full report's)."""
    totals = await store.period_totals(db, period.start, period.end, now, unit=unit, track=track)
    return Report(
        period=period,
        now=now,
        unit=unit,
        track=track,
        accepted=totals.accepted,
        rejected=totals.rejected,
        by_track={},
        by_category={},
        by_unit={},
        reply=totals.reply,
        sign=totals.sign,
        reply_stage=totals.reply_stage,
        resolve=totals.resolve,
        on_time=_all_stages(totals.sign, totals.reply_stage, totals.resolve),
        satisfaction=totals.satisfaction,
        units=[],
        ranking=[],
        backlog={},
        overdue=[],
        rows=[],
    )


def _all_stages(*rates: Rate) -> Rate:
    """The on-time rate over every stage: the stages' rates added up (each stage is
    classified once, by `on_time_rate`)."""
    return Rate(
        sum(r.numerator for r in rates),
        sum(r.denominator for r in rates),
        tuple(n for r in rates for n in r.counted),
        tuple(n for r in rates for n in r.behind),
    )


async def _overdue(
    db: Database, now: datetime, unit: str | None, track: str | None
) -> list[Overdue]:
    """Each open case's current assignments past a deadline: the oldest missed stage each."""
    result: list[Overdue] = []
    calendar_days = 86_400.0
    stored_now = to_db(now)
    assert stored_now is not None
    for candidate in await store.overdue_candidates(db, now):
        if unit is not None and candidate.unit_code != unit:
            continue
        if track is not None and candidate.track != track:
            continue
        missed = [
            s
            for s in candidate.stages
            if stage_outcome(s.due, s.done_at, s.withdrawn, stored_now) == Outcome.MISSED
        ]
        if not missed:
            continue
        oldest = min(missed, key=lambda s: s.due)  # type: ignore[arg-type,return-value]
        due = from_db(oldest.due)  # type: ignore[arg-type]
        assert due is not None
        days = (now - due).total_seconds() / calendar_days
        result.append(
            Overdue(
                candidate.number,
                candidate.unit_code,
                candidate.track,
                oldest.stage,
                due,
                days,
            )
        )
    return result


_OUTCOME_TEXT: dict[Outcome | None, str] = {None: "", **{o: o.value for o in Outcome}}
_STAGE_SLOT = {"sign": 0, "reply": 1, "resolve": 2}  # a stage's place among a row's


def _rows(
    cases: list[tuple[str, Any]],
    stages: list[StageFact],
    ratings: list[tuple[str, Any]],
    details: dict[str, store.CaseDetail],
    now: int,
) -> list[CaseRow]:
    """One row per case behind the figures, with its lead unit's stages (another unit's
    when the lead has none in the period), each stage of the first round listed; `now`
    as stored."""
    # (number, unit) -> [sign due, reply due, resolve due, sign, reply, resolve]
    slots: dict[tuple[str, str], list[Any]] = {}
    first_unit: dict[str, str] = {}
    place, text = _STAGE_SLOT, _OUTCOME_TEXT
    for number, unit_code, stage, due, done_at, withdrawn in stages:
        slot = slots.get((number, unit_code))
        if slot is None:
            slot = slots[(number, unit_code)] = [None, None, None, "", "", ""]
            first_unit.setdefault(number, unit_code)
        index = place[stage]
        if not slot[index + 3]:  # a later round's stage: the first round is listed
            slot[index] = due
            slot[index + 3] = text[stage_outcome(due, done_at, withdrawn, now)]
    rating = {r.number: r.rating for _, r in ratings}
    numbers = dict.fromkeys([f.number for _, f in cases])
    numbers.update(first_unit)
    numbers.update(rating)
    no_detail = ("", "", "", "", "", None)
    no_stages = (None, None, None, "", "", "")
    rows: list[CaseRow] = []
    append = rows.append
    new_row = tuple.__new__  # CaseRow's own __new__ is a Python function: 23,000 calls
    for number in numbers:
        _, lead, track, category, state, filed_at = details.get(number, no_detail)
        unit_code = lead
        slot = slots.get((number, lead))
        if slot is None and number in first_unit:
            unit_code = first_unit[number]
            slot = slots[(number, unit_code)]
        append(
            new_row(
                CaseRow,
                (
                    number,
                    unit_code,
                    track,
                    category,
                    state,
                    filed_at,
                    *(slot or no_stages),
                    rating.get(number, ""),
                ),
            )
        )
    return rows


# -- output: text, chart, spreadsheet --------------------------------------------------------


def unit_label(code: str, policy: Policy, language: str, names: dict[str, str] | None) -> str:
    """A unit's name in the reader's language ('—' for no unit)."""
    if not code:
        return "—"
    if code in policy.units:
        return policy.units[code].name_in(language)
    return (names or {}).get(code, code)


def _rate(t: Translator, rate: Rate) -> str:
    return f"{t.percent(rate.value)} ({rate.numerator}/{rate.denominator})"


def _delta(t: Translator, now: Rate, before: Rate) -> str:
    if now.value is None or before.value is None:
        return "—"
    points = (now.value - before.value) * 100
    return t.gettext("{points} pts").format(points=f"{points:+.1f}")


def summary_text(
    report: Report, t: Translator, policy: Policy, names: dict[str, str] | None = None
) -> str:
    """The report's text in the reader's language: plain text, one screen."""
    g = t.gettext
    lang = t.language

    def unit_name(code: str) -> str:
        return unit_label(code, policy, lang, names)

    last_day = (report.period.end - timedelta(days=1)).astimezone(policy.calendar.tz).date()
    first_day = report.period.start.astimezone(policy.calendar.tz).date()
    title = g(TITLES[report.period.kind]).format(label=report.period.label)
    if report.unit:
        title += f" · {unit_name(report.unit)}"
    lines = [f"📊 {title}", f"{first_day.isoformat()} – {last_day.isoformat()}"]
    lines.append(
        g("Received: {total} (accepted {accepted}, rejected {rejected})").format(
            total=report.received, accepted=report.accepted, rejected=report.rejected
        )
    )
    if report.by_track:
        parts = [
            f"{g(TRACK_LABELS[Track(k)]) if k else g('no track')} {v}"
            for k, v in report.by_track.items()
        ]
        lines.append(g("By track: {list}").format(list=" · ".join(parts)))
    if report.by_category and report.period.kind != "daily":
        parts = [
            f"{policy.categories[k].name_in(lang) if k in policy.categories else k} {v}"
            for k, v in list(report.by_category.items())[:5]
        ]
        lines.append(g("By category: {list}").format(list=" · ".join(parts)))
    if report.by_unit and report.period.kind != "daily" and not report.unit:
        parts = [f"{unit_name(k)} {v}" for k, v in list(report.by_unit.items())[:5]]
        lines.append(g("By unit: {list}").format(list=" · ".join(parts)))
    lines.append(g("Reply rate: {rate}").format(rate=_rate(t, report.reply)))
    lines.append(
        g("On time: sign {sign} · reply {reply} · resolve {resolve}").format(
            sign=_rate(t, report.sign),
            reply=_rate(t, report.reply_stage),
            resolve=_rate(t, report.resolve),
        )
    )
    lines.append(g("Satisfaction rate: {rate}").format(rate=_rate(t, report.satisfaction)))
    if report.period.kind == "daily":
        lines.append(g("Open high-level cases: {count}").format(count=report.open_cases))
    total = report.extra.get("overdue_total", 0)
    backlog = " · ".join(f"{unit_name(k)} {v}" for k, v in list(report.backlog.items())[:6])
    lines.append(
        g("Backlog (清零): {count} open case(s) overdue").format(count=total)
        + (f" — {backlog}" if backlog else "")
    )
    for o in report.overdue:
        lines.append(
            "  "
            + g("{number} {unit}: {days} days overdue").format(
                number=o.number, unit=unit_name(o.unit_code), days=f"{o.days:.1f}"
            )
        )
    if report.previous is not None:
        before = report.previous
        lines.append(
            g(
                "Week on week: received {received}, reply rate {reply}, on time {on_time},"
                " satisfaction {satisfaction}"
            ).format(
                received=f"{report.received - before.received:+d}",
                reply=_delta(t, report.reply, before.reply),
                on_time=_delta(t, report.on_time, before.on_time),
                satisfaction=_delta(t, report.satisfaction, before.satisfaction),
            )
        )
    calendar = policy.calendar
    if report.period.kind == "weekly" and calendar.next_year_schedule_missing(last_day):
        year = last_day.year + (1 if calendar.schedule_source(last_day.year) != "fallback" else 0)
        lines.append(
            "📅 "
            + g(
                "The official holiday schedule for {year} is not in the policy yet. Deadlines in "
                "{year} would use an approximation without adjusted working weekends. Please add "
                "[calendar.years.{year}] to the policy file as soon as the State Council publishes "
                "it."
            ).format(year=year)
        )
    if report.period.kind == "quarterly":
        lines.append(g("Ranking (score):"))
        for ranked in report.ranking:
            f = ranked.figures
            score = f"{ranked.score * 100:.1f}" if ranked.score is not None else "—"
            place = f"{ranked.place}." if ranked.place is not None else "–"
            note = "" if ranked.place is not None else " " + g("(not ranked)")
            lines.append(f"{place} {unit_name(f.unit_code)} {score}{note}")
    return "\n".join(lines)


def font_path() -> Path:
    """The CJK font the chart uses (Noto Sans CJK, shipped as a Python package)."""
    import cvttf_NotoSansCJK_Regular as font_package

    return Path(font_package.__file__).resolve().parent / "NotoSansCJKtc-Regular.otf"


def chart_labels(
    report: Report, t: Translator, policy: Policy, names: dict[str, str] | None = None
) -> dict[str, Any]:
    """Every text the chart shows (the test checks the font has each glyph)."""
    g = t.gettext
    shown = [u for u in report.units if u.cases or u.reply.denominator][:12]
    return {
        "title": g(TITLES[report.period.kind]).format(label=report.period.label),
        "rates": [g("Reply rate"), g("On-time rate"), g("Satisfaction rate")],
        "units": [unit_label(u.unit_code, policy, t.language, names) for u in shown],
        "codes": [u.unit_code for u in shown],
        "tracks": [g(TRACK_LABELS[Track(k)]) if k else g("no track") for k in report.by_track],
        "received": g("Received by track"),
        "by_unit": g("Rates by unit (%)"),
    }


# Paused while the chart and the XLSX are made too, the collector next runs with the
# report's objects behind it (freed by reference counting once the report is sent)
# instead of walking them while the chart is drawn.
@cycle_collector_paused()
def chart_png(
    report: Report, t: Translator, policy: Policy, names: dict[str, str] | None = None
) -> bytes:
    """A PNG: received by track, and each unit's reply, on-time and satisfaction rates."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import MaxNLocator

    font = FontProperties(fname=str(font_path()))
    labels = chart_labels(report, t, policy, names)
    figures = {u.unit_code: u for u in report.units}
    counts = list(report.by_track.values())
    figure = Figure(figsize=(CHART_SIZE[0] / 100, CHART_SIZE[1] / 100), dpi=100)
    layout = _chart_layout(FigureCanvasAgg(figure).get_renderer(), font, labels, counts)
    left = figure.add_axes(layout["left"])
    right = figure.add_axes(layout["right"])
    left.bar(range(len(counts)), counts, color="#3b6ea5")
    left.set_xticks(range(len(counts)))
    left.set_xticklabels(labels["tracks"], fontproperties=font, rotation=TRACK_ROTATION)
    left.set_title(labels["received"], fontproperties=font)
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    width = 0.27
    rows = range(len(labels["codes"]))
    for index, (name, colour) in enumerate(
        zip(labels["rates"], ("#3b6ea5", "#e0a030", "#4a9a5a"), strict=True)
    ):
        values = []
        for code in labels["codes"]:
            f = figures[code]
            rate = (f.reply, f.on_time, f.satisfaction)[index]
            values.append((rate.value or 0) * 100)
        right.barh(
            [r + (index - 1) * width for r in rows], values, height=width, color=colour, label=name
        )
    right.set_yticks(list(rows))
    right.set_yticklabels(labels["units"], fontproperties=font)
    right.invert_yaxis()
    right.set_xlim(0, 100)
    right.set_title(labels["by_unit"], fontproperties=font)
    if labels["codes"]:
        right.legend(prop=font, loc="lower right")
    for axis in (left, right):
        for tick in axis.get_xticklabels() + axis.get_yticklabels():
            tick.set_fontproperties(font)
    figure.suptitle(labels["title"], fontproperties=font, fontsize=14)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


CHART_SIZE = (1000, 550)  # pixels at 100 dpi
TRACK_ROTATION = 20  # degrees: the tracks' names under their bars


def _chart_layout(
    renderer: Any, font: Any, labels: dict[str, Any], counts: list[int]
) -> dict[str, list[float]]:
    """Where the two plots go (figure fractions), from the measured sizes of the labels
    around them.

    What tight_layout finds, without its cost: it draws the whole figure once more to
    measure every label, a third of the chart's time at a weekly report's size.
    """
    import math

    def size(text: str, points: float = 10.0) -> tuple[float, float]:
        sized = font.copy()
        sized.set_size(points)
        width, height, _ = renderer.get_text_width_height_descent(text, sized, ismath=False)
        return width, height

    width, height = CHART_SIZE
    pad = 10.0  # pixels: a tick (3.5 pt) and its label's distance (3.5 pt), and a margin
    angle = math.radians(TRACK_ROTATION)
    tracks = [size(text) for text in labels["tracks"]]
    # A rotated name hangs below its bar and, centred on it, reaches right of it.
    drop = max((w * math.sin(angle) + h * math.cos(angle) for w, h in tracks), default=0.0)
    overhang = max(
        ((w * math.cos(angle) + h * math.sin(angle)) / 2 for w, h in tracks[-1:]), default=0.0
    )
    digits = max(size(str(n))[0] for n in [*counts, 100])
    units = max((size(text)[0] for text in labels["units"]), default=0.0)
    title = size(labels["title"], 14)[1] + size(labels["received"], 12)[1]
    top = 1 - (title + 4 * pad) / height
    bottom = (max(drop, size("100")[1]) + 2 * pad) / height
    left = (digits + 2 * pad) / width
    right = 1 - 3 * pad / width  # the last tick label, "100", is centred on the edge
    gap = (units + overhang + 3 * pad) / width
    plots = right - left - gap
    return {
        "left": [left, bottom, plots / 3, top - bottom],
        "right": [left + plots / 3 + gap, bottom, plots * 2 / 3, top - bottom],
    }


XLSX_COLUMNS = (
    "number",
    "unit",
    "track",
    "category",
    "state",
    "filed",
    "sign_due",
    "reply_due",
    "resolve_due",
    "sign",
    "reply",
    "resolve",
    "rating",
)


@cycle_collector_paused()
def xlsx_bytes(report: Report, policy: Policy, names: dict[str, str] | None = None) -> bytes:
    """The cases behind the figures, one row each, and the units' figures."""
    cases: list[Sequence[Any]] = [XLSX_COLUMNS, *report.rows]
    units: list[tuple[Any, ...]] = [
        (
            "place",
            "unit",
            "name",
            "cases",
            "reply",
            "replied",
            "on_time_steps",
            "counted_steps",
            "satisfied",
            "rated",
            "score",
        )
    ]
    for ranked in report.ranking:
        f = ranked.figures
        units.append(
            (
                ranked.place,
                f.unit_code,
                unit_label(f.unit_code, policy, "zh_Hans", names),
                f.cases,
                f.reply.denominator,
                f.reply.numerator,
                f.on_time.numerator,
                f.on_time.denominator,
                f.satisfaction.numerator,
                f.satisfaction.denominator,
                round(ranked.score, 4) if ranked.score is not None else None,
            )
        )
    # The rows' moments are as stored: the writer shows them in the policy's zone.
    return workbook_bytes(
        [("cases", cases), ("units", units)],
        policy.calendar.tz,
        stored_moments={"cases": range(5, 9)},
    )


def file_stem(report: Report) -> str:
    """The base name of a report's files, e.g. 'report-weekly-2026-W48'."""
    unit = f"-{report.unit}" if report.unit else ""
    return f"report-{report.period.kind}-{report.period.label}{unit}"


# -- report parameters (what the outbox stores) ----------------------------------------------


def params_of(
    period: Period, as_of: datetime, unit: str | None = None, track: str | None = None
) -> dict[str, Any]:
    """What an outbox row keeps of a report: enough to build it again at send time
    (as of the moment it was queued, so a delayed send shows the same figures)."""
    return {
        "as_of": as_of.isoformat(),
        "kind": period.kind,
        "label": period.label,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "unit": unit,
        "track": track,
    }


def period_of(params: dict[str, Any]) -> Period:
    """The period an outbox row's parameters name."""
    return Period(
        params["kind"],
        params["label"],
        datetime.fromisoformat(params["start"]),
        datetime.fromisoformat(params["end"]),
    )


# -- services: scheduled reports and reports on demand ----------------------------------------


async def _enqueue_once(svc: Any, dedupe: str, messages: list[OutboxMessage]) -> bool:
    now_db = to_db(svc.clock.now()) or 0
    async with svc.db.unit_of_work() as uow:
        if not await claim_once(uow, dedupe, now_db):
            return False
        await enqueue(uow, messages, now_db)
        await uow.commit()
    logger.info("report %s queued (%d message(s))", dedupe, len(messages))
    return True


async def enqueue_weekly(svc: Any) -> bool:
    """Queue last week's report (周报) for the dispatch group, once per week."""
    period = previous_week(svc.clock.now(), svc.policy)
    message = OutboxMessage("dispatch", None, MESSAGE_KEY, params_of(period, svc.clock.now()))
    return await _enqueue_once(svc, f"report:weekly:{period.label}", [message])


async def enqueue_daily(svc: Any) -> bool:
    """On working days: queue yesterday's high-level (高位办) report for the leaders."""
    policy = svc.policy
    today = svc.clock.now().astimezone(policy.calendar.tz).date()
    if not policy.calendar.is_working_day(today):
        return False
    period = day_period(today - timedelta(days=1), policy)
    params = params_of(period, svc.clock.now(), track=Track.HIGH_LEVEL.value)
    message = OutboxMessage("leaders", None, MESSAGE_KEY, params)
    return await _enqueue_once(svc, f"report:daily:{today.isoformat()}", [message])


async def enqueue_quarterly(svc: Any) -> bool:
    """In a quarter's first month: queue the last quarter's notice (季度通报), once."""
    policy = svc.policy
    period = previous_quarter(svc.clock.now(), policy)
    params = params_of(period, svc.clock.now())
    messages = [OutboxMessage("dispatch", None, MESSAGE_KEY, params)]
    if policy.reports.quarterly_to_units:
        rows = await svc.db.fetch_all(
            "SELECT unit_code FROM chat_bindings WHERE purpose = 'unit' ORDER BY unit_code"
        )
        messages += [OutboxMessage("unit", str(r[0]), MESSAGE_KEY, params) for r in rows]
    return await _enqueue_once(svc, f"report:quarterly:{period.label}", messages)


def quarterly_is_due(svc: Any) -> bool:
    """The quarterly notice goes out on a working day of a quarter's first month."""
    today = svc.clock.now().astimezone(svc.policy.calendar.tz).date()
    return today.month % 3 == 1 and bool(svc.policy.calendar.is_working_day(today))


# The last moment the scheduler was seen running (refreshed by every deadline sweep).
RUNNING = "scheduler:running"


async def note_running(svc: Any) -> int | None:
    """Record that the scheduler runs now; returns the moment recorded before (None:
    the bot never ran on this database)."""
    now_db = to_db(svc.clock.now()) or 0
    async with svc.db.unit_of_work() as uow:
        before = await replace_counter(uow, RUNNING, now_db)
        await uow.commit()
    return before


def _at(day: date, clock: str, tz: Any) -> datetime:
    """`clock` (HH:MM, as the policy gives it) on `day` in `tz`."""
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=tz)


async def catch_up(svc: Any) -> list[str]:
    """At start-up: queue each scheduled report whose moment passed while the bot was
    not running; returns their kinds.

    The report jobs keep no state, and APScheduler's jobs start afresh with the bot, so a
    bot stopped across Monday 09:00 would skip that week's report. The last moment the
    scheduler ran is kept (`note_running`); a report whose latest moment lies between it
    and now goes out now — last week's report, today's daily report, the quarterly notice
    on its days — once each, as from the jobs (the same claims). A database the bot never
    ran on gets none: nothing was missed.
    """
    last = await note_running(svc)
    if last is None:
        return []
    now = svc.clock.now()
    rules = svc.policy.reports
    tz = svc.policy.calendar.tz
    today = now.astimezone(tz).date()
    report_day = today - timedelta(days=(today.weekday() - rules.weekly_weekday) % 7)
    weekly = _at(report_day, rules.weekly_time, tz)
    if weekly > now:
        weekly = _at(report_day - timedelta(days=7), rules.weekly_time, tz)

    def missed(moment: datetime) -> bool:
        return last < (to_db(moment) or 0) and moment <= now

    sent: list[str] = []
    if missed(weekly) and await enqueue_weekly(svc):
        sent.append("weekly")
    if missed(_at(today, rules.daily_time, tz)) and await enqueue_daily(svc):
        sent.append("daily")
    quarterly = _at(today, rules.weekly_time, tz)
    if missed(quarterly) and quarterly_is_due(svc) and await enqueue_quarterly(svc):
        sent.append("quarterly")
    if sent:
        logger.info("start-up: report(s) missed while the bot was down queued: %s", sent)
    return sent


REQUEST_KINDS = {"week": "weekly", "month": "monthly", "quarter": "quarterly", "day": "daily"}


async def request_report(
    svc: Any,
    user_id: int,
    kind: str,
    unit: str | None = None,
    period: str | None = None,
) -> Report:
    """/report week|month|quarter [UNIT] [PERIOD] for staff (Action.REPORT)."""
    from bot.services import _authorize

    async with svc.db.unit_of_work() as uow:
        await _authorize(svc, uow, user_id, Action.REPORT, None, None)
    if kind not in REQUEST_KINDS:
        raise errors.InvalidInput("kind", field="kind")
    if unit is not None:
        unit = unit.upper()
        row = await svc.db.fetch_one("SELECT 1 FROM units WHERE code = ?", (unit,))
        if row is None:
            raise errors.UnknownCode(unit, kind="unit", code=unit)
    now = svc.clock.now()
    chosen = parse_period(REQUEST_KINDS[kind], period, now, svc.policy)
    return await build_report(svc.db, svc.policy, chosen, now, unit=unit)


@dataclass(frozen=True)
class Stats:
    """The one-screen current view."""

    open_by_state: dict[str, int]
    overdue: int
    filed_today: int


async def current_stats(svc: Any, user_id: int) -> Stats:
    """/stats for staff: open cases by state, overdue cases, today's filings."""
    from bot.services import _authorize

    async with svc.db.unit_of_work() as uow:
        await _authorize(svc, uow, user_id, Action.REPORT, None, None)
    now = svc.clock.now()
    today = day_period(now.astimezone(svc.policy.calendar.tz).date(), svc.policy)
    overdue = await _overdue(svc.db, now, None, None)
    return Stats(
        await store.open_by_state(svc.db),
        len({o.number for o in overdue}),
        await store.filed_between(svc.db, today.start, today.end),
    )


def write_files(
    report: Report, t: Translator, policy: Policy, out: Path, names: dict[str, str] | None = None
) -> list[Path]:
    """Write the report's .txt, .png and .xlsx into `out`; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = file_stem(report)
    paths = [out / f"{stem}.txt", out / f"{stem}.png", out / f"{stem}.xlsx"]
    paths[0].write_text(summary_text(report, t, policy, names) + "\n", encoding="utf-8")
    paths[1].write_bytes(chart_png(report, t, policy, names))
    paths[2].write_bytes(xlsx_bytes(report, policy, names))
    return paths
