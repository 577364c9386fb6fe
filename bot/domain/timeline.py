"""Replaying a case's timeline: the state its events say it must be in.

The health check (`wenzheng doctor`) and the tests compare this with the stored state,
so a bug that changes a state without its event cannot hide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.domain.case import CaseState

_ALWAYS: dict[str, CaseState] = {
    "CaseFiled": CaseState.NEW,
    "CaseAssigned": CaseState.ASSIGNED,
    "CaseReassigned": CaseState.ASSIGNED,
    "CaseRejected": CaseState.REJECTED,
    "FinalAnswerPosted": CaseState.ANSWERED,
    "AnswerPublished": CaseState.REPLIED,
    "AnswerSentBack": CaseState.IN_PROGRESS,
    "CaseClosed": CaseState.CLOSED,
    "CaseReopened": CaseState.IN_PROGRESS,
    "ReopenedToDesk": CaseState.NEW,
}

# Events that move the case only when they concern the lead unit.
_LEAD_ONLY: dict[str, CaseState] = {
    "AssignmentReturned": CaseState.NEW,
    "ReturnRuledUnfounded": CaseState.ASSIGNED,
}


def state_after(events: Iterable[tuple[str, dict[str, Any]]]) -> CaseState | None:
    """The state a case must be in after these (kind, details) events, oldest first."""
    state: CaseState | None = None
    for kind, details in events:
        if kind in _ALWAYS:
            state = _ALWAYS[kind]
        elif kind in _LEAD_ONLY and details.get("role") == "lead":
            state = _LEAD_ONLY[kind]
        elif (
            kind == "AssignmentSigned"
            and details.get("role") == "lead"
            and state == CaseState.ASSIGNED
        ):
            state = CaseState.IN_PROGRESS
    return state
