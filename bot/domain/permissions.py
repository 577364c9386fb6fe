"""Who may do what: one table, checked in the service layer for every action.

Staff roles are data in the database; `liaison` means "liaison of the unit the case is
assigned to" and `citizen` means "the citizen who filed the case" — both relations that
the service checks against the case itself.
"""

from __future__ import annotations

from enum import StrEnum

from bot.domain.case import Role


class Action(StrEnum):
    """Every action a person can take on the system."""

    SET_TRACK = "set_track"
    ASSIGN = "assign"
    REJECT = "reject"
    RULE_RETURN = "rule_return"
    WAIVE_CO_INPUT = "waive_co_input"
    DECIDE_EXTENSION = "decide_extension"
    REVIEW = "review"  # publish or send back
    SIGN = "sign"
    RETURN = "return"
    REQUEST_EXTENSION = "request_extension"
    ANSWER = "answer"  # interim, final, co-unit input
    ASK_CITIZEN = "ask_citizen"
    APPEAL = "appeal"
    RATE = "rate"
    ANSWER_QUESTION = "answer_question"
    VIEW_OWN_CASE = "view_own_case"
    RULE_APPEAL = "rule_appeal"
    ESCALATE = "escalate"
    INSTRUCT = "instruct"
    NOTE = "note"
    CONTACT_CITIZEN = "contact_citizen"
    CLOSE = "close"
    REOPEN = "reopen"
    VIEW_CASE = "view_case"  # the full staff view, with identities
    REPORT = "report"
    MANAGE = "manage"  # units, staff, bindings, liaisons
    ISSUE_JOIN_CODE = "issue_join_code"


_DESK = frozenset({Role.DISPATCHER, Role.ADMIN})
_STAFF = frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER, Role.ADMIN})
_UNIT = frozenset({Role.LIAISON})
_OWNER = frozenset({Role.CITIZEN})

ALLOWED: dict[Action, frozenset[Role]] = {
    Action.SET_TRACK: _DESK,
    Action.ASSIGN: _DESK,
    Action.REJECT: _DESK,
    Action.RULE_RETURN: _DESK,
    Action.WAIVE_CO_INPUT: _DESK,
    Action.DECIDE_EXTENSION: _DESK,
    Action.REVIEW: _DESK,
    Action.SIGN: _UNIT,
    Action.RETURN: _UNIT,
    Action.REQUEST_EXTENSION: _UNIT,
    Action.ANSWER: _UNIT,
    Action.ASK_CITIZEN: _UNIT,
    Action.APPEAL: _UNIT,
    Action.RATE: _OWNER,
    Action.ANSWER_QUESTION: _OWNER,
    Action.VIEW_OWN_CASE: _OWNER,
    Action.RULE_APPEAL: frozenset({Role.SUPERVISOR, Role.ADMIN}),
    Action.ESCALATE: frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    Action.INSTRUCT: frozenset({Role.LEADER}),
    Action.NOTE: _STAFF,
    Action.CONTACT_CITIZEN: frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    Action.CLOSE: _DESK,
    Action.REOPEN: _DESK,
    Action.VIEW_CASE: _STAFF,
    Action.REPORT: _STAFF,
    Action.MANAGE: frozenset({Role.ADMIN}),
    Action.ISSUE_JOIN_CODE: _DESK,
}


def staff_role_for(action: Action, roles: frozenset[str]) -> Role | None:
    """The staff role under which a person with `roles` may take `action`, if any.

    The most specific role wins (a dispatcher who is also admin acts as dispatcher), so
    the timeline shows the capacity in which a person acted.
    """
    allowed = ALLOWED[action]
    for role in (Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER, Role.ADMIN):
        if role in allowed and role.value in roles:
            return role
    return None
