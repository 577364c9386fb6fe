"""Report queries: the §6 figures as SQL aggregates, and the facts behind them.

`unit_counts` is what reports print; `period_facts` loads the rows behind the figures
(for the XLSX and for tracing a figure back to its cases), with the details of their
cases, in three queries that each walk the period's index. Both follow
`bot.domain.metrics` exactly, and a test holds them to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from bot.domain.metrics import CaseFact, Rate, RatingFact, StageFact
from storage.db import Database, Row, to_db

# A stage counts when it was done, or when it was not done, its assignment was not
# withdrawn and its deadline has passed (DESIGN §6: a unit that never signs must not
# look punctual).
_STAGE_SQL = """
    sum(CASE WHEN {done} IS NOT NULL AND {done} <= {due} THEN 1 ELSE 0 END),
    sum(CASE WHEN {due} IS NULL THEN 0
             WHEN {done} IS NOT NULL THEN 1
             WHEN {state} != 'withdrawn' AND {due} <= :now THEN 1 ELSE 0 END)
"""

UNIT_STAGES_SQL = f"""
SELECT unit_code,
       count(DISTINCT CASE WHEN role = 'lead' THEN case_id END),
       {_STAGE_SQL.format(done="signed_at", due="sign_due", state="state")},
       {_STAGE_SQL.format(done="replied_at", due="reply_due", state="state")},
       {_STAGE_SQL.format(done="resolved_at", due="resolve_due", state="state")}
FROM assignments
WHERE assigned_at >= :start AND assigned_at < :end
GROUP BY unit_code
"""

UNIT_REPLY_SQL = """
SELECT c.lead_unit,
       sum(CASE WHEN EXISTS (SELECT 1 FROM answers a
                             WHERE a.case_id = c.id AND a.state = 'published')
                THEN 1 ELSE 0 END),
       count(*)
FROM cases c
WHERE c.filed_at >= :start AND c.filed_at < :end
  AND c.state != 'rejected' AND c.lead_unit IS NOT NULL
GROUP BY c.lead_unit
"""

UNIT_SATISFACTION_SQL = """
SELECT unit_code,
       sum(CASE WHEN rating IN ('satisfied', 'basically_satisfied') THEN 1 ELSE 0 END),
       count(*)
FROM ratings
WHERE at >= :start AND at < :end AND rating != 'not_rated'
  AND (appeal IS NULL OR appeal != 'approved') AND unit_code IS NOT NULL
GROUP BY unit_code
"""


# The period's headline counts with the §6 definitions of `bot.domain.metrics` (and the
# report's unit and track filters), for the week a weekly report compares with.
TOTAL_CASES_SQL = """
SELECT sum(c.state != 'rejected'), sum(c.state = 'rejected'),
       sum(c.state != 'rejected' AND EXISTS (SELECT 1 FROM answers a
                                             WHERE a.case_id = c.id AND a.state = 'published'))
FROM cases c
WHERE c.filed_at >= :start AND c.filed_at < :end
  AND (:unit IS NULL OR coalesce(c.lead_unit, '') = :unit)
  AND (:track IS NULL OR c.track = :track)
"""

TOTAL_STAGES_SQL = f"""
SELECT {_STAGE_SQL.format(done="a.signed_at", due="a.sign_due", state="a.state")},
       {_STAGE_SQL.format(done="a.replied_at", due="a.reply_due", state="a.state")},
       {_STAGE_SQL.format(done="a.resolved_at", due="a.resolve_due", state="a.state")}
FROM assignments a JOIN cases c ON c.id = a.case_id
WHERE a.assigned_at >= :start AND a.assigned_at < :end
  AND (:unit IS NULL OR a.unit_code = :unit)
  AND (:track IS NULL OR c.track = :track)
"""

TOTAL_RATINGS_SQL = """
SELECT sum(r.rating IN ('satisfied', 'basically_satisfied')), count(*)
FROM ratings r JOIN cases c ON c.id = r.case_id
WHERE r.at >= :start AND r.at < :end
  AND r.rating != 'not_rated' AND coalesce(r.appeal, '') != 'approved'
  AND (:unit IS NULL OR coalesce(r.unit_code, '') = :unit)
  AND (:track IS NULL OR c.track = :track)
"""


@dataclass(frozen=True)
class PeriodTotals:
    """A period's headline counts (the rates without the case numbers behind them)."""

    accepted: int
    rejected: int
    reply: Rate
    sign: Rate
    reply_stage: Rate
    resolve: Rate
    satisfaction: Rate


async def period_totals(
    db: Database,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    unit: str | None = None,
    track: str | None = None,
) -> PeriodTotals:
    """The headline counts of [start, end) as of `now`, in three aggregate queries."""
    params = {**_window(start, end, now), "unit": unit, "track": track}
    # Queued together: the reader runs them one after another without waiting for this
    # coroutine's turn on a busy event loop in between.
    cases, stages, ratings = await asyncio.gather(
        db.fetch_one(TOTAL_CASES_SQL, params),
        db.fetch_one(TOTAL_STAGES_SQL, params),
        db.fetch_one(TOTAL_RATINGS_SQL, params),
    )
    assert cases is not None and stages is not None and ratings is not None
    c, s, r = ([v or 0 for v in row] for row in (cases, stages, ratings))
    return PeriodTotals(
        c[0],
        c[1],
        Rate(c[2], c[0]),
        Rate(s[0], s[1]),
        Rate(s[2], s[3]),
        Rate(s[4], s[5]),
        Rate(r[0], r[1]),
    )


