"""The §6 definitions on hand-computed examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.metrics import (
    CaseFact,
    Outcome,
    Rate,
    RatingFact,
    StageFact,
    UnitFigures,
    on_time_rate,
    rank_units,
    received,
    reply_rate,
    satisfaction_rate,
    stage_outcome,
    unit_score,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=1)


def test_stage_outcomes():
    assert stage_outcome(NOW, NOW, False, NOW) == Outcome.ON_TIME
    assert stage_outcome(PAST, NOW, False, NOW) == Outcome.LATE
    assert stage_outcome(PAST, None, False, NOW) == Outcome.MISSED
    assert stage_outcome(FUTURE, None, False, NOW) == Outcome.PENDING
    assert stage_outcome(PAST, None, True, NOW) == Outcome.EXCLUDED
    assert stage_outcome(None, None, False, NOW) is None


def test_a_unit_that_never_signs_does_not_look_punctual():
    stages = [
        StageFact("A", "U", "sign", FUTURE, NOW),  # on time
        StageFact("B", "U", "sign", PAST, NOW),  # late
        StageFact("C", "U", "sign", PAST, None),  # never signed, overdue: counts
        StageFact("D", "U", "sign", FUTURE, None),  # still pending: not yet counted
        StageFact("E", "U", "sign", PAST, None, withdrawn=True),  # replaced: excluded
    ]
    rate = on_time_rate(stages, NOW)
    assert (rate.numerator, rate.denominator) == (1, 3)
    assert rate.counted == ("A",) and rate.behind == ("A", "B", "C")
    assert rate.value == 1 / 3


def test_reply_rate_counts_accepted_cases_only():
    cases = [
        CaseFact("A", rejected=False, has_published_answer=True),
        CaseFact("B", rejected=False, has_published_answer=False),
        CaseFact("C", rejected=True, has_published_answer=False),
        CaseFact("D", rejected=False, has_published_answer=True),
    ]
    assert received(cases) == (3, 1)
    rate = reply_rate(cases)
    assert (rate.numerator, rate.denominator, rate.counted) == (2, 3, ("A", "D"))


def test_satisfaction_excludes_not_rated_and_accepted_appeals():
    ratings = [
        RatingFact("A", "satisfied"),
        RatingFact("B", "basically_satisfied"),
        RatingFact("C", "unsatisfied"),
        RatingFact("D", "unsatisfied", appeal_accepted=True),
        RatingFact("E", "not_rated"),
    ]
    rate = satisfaction_rate(ratings)
    assert (rate.numerator, rate.denominator) == (2, 3)
    assert Rate(0, 0).value is None


def figures(code: str, cases: int, reply: tuple[int, int], on_time: tuple[int, int],
            sat: tuple[int, int]) -> UnitFigures:
    return UnitFigures(code, cases, Rate(*reply), Rate(*on_time), Rate(*sat))


def test_unit_score_is_the_weighted_mix_of_the_rates_it_has():
    weights = {"reply_rate": 0.3, "on_time_rate": 0.3, "satisfaction_rate": 0.4}
    assert unit_score(figures("A", 10, (10, 10), (8, 10), (3, 4)), weights) == (
        0.3 * 1.0 + 0.3 * 0.8 + 0.4 * 0.75
    )
    # No ratings yet: the other two weights are rescaled.
    assert unit_score(figures("B", 10, (5, 10), (10, 10), (0, 0)), weights) == (
        (0.3 * 0.5 + 0.3 * 1.0) / 0.6
    )


def test_ranking_orders_by_score_shares_ties_and_lists_small_units_unranked():
    weights = {"reply_rate": 1.0}
    ranked = rank_units(
        [
            figures("LOW", 10, (5, 10), (0, 0), (0, 0)),
            figures("TOP", 10, (10, 10), (0, 0), (0, 0)),
            figures("TIE", 10, (10, 10), (0, 0), (0, 0)),
            figures("TINY", 2, (2, 2), (0, 0), (0, 0)),
        ],
        weights,
        min_cases=5,
    )
    assert [(r.figures.unit_code, r.place) for r in ranked] == [
        ("TIE", 1), ("TOP", 1), ("LOW", 3), ("TINY", None)
    ]
