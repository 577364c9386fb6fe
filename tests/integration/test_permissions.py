"""The permission matrix: every action × every role. Allowed cells succeed; every other
cell is refused with a domain error and changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from bot import services as s
from bot.domain import errors
from bot.domain.case import Role
from bot.domain.permissions import ALLOWED, Action
from tests.conftest import PEOPLE, file_one, local
from tests.integration.test_services import counts

ROLES = {
    "owner": PEOPLE.citizen,
    "other citizen": PEOPLE.other_citizen,
    "outsider": PEOPLE.outsider,
    "liaison": PEOPLE.housing,
    "other liaison": PEOPLE.city,
    "dispatcher": PEOPLE.dispatcher,
    "supervisor": PEOPLE.supervisor,
    "leader": PEOPLE.leader,
    "admin": PEOPLE.admin,
}
ROLE_OF = {"owner": Role.CITIZEN, "liaison": Role.LIAISON, "dispatcher": Role.DISPATCHER,
           "supervisor": Role.SUPERVISOR, "leader": Role.LEADER, "admin": Role.ADMIN}

D = PEOPLE.dispatcher


async def new(svc) -> str:
    return await file_one(svc)


async def tracked(svc) -> str:
    number = await file_one(svc)
    await s.set_track(svc, D, number, "routine")
    return number


async def assigned(svc) -> str:
    number = await tracked(svc)
    await s.assign_case(svc, D, number, "ZJJ")
    return number


async def signed(svc) -> str:
    number = await assigned(svc)
    await s.sign_assignment(svc, PEOPLE.housing, number)
    return number


async def returned(svc) -> str:
    number = await assigned(svc)
    await s.return_assignment(svc, PEOPLE.housing, number, "duty", "不属本单位")
    return number


async def extension_asked(svc) -> str:
    number = await signed(svc)
    await s.request_extension(svc, PEOPLE.housing, number, local(2026, 12, 18, 17, 30), "协调")
    return number


async def answered(svc) -> str:
    number = await signed(svc)
    await s.waive_co_unit_input(svc, D, number)
    await s.post_answer(svc, PEOPLE.housing, number, "final", "已办结")
    return number


async def replied(svc) -> str:
    number = await answered(svc)
    await s.publish_answer(svc, D, number)
    return number


async def asked(svc) -> str:
    number = await signed(svc)
    await s.ask_citizen(svc, PEOPLE.housing, number, "请问具体位置？")
    return number


async def unsatisfied(svc) -> str:
    number = await replied(svc)
    await s.rate_case(svc, PEOPLE.citizen, number, "unsatisfied", "未解决")
    return number


async def appealed(svc) -> str:
    number = await unsatisfied(svc)
    await s.appeal_rating(svc, PEOPLE.housing, number, "诉求超出政策")
    return number


async def closed(svc) -> str:
    number = await signed(svc)
    await s.close_case(svc, D, number, "网民撤回")
    return number


Call = Callable[[s.Services, int, str], Awaitable[object]]
CELLS: dict[Action, tuple[Callable[[s.Services], Awaitable[str]], Call]] = {
    Action.SET_TRACK: (new, lambda v, u, n: s.set_track(v, u, n, "special")),
    Action.ASSIGN: (tracked, lambda v, u, n: s.assign_case(v, u, n, "ZJJ")),
    Action.REJECT: (new, lambda v, u, n: s.reject_case(v, u, n, "invalid", "无法核实")),
    Action.RULE_RETURN: (returned, lambda v, u, n: s.rule_return(v, u, n, "ZJJ")),
    Action.WAIVE_CO_INPUT: (signed, lambda v, u, n: s.waive_co_unit_input(v, u, n)),
    Action.DECIDE_EXTENSION: (extension_asked, lambda v, u, n: s.decide_extension(v, u, n, True)),
    Action.REVIEW: (answered, lambda v, u, n: s.publish_answer(v, u, n)),
    Action.SIGN: (assigned, lambda v, u, n: s.sign_assignment(v, u, n)),
    Action.RETURN: (assigned, lambda v, u, n: s.return_assignment(v, u, n, "duty", "不属")),
    Action.REQUEST_EXTENSION: (signed, lambda v, u, n: s.request_extension(
        v, u, n, local(2026, 12, 18, 17, 30), "需要协调")),
    Action.ANSWER: (signed, lambda v, u, n: s.post_answer(v, u, n, "interim", "正在处理")),
    Action.ASK_CITIZEN: (signed, lambda v, u, n: s.ask_citizen(v, u, n, "请补充材料")),
    Action.APPEAL: (unsatisfied, lambda v, u, n: s.appeal_rating(v, u, n, "客观原因")),
    Action.RATE: (replied, lambda v, u, n: s.rate_case(v, u, n, "satisfied")),
    Action.ANSWER_QUESTION: (asked, lambda v, u, n: s.answer_question(v, u, n, "东门")),
    Action.VIEW_OWN_CASE: (new, lambda v, u, n: s.view_own_case(v, u, n)),
    Action.RULE_APPEAL: (appealed, lambda v, u, n: s.rule_appeal(v, u, n, True)),
    Action.ESCALATE: (signed, lambda v, u, n: s.escalate_case(v, u, n, "supervision")),
    Action.INSTRUCT: (signed, lambda v, u, n: s.instruct_case(v, u, n, "请抓紧办理")),
    Action.NOTE: (signed, lambda v, u, n: s.add_note(v, u, n, "已电话督促")),
    Action.CONTACT_CITIZEN: (signed, lambda v, u, n: s.contact_citizen(v, u, n, "您好")),
    Action.CLOSE: (signed, lambda v, u, n: s.close_case(v, u, n, "网民撤回")),
    Action.REOPEN: (closed, lambda v, u, n: s.reopen_case(v, u, n, "再次反映")),
    Action.VIEW_CASE: (new, lambda v, u, n: s.view_case(v, u, n)),
    Action.MANAGE: (new, lambda v, u, n: s.grant_role(v, u, PEOPLE.outsider, "leader")),
    Action.ISSUE_JOIN_CODE: (new, lambda v, u, n: s.issue_join_code(v, u, "ZJJ")),
}


def test_every_action_of_the_table_is_exercised():
    assert set(CELLS) | {Action.REPORT} == set(Action)


def allowed(action: Action, role: str) -> bool:
    mapped = ROLE_OF.get(role)
    return mapped is not None and mapped in ALLOWED[action]


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("action", list(CELLS), ids=lambda a: a.value)
async def test_permission_cell(svc, db, clock, action: Action, role: str):
    setup, call = CELLS[action]
    number = await setup(svc)
    clock.advance(timedelta(minutes=5))
    before = await counts(db)
    if allowed(action, role):
        await call(svc, ROLES[role], number)
        return
    with pytest.raises((errors.NotAllowed, errors.CaseNotFound)):
        await call(svc, ROLES[role], number)
    assert await counts(db) == before


async def test_outsiders_learn_nothing_about_whether_a_case_exists(svc):
    number = await file_one(svc)
    for target in (number, "CZ2026-999999"):
        for call in (lambda n: s.view_case(svc, PEOPLE.outsider, n),
                     lambda n: s.view_own_case(svc, PEOPLE.outsider, n),
                     lambda n: s.close_case(svc, PEOPLE.outsider, n, "x")):
            with pytest.raises(errors.DomainError) as caught:
                await call(target)
            assert type(caught.value) in (errors.NotAllowed, errors.CaseNotFound)
    # The same refusal for an existing and a missing case:
    refusals = []
    for target in (number, "CZ2026-999999"):
        with pytest.raises(errors.DomainError) as caught:
            await s.view_own_case(svc, PEOPLE.outsider, target)
        refusals.append(type(caught.value))
    assert refusals[0] == refusals[1]