@dataclass(frozen=True)
class UnitCounts:
    """A unit's counts for a period: the numbers behind its rates."""

    unit_code: str
    cases: int
    sign: Rate
    reply_stage: Rate
    resolve: Rate
    reply: Rate
    satisfaction: Rate

    @property
    def on_time(self) -> Rate:
        """All three stages together."""
        return Rate(
            self.sign.numerator + self.reply_stage.numerator + self.resolve.numerator,
            self.sign.denominator + self.reply_stage.denominator + self.resolve.denominator,
        )


def _window(start: datetime, end: datetime, now: datetime) -> dict[str, int | None]:
    return {"start": to_db(start), "end": to_db(end), "now": to_db(now)}


async def unit_counts(
    db: Database, start: datetime, end: datetime, now: datetime
) -> dict[str, UnitCounts]:
    """Per-unit figures of the period [start, end), as of `now`."""
    params = _window(start, end, now)
    empty = Rate(0, 0)
    # Queued together, as in `period_totals`.
    stage_rows, reply_rows, satisfaction_rows = await asyncio.gather(
        db.fetch_all(UNIT_STAGES_SQL, params),
        db.fetch_all(UNIT_REPLY_SQL, params),
        db.fetch_all(UNIT_SATISFACTION_SQL, {"start": params["start"], "end": params["end"]}),
    )
    stages: dict[str, tuple[int, Rate, Rate, Rate]] = {}
    for row in stage_rows:
        stages[row[0]] = (
            row[1],
            Rate(row[2] or 0, row[3] or 0),
            Rate(row[4] or 0, row[5] or 0),
            Rate(row[6] or 0, row[7] or 0),
        )
    replies = {r[0]: Rate(r[1] or 0, r[2] or 0) for r in reply_rows}
    satisfaction = {r[0]: Rate(r[1] or 0, r[2] or 0) for r in satisfaction_rows}
    result: dict[str, UnitCounts] = {}
    for unit in sorted(set(stages) | set(replies) | set(satisfaction)):
        cases, sign, reply_stage, resolve = stages.get(unit, (0, empty, empty, empty))
        result[unit] = UnitCounts(
            unit,
            cases,
            sign,
            reply_stage,
            resolve,
            replies.get(unit, empty),
            satisfaction.get(unit, empty),
        )
    return result


class CaseDetail(NamedTuple):
    """What a report lists of a case besides the figures: its track, category and state."""

    number: str
    lead_unit: str
    track: str
    category: str
    state: str
    filed_at: int  # as stored: µs since the Unix epoch (UTC)


@dataclass(frozen=True)
class PeriodFacts:
    """The rows behind a period's figures, and the details of every case among them.

    Moments are as stored (µs since the Unix epoch): a busy week at a million cases has
    ~100,000 of them, and turning each into a datetime cost more than everything else
    done with it; the §6 functions compare them with `to_db(now)` just the same.
    """

    cases: list[tuple[str, CaseFact]]  # (lead unit or "", fact) for cases filed in the period
    stages: list[StageFact]  # stages of assignments made in the period
    ratings: list[tuple[str, RatingFact]]  # (unit, fact) for ratings given in the period
    details: dict[str, CaseDetail] = field(default_factory=dict)  # by case number


# Each query walks its period's index (filed_at, assigned_at, at): a week of a million
# cases is a few thousand neighbouring rows, never a scan.
PERIOD_CASES_SQL = """
SELECT c.lead_unit, c.number, c.state, c.track, c.category, c.filed_at,
       EXISTS (SELECT 1 FROM answers a
               WHERE a.case_id = c.id AND a.state = 'published')
FROM cases c
WHERE c.filed_at >= :start AND c.filed_at < :end
ORDER BY c.id
"""

PERIOD_STAGES_SQL = """
SELECT c.number, a.unit_code, a.state, a.sign_due, a.signed_at, a.reply_due,
       a.replied_at, a.resolve_due, a.resolved_at,
       c.lead_unit, c.track, c.category, c.state, c.filed_at
FROM assignments a
JOIN cases c ON c.id = a.case_id
WHERE a.assigned_at >= :start AND a.assigned_at < :end
ORDER BY a.id
"""

PERIOD_RATINGS_SQL = """
SELECT r.unit_code, c.number, r.rating, r.appeal,
       c.lead_unit, c.track, c.category, c.state, c.filed_at
FROM ratings r
JOIN cases c ON c.id = r.case_id
WHERE r.at >= :start AND r.at < :end
ORDER BY r.id
"""


