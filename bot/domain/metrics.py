"""The figures leaders act on (DESIGN §6), as pure functions over case facts.

The SQL report queries compute the same counts; a test holds both to these definitions.
Each `Rate` keeps the case numbers behind it, so every figure can be traced.

The facts are named tuples: a weekly report at a million cases reads ~80,000 of them,
and a tuple is made in a fraction of a frozen dataclass's time. Their moments may be
datetimes or the integers storage keeps (µs since the Unix epoch): the definitions only
compare moments with each other and with `now`, which must then be of the same kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

Moment = datetime | int
"""A moment: an aware datetime, or as stored (µs since the Unix epoch, UTC)."""


class Outcome(StrEnum):
    """How one stage (sign, reply, resolve) of one assignment stands."""

    ON_TIME = "on_time"
    LATE = "late"
    MISSED = "missed"  # not done and its deadline has passed
    PENDING = "pending"  # not done, deadline still ahead
    EXCLUDED = "excluded"  # withdrawn (the unit was replaced) before doing it


@dataclass(frozen=True)
class Rate:
    """numerator ÷ denominator, with the case numbers behind each."""

    numerator: int
    denominator: int
    counted: tuple[str, ...] = field(default=(), compare=False)
    behind: tuple[str, ...] = field(default=(), compare=False)

    @property
    def value(self) -> float | None:
        """The rate, or None when there is nothing to divide by."""
        return self.numerator / self.denominator if self.denominator else None


def stage_outcome(
    due: Moment | None, done_at: Moment | None, withdrawn: bool, now: Moment
) -> Outcome | None:
    """Classify a stage; None when the stage does not exist (e.g. a co-unit's resolve)."""
    if due is None:
        return None
    if done_at is not None:
        return Outcome.ON_TIME if done_at <= due else Outcome.LATE  # type: ignore[operator]
    if withdrawn:
        return Outcome.EXCLUDED
    return Outcome.MISSED if due <= now else Outcome.PENDING  # type: ignore[operator]


class StageFact(NamedTuple):
    """One stage of one assignment, for on-time rates."""

    number: str
    unit_code: str
    stage: str  # sign, reply, resolve
    due: Moment | None
    done_at: Moment | None
    withdrawn: bool = False


def on_time_rate(stages: Iterable[StageFact], now: Moment) -> Rate:
    """Steps done by their deadline ÷ (steps done + steps not done whose deadline passed).

    A unit that never signs must not look punctual: its missed steps are in the
    denominator.
    """
    on_time: list[str] = []
    behind: list[str] = []
    for number, _unit, _stage, due, done_at, withdrawn in stages:
        outcome = stage_outcome(due, done_at, withdrawn, now)
        if outcome in (Outcome.ON_TIME, Outcome.LATE, Outcome.MISSED):
            behind.append(number)
            if outcome == Outcome.ON_TIME:
                on_time.append(number)
    return Rate(len(on_time), len(behind), tuple(on_time), tuple(behind))


class CaseFact(NamedTuple):
    """What the reply rate needs to know of a case filed in the period."""

    number: str
    rejected: bool
    has_published_answer: bool  # an interim or final answer reached the citizen


def received(cases: Iterable[CaseFact]) -> tuple[int, int]:
    """(accepted, rejected) among the cases filed in the period."""
    accepted = rejected = 0
    for case in cases:
        if case.rejected:
            rejected += 1
        else:
            accepted += 1
    return accepted, rejected


def reply_rate(cases: Iterable[CaseFact]) -> Rate:
    """Accepted cases with a published answer ÷ accepted cases (rejected ones are apart)."""
    answered: list[str] = []
    accepted: list[str] = []
    for case in cases:
        if case.rejected:
            continue
        accepted.append(case.number)
        if case.has_published_answer:
            answered.append(case.number)
    return Rate(len(answered), len(accepted), tuple(answered), tuple(accepted))


class RatingFact(NamedTuple):
    """One rating (one round of one case)."""

    number: str
    rating: str  # satisfied, basically_satisfied, unsatisfied, not_rated
    appeal_accepted: bool = False


def satisfaction_rate(ratings: Iterable[RatingFact]) -> Rate:
    """(satisfied + basically satisfied) ÷ rated.

    "Not rated" is not rated (never counted as satisfied), and an unsatisfied rating
    whose appeal (核减) was accepted leaves the rate.
    """
    satisfied: list[str] = []
    rated: list[str] = []
    for fact in ratings:
        if fact.rating == "not_rated" or fact.appeal_accepted:
            continue
        rated.append(fact.number)
        if fact.rating in ("satisfied", "basically_satisfied"):
            satisfied.append(fact.number)
    return Rate(len(satisfied), len(rated), tuple(satisfied), tuple(rated))


@dataclass(frozen=True)
class UnitFigures:
    """A unit's figures for a period."""

    unit_code: str
    cases: int
    reply: Rate
    on_time: Rate
    satisfaction: Rate


def unit_score(figures: UnitFigures, weights: Mapping[str, float]) -> float | None:
    """The policy's weighted mix of the unit's rates, over the rates that exist.

    A rate with no denominator is left out and the weights of the others rescaled, so a
    unit is neither rewarded nor punished for a figure it could not have.
    """
    parts = {
        "reply_rate": figures.reply.value,
        "on_time_rate": figures.on_time.value,
        "satisfaction_rate": figures.satisfaction.value,
    }
    total_weight = sum(weights.get(name, 0.0) for name, value in parts.items() if value is not None)
    if total_weight <= 0:
        return None
    return (
        sum(weights.get(name, 0.0) * value for name, value in parts.items() if value is not None)
        / total_weight
    )


@dataclass(frozen=True)
class Ranked:
    """A unit's place in a ranking (None when it had too few cases to be ranked)."""

    place: int | None
    score: float | None
    figures: UnitFigures


def rank_units(
    figures: Iterable[UnitFigures], weights: Mapping[str, float], min_cases: int
) -> list[Ranked]:
    """Rank units by score (ties share a place); units below `min_cases` are listed unranked."""
    scored = [(unit_score(f, weights), f) for f in figures]
    rankable = sorted(
        ((s, f) for s, f in scored if f.cases >= min_cases and s is not None),
        key=lambda pair: (-pair[0], pair[1].unit_code),  # type: ignore[operator]
    )
    result: list[Ranked] = []
    previous: float | None = None
    place = 0
    for index, (score, fig) in enumerate(rankable, start=1):
        if previous is None or round(score, 9) != round(previous, 9):  # type: ignore[arg-type]
            place = index
        previous = score
        result.append(Ranked(place, score, fig))
    unranked = sorted(
        ((s, f) for s, f in scored if not (f.cases >= min_cases and s is not None)),
        key=lambda pair: pair[1].unit_code,
    )
    result.extend(Ranked(None, s, f) for s, f in unranked)
    return result