def _detail(number: str, r: Row, at: int) -> CaseDetail:
    """A case's details from the columns r[at:at + 5]: lead unit, track, category, state,
    filing time."""
    return CaseDetail(number, r[at] or "", r[at + 1] or "", r[at + 2], r[at + 3], r[at + 4])


def period_facts(db: Database, start: datetime, end: datetime) -> Awaitable[PeriodFacts]:
    """Load the facts of a period, for the figures and the XLSX.

    The three queries are queued on the reader by this call, before the caller's next
    queries: the reader's thread runs the next query (SQLite lets go of the GIL while it
    steps) while this one's rows become facts, and a report turns the facts into figures
    while the reader runs its other queries.
    """
    params = {"start": to_db(start), "end": to_db(end)}
    cases_rows, stage_rows, rating_rows = (
        asyncio.ensure_future(db.fetch_all(sql, params))
        for sql in (PERIOD_CASES_SQL, PERIOD_STAGES_SQL, PERIOD_RATINGS_SQL)
    )
    return _period_facts(cases_rows, stage_rows, rating_rows)


async def _period_facts(
    cases_rows: Awaitable[list[Row]],
    stage_rows: Awaitable[list[Row]],
    rating_rows: Awaitable[list[Row]],
) -> PeriodFacts:
    cases: list[tuple[str, CaseFact]] = []
    details: dict[str, CaseDetail] = {}
    for r in await cases_rows:
        lead, number, state = r[0] or "", r[1], r[2]
        cases.append((lead, CaseFact(number, state == "rejected", bool(r[6]))))
        details[number] = CaseDetail(number, lead, r[3] or "", r[4], state, r[5])
    stages: list[StageFact] = []
    append = stages.append
    for r in await stage_rows:
        number, unit, withdrawn = r[0], r[1], r[2] == "withdrawn"
        append(StageFact(number, unit, "sign", r[3], r[4], withdrawn))
        append(StageFact(number, unit, "reply", r[5], r[6], withdrawn))
        if r[7] is not None:  # a co-unit has no resolve stage
            append(StageFact(number, unit, "resolve", r[7], r[8], withdrawn))
        if number not in details:  # a case filed earlier, assigned again in the period
            details[number] = _detail(number, r, 9)
    ratings: list[tuple[str, RatingFact]] = []
    for r in await rating_rows:
        ratings.append((r[0] or "", RatingFact(r[1], r[2], r[3] == "approved")))
        if r[1] not in details:  # rated in the period, filed earlier
            details[r[1]] = _detail(r[1], r, 4)
    return PeriodFacts(cases, stages, ratings, details)


@dataclass(frozen=True)
class OpenAssignment:
    """A current assignment of an open case with at least one deadline passed."""

    number: str
    unit_code: str
    track: str
    stages: tuple[StageFact, ...]


async def overdue_candidates(db: Database, now: datetime) -> list[OpenAssignment]:
    """Current assignments of open cases with a stage not done whose deadline has passed
    (for the backlog, 清零); the caller classifies the stages with the §6 functions
    against `to_db(now)`: the moments are as stored, as in `period_facts`."""
    rows = await db.fetch_all(
        "SELECT c.number, a.unit_code, c.track, a.sign_due, a.signed_at, a.reply_due,"
        " a.replied_at, a.resolve_due, a.resolved_at FROM assignments a"
        " JOIN cases c ON c.id = a.case_id"
        " WHERE c.state NOT IN ('closed', 'rejected') AND a.round = c.round"
        " AND a.state NOT IN ('withdrawn', 'returned')"
        " AND ((a.signed_at IS NULL AND a.sign_due <= :now)"
        "   OR (a.replied_at IS NULL AND a.reply_due <= :now)"
        "   OR (a.resolved_at IS NULL AND a.resolve_due <= :now))"
        " ORDER BY a.id",
        {"now": to_db(now)},
    )
    result: list[OpenAssignment] = []
    for r in rows:
        stages = tuple(
            StageFact(r[0], r[1], stage, due, done)
            for stage, due, done in (
                ("sign", r[3], r[4]),
                ("reply", r[5], r[6]),
                ("resolve", r[7], r[8]),
            )
        )
        result.append(OpenAssignment(r[0], r[1], r[2] or "", stages))
    return result


async def open_by_state(db: Database, track: str | None = None) -> dict[str, int]:
    """Open cases (not closed or rejected) by state, optionally of one track."""
    rows = await db.fetch_all(
        "SELECT state, count(*) FROM cases WHERE state NOT IN ('closed', 'rejected')"
        " AND (:track IS NULL OR track = :track) GROUP BY state",
        {"track": track},
    )
    return {str(r[0]): int(r[1]) for r in rows}


async def filed_between(db: Database, start: datetime, end: datetime) -> int:
    """How many cases were filed in [start, end)."""
    row = await db.fetch_one(
        "SELECT count(*) FROM cases WHERE filed_at >= ? AND filed_at < ?",
        (to_db(start), to_db(end)),
    )
    return int(row[0]) if row else 0
