"""Use cases. Each is one transaction: state change + events + the outbox rows they cause.

Every function checks who may act (`bot.domain.permissions`) before it changes anything,
raises a named domain error that the handlers translate, and treats a repeated Telegram
update id as already done.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.clock import Clock
from bot.collector import cycle_collector_paused
from bot.domain import errors
from bot.domain.case import Actor, Case, Event, RejectReason, Role, check_text
from bot.domain.chasing import Chaser
from bot.domain.notifications import OutboxMessage, chasing_messages, messages_for
from bot.domain.permissions import ALLOWED, Action, staff_role_for
from bot.domain.policy import Policy
from storage import chasing as chasing_store
from storage import directory
from storage.cases import load_case, mark_update_processed, next_case_number, save_case
from storage.db import Database, UnitOfWork, to_db
from storage.directory import Profile
from storage.outbox import claim_once, enqueue

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Services:
    """What every use case needs; one instance lives in the application's bot_data."""

    db: Database
    policy: Policy
    clock: Clock
    admins: tuple[int, ...] = ()


@dataclass(frozen=True)
class Attachment:
    """A file a citizen or unit sent with a message (Telegram file ids, never bytes)."""

    kind: str
    file_id: str
    file_unique_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The attachment as stored inside an answer."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


async def _persist(uow: UnitOfWork, case: Case, now: datetime) -> None:
    now_db = to_db(now)
    assert now_db is not None
    for event_id, event in await save_case(uow, case, now_db):
        await enqueue(uow, messages_for(case, event), now_db, case_id=case.id, event_id=event_id)


async def _authorize(
    svc: Services,
    uow: UnitOfWork,
    user_id: int | None,
    action: Action,
    case: Case | None,
    unit_code: str | None,
) -> Actor:
    """The actor for `user_id` taking `action` on `case`, or a domain error."""
    allowed = ALLOWED[action]
    if Role.CITIZEN in allowed:
        if case is None or user_id != case.citizen_id:
            # A citizen never learns whether someone else's case exists.
            raise errors.CaseNotFound(case.number if case else "", case=case.number if case else "")
        return Actor(user_id, Role.CITIZEN)
    if Role.LIAISON in allowed:
        units = await directory.units_of(uow, user_id)
        if not units:
            raise errors.NotAllowed(action.value, action=action.value)
        if case is None:
            raise errors.CaseNotFound("", case="")
        candidates = units & {
            a.unit_code
            for a in case.assignments
            if a.round == case.round and a.state != "withdrawn"
        }
        if unit_code is not None:
            candidates &= {unit_code}
        if len(candidates) != 1:
            raise errors.NotYourCase(case.number, case=case.number)
        return Actor(user_id, Role.LIAISON, next(iter(candidates)))
    roles = await directory.roles_of(uow, user_id)
    role = staff_role_for(action, roles)
    if role is None:
        raise errors.NotAllowed(action.value, action=action.value)
    return Actor(user_id, role)


async def _act(
    svc: Services,
    *,
    user_id: int | None,
    action: Action,
    number: str,
    change: Callable[[Case, Actor, datetime], T],
    update_id: int | None = None,
    unit_code: str | None = None,
    units: tuple[str, ...] = (),
) -> tuple[Case, T]:
    """Load the case, check the actor, apply `change`, persist — in one transaction,
    run on the writer thread in one hop (the domain is pure, so it may run there too).

    `units` are units the change hands the case to: they must exist and be active.
    """
    now = svc.clock.now()

    async def transaction(uow: UnitOfWork) -> tuple[Case, Actor, T]:
        await mark_update_processed(uow, update_id, to_db(now) or 0)
        if Role.CITIZEN not in ALLOWED[action] and Role.LIAISON not in ALLOWED[action]:
            # Staff actions: refuse non-staff before looking the case up, so a refusal
            # says nothing about whether the case exists.
            await _authorize(svc, uow, user_id, action, None, None)
        case = await load_case(uow, number=number)
        actor = await _authorize(svc, uow, user_id, action, case, unit_code)
        await _require_active_units(uow, units)
        result = change(case, actor, now)
        await _persist(uow, case, now)
        await uow.commit()
        return case, actor, result

    case, actor, result = await svc.db.run(transaction)
    logger.info("case %s: %s by %s", case.number, action.value, actor.role.value)
    return case, result


# -- the citizen ---------------------------------------------------------------------------


async def file_case(
    svc: Services,
    citizen: Profile,
    *,
    category: str,
    district: str,
    text: str,
    location: tuple[float, float] | None = None,
    contact_shared: bool = False,
    phone: str | None = None,
    attachments: tuple[Attachment, ...] = (),
    update_id: int | None = None,
) -> Case:
    """A citizen files a message. Only after this returns may the citizen hear "filed as …"."""
    policy = svc.policy
    now = svc.clock.now()
    now_db = to_db(now)
    assert now_db is not None
    if len(attachments) > policy.limits.attachments_max:
        raise errors.InvalidInput(
            "attachments", field="attachments", limit=policy.limits.attachments_max
        )

    async def transaction(uow: UnitOfWork) -> tuple[Case, bool]:
        await mark_update_processed(uow, update_id, now_db)
        # The same text again is one matter, not a new case (nor a filing the limit counts).
        repeated = await _repeat_of(uow, policy, citizen.user_id, text, now_db)
        if repeated is not None:
            return await _link_repeat(uow, repeated, attachments, now), True
        since = now_db - 3_600_000_000
        recent = await uow.fetch_one(
            "SELECT count(*) FROM cases WHERE citizen_id = ? AND filed_at > ?",
            (citizen.user_id, since),
        )
        if recent is not None and recent[0] >= policy.limits.filings_per_hour:
            raise errors.RateLimited(str(citizen.user_id), limit=policy.limits.filings_per_hour)
        await directory.upsert_user(uow, citizen, now_db)
        if contact_shared and phone:
            await uow.execute("UPDATE users SET phone = ? WHERE id = ?", (phone, citizen.user_id))
        year = now.astimezone(policy.calendar.tz).year
        number = await next_case_number(uow, policy.case_prefix, year)
        case = Case.file(
            number=number,
            citizen_id=citizen.user_id,
            category=category,
            district=district,
            text=text,
            now=now,
            policy=policy,
            location=location,
            contact_shared=contact_shared,
        )
        await _persist(uow, case, now)
        await _insert_attachments(uow, case.id, attachments, now_db)
        await uow.commit()
        return case, False

    # One hop to the writer thread for the whole filing; returns after the commit.
    case, is_repeat = await svc.db.run(transaction)
    if is_repeat:
        logger.info("case %s: repeat filing linked (update %s)", case.number, update_id)
    else:
        logger.info("case %s: filed (update %s)", case.number, update_id)
    return case


async def _repeat_of(
    uow: UnitOfWork, policy: Policy, citizen_id: int, text: str, now_db: int
) -> int | None:
    """The id of this citizen's case with the very same text within the repeat window."""
    window = policy.limits.repeat_window_hours
    if not window:
        return None
    row = await uow.fetch_one(
        "SELECT id FROM cases WHERE citizen_id = ? AND text = ? AND filed_at > ?"
        " ORDER BY id LIMIT 1",
        (citizen_id, text.strip(), now_db - window * 3_600_000_000),
    )
    return int(row[0]) if row is not None else None


async def _link_repeat(
    uow: UnitOfWork, case_id: int, attachments: tuple[Attachment, ...], now: datetime
) -> Case:
    """Note the repeat on the first case (and keep any new files there); file nothing."""
    original = await load_case(uow, case_id=case_id)
    original.record_repeat(now, attachments=len(attachments))
    await _persist(uow, original, now)
    await _insert_attachments(uow, original.id, attachments, to_db(now) or 0)
    await uow.commit()
    return original


async def _insert_attachments(
    uow: UnitOfWork, case_id: int | None, attachments: tuple[Attachment, ...], now_db: int
) -> None:
    if not attachments:
        return
    await uow.execute_many(
        "INSERT INTO attachments(case_id, kind, file_id, file_unique_id, file_name,"
        " mime_type, size, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (case_id, a.kind, a.file_id, a.file_unique_id, a.file_name, a.mime_type, a.size,
             now_db)
            for a in attachments
        ],
    )


async def rate_case(
    svc: Services,
    citizen_id: int,
    number: str,
    rating: str,
    comment: str | None = None,
    *,
    update_id: int | None = None,
) -> Case:
    """The citizen rates the published answer (满意 / 基本满意 / 不满意 + comment)."""
    case, _ = await _act(
        svc,
        user_id=citizen_id,
        action=Action.RATE,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.rate(citizen_id, rating, now, svc.policy, comment),
    )
    return case


async def answer_question(
    svc: Services, citizen_id: int, number: str, text: str, *, update_id: int | None = None
) -> Case:
    """The citizen answers a unit's (or staff's) question through the bot."""
    case, _ = await _act(
        svc,
        user_id=citizen_id,
        action=Action.ANSWER_QUESTION,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.answer_question(citizen_id, text, now, svc.policy),
    )
    return case


async def view_own_case(svc: Services, citizen_id: int, number: str) -> Case:
    """A citizen's own case (CaseNotFound for anyone else's, without saying it exists)."""
    async with svc.db.unit_of_work() as uow:
        try:
            case = await load_case(uow, number=number)
        except errors.CaseNotFound:
            raise errors.CaseNotFound(number, case=number) from None
        await _authorize(svc, uow, citizen_id, Action.VIEW_OWN_CASE, case, None)
    return case


# -- the dispatch desk ---------------------------------------------------------------------


async def set_track(
    svc: Services, user_id: int, number: str, track: str, *, update_id: int | None = None
) -> Case:
    """The desk puts a case on one of the four tracks."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.SET_TRACK,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.set_track(track, a, now, svc.policy),
    )
    return case


async def _require_active_units(uow: UnitOfWork, codes: tuple[str, ...]) -> None:
    for code in codes:
        active = await directory.unit_is_active(uow, code)
        if active is None:
            raise errors.UnknownCode(code, kind="unit", code=code)
        if not active:
            raise errors.UnitDisabled(code, unit=code)


async def assign_case(
    svc: Services,
    user_id: int,
    number: str,
    lead_unit: str,
    co_units: tuple[str, ...] = (),
    *,
    track: str | None = None,
    update_id: int | None = None,
) -> Case:
    """The desk assigns a lead unit (and co-units on the coordinated track).

    Also used to reassign a case a unit returned: the returned assignment is withdrawn.
    """

    def change(case: Case, actor: Actor, now: datetime) -> None:
        if track is not None:
            case.set_track(track, actor, now, svc.policy)
        case.assign(lead_unit, actor, now, svc.policy, co_units)

    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.ASSIGN,
        number=number,
        update_id=update_id,
        units=(lead_unit, *co_units),
        change=change,
    )
    return case


async def reject_case(
    svc: Services,
    user_id: int,
    number: str,
    reason: str,
    note: str | None = None,
    *,
    duplicate_of: str | None = None,
    update_id: int | None = None,
) -> Case:
    """The desk rejects a message (invalid, duplicate of another case, out of scope)."""
    now = svc.clock.now()
    async with svc.db.unit_of_work() as uow:
        await mark_update_processed(uow, update_id, to_db(now) or 0)
        await _authorize(svc, uow, user_id, Action.REJECT, None, None)
        case = await load_case(uow, number=number)
        actor = await _authorize(svc, uow, user_id, Action.REJECT, case, None)
        original = None
        if reason == RejectReason.DUPLICATE.value:
            if not duplicate_of:
                raise errors.InvalidInput("duplicate_of", field="duplicate_of")
            original = (await load_case(uow, number=duplicate_of)).number
        case.reject(reason, actor, now, note, original, svc.policy.limits.note_max)
        await _persist(uow, case, now)
        await uow.commit()
    return case


async def rule_return(
    svc: Services,
    user_id: int,
    number: str,
    unit_code: str,
    *,
    reassign_to: str | None = None,
    note: str | None = None,
    update_id: int | None = None,
) -> Case:
    """The desk rules on a return: reassign to another unit, or unfounded (审定)."""

    def change(case: Case, actor: Actor, now: datetime) -> None:
        if reassign_to is None:
            case.rule_return_unfounded(unit_code, actor, now, note)
            return
        returned = case.assignment_of(unit_code)
        if returned.state != "returned":
            raise errors.IllegalTransition(
                "rule_return", case=case.number, state=returned.state.value, action="rule_return"
            )
        if returned.role.value == "lead":
            case.assign(reassign_to, actor, now, svc.policy)
        else:
            case.reassign_co_unit(unit_code, reassign_to, actor, now, svc.policy)

    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.RULE_RETURN,
        number=number,
        update_id=update_id,
        units=(reassign_to,) if reassign_to else (),
        change=change,
    )
    return case


async def decide_extension(
    svc: Services, user_id: int, number: str, approve: bool, *, update_id: int | None = None
) -> Case:
    """The desk approves or denies a unit's extension request."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.DECIDE_EXTENSION,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.decide_extension(approve, a, now),
    )
    return case


async def publish_answer(
    svc: Services, user_id: int, number: str, *, update_id: int | None = None
) -> Case:
    """The desk publishes a reviewed final answer to the citizen."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.REVIEW,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.publish(a, now, svc.policy),
    )
    return case


async def send_back_answer(
    svc: Services, user_id: int, number: str, comment: str, *, update_id: int | None = None
) -> Case:
    """The desk sends a final answer back to the unit with a comment."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.REVIEW,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.send_back(comment, a, now, svc.policy),
    )
    return case


async def waive_co_unit_input(
    svc: Services, user_id: int, number: str, *, update_id: int | None = None
) -> Case:
    """The desk lets the lead unit answer before every co-unit has reported."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.WAIVE_CO_INPUT,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.waive_co_unit_input(a, now),
    )
    return case


async def add_co_unit(
    svc: Services, user_id: int, number: str, unit_code: str, *, update_id: int | None = None
) -> Case:
    """The desk adds a co-unit to a coordinated case."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.ASSIGN,
        number=number,
        update_id=update_id,
        units=(unit_code,),
        change=lambda c, a, now: c.add_co_unit(unit_code, a, now, svc.policy),
    )
    return case


async def reassign_case(
    svc: Services, user_id: int, number: str, unit_code: str, *, update_id: int | None = None
) -> Case:
    """The desk moves a case to another unit: a returned one by ruling, an active one anew."""

    def change(case: Case, actor: Actor, now: datetime) -> None:
        if case.state == "new":
            case.assign(unit_code, actor, now, svc.policy)
        else:
            case.reassign(unit_code, actor, now, svc.policy)

    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.ASSIGN,
        number=number,
        update_id=update_id,
        units=(unit_code,),
        change=change,
    )
    return case


async def extend_deadline(
    svc: Services,
    user_id: int,
    number: str,
    new_due: datetime,
    reason: str,
    *,
    update_id: int | None = None,
) -> Case:
    """The desk moves the resolve deadline itself (the citizen is told why)."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.DECIDE_EXTENSION,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.grant_extension(new_due, reason, a, now, svc.policy),
    )
    return case


# -- the units -------------------------------------------------------------------------------


async def sign_assignment(
    svc: Services,
    user_id: int,
    number: str,
    *,
    unit_code: str | None = None,
    update_id: int | None = None,
) -> Case:
    """A liaison signs for their unit's assignment (签收); a second signature is refused."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.SIGN,
        number=number,
        update_id=update_id,
        unit_code=unit_code,
        change=lambda c, a, now: c.sign(a.unit_code or "", a, now),
    )
    return case


async def return_assignment(
    svc: Services,
    user_id: int,
    number: str,
    reason: str,
    note: str,
    *,
    unit_code: str | None = None,
    update_id: int | None = None,
) -> Case:
    """A liaison returns an unsigned assignment to the desk with a coded reason (退回)."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.RETURN,
        number=number,
        update_id=update_id,
        unit_code=unit_code,
        change=lambda c, a, now: c.return_to_desk(
            a.unit_code or "", reason, note, a, now, svc.policy
        ),
    )
    return case


async def request_extension(
    svc: Services,
    user_id: int,
    number: str,
    new_due: datetime,
    reason: str,
    *,
    unit_code: str | None = None,
    update_id: int | None = None,
) -> Case:
    """The lead unit asks the desk to move its resolve deadline (申请延期)."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.REQUEST_EXTENSION,
        number=number,
        update_id=update_id,
        unit_code=unit_code,
        change=lambda c, a, now: c.request_extension(
            a.unit_code or "", new_due, reason, a, now, svc.policy
        ),
    )
    return case


def _answer_change(
    svc: Services, kind: str, text: str, attachments: tuple[Attachment, ...]
) -> Callable[[Case, Actor, datetime], Any]:
    files = [a.as_dict() for a in attachments]

    def change(case: Case, actor: Actor, now: datetime) -> Any:
        unit = actor.unit_code or ""
        if kind == "interim":
            return case.post_interim_answer(unit, text, actor, now, svc.policy, files)
        if kind == "input":
            return case.post_co_unit_input(unit, text, actor, now, svc.policy, files)
        return case.post_final_answer(unit, text, actor, now, svc.policy, files)

    return change


async def post_answer(
    svc: Services,
    user_id: int,
    number: str,
    kind: str,
    text: str,
    *,
    attachments: tuple[Attachment, ...] = (),
    unit_code: str | None = None,
    update_id: int | None = None,
) -> Case:
    """A unit posts an interim answer, a final answer, or (co-unit) its input to the lead."""
    if kind not in ("interim", "final", "input"):
        raise errors.UnknownCode(kind, kind="answer_kind", code=kind)
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.ANSWER,
        number=number,
        update_id=update_id,
        unit_code=unit_code,
        change=_answer_change(svc, kind, text, attachments),
    )
    return case


async def ask_citizen(
    svc: Services,
    user_id: int,
    number: str,
    text: str,
    *,
    unit_code: str | None = None,
    update_id: int | None = None,
) -> Case:
    """A unit asks the citizen a question through the bot (询问网民)."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.ASK_CITIZEN,
        number=number,
        update_id=update_id,
        unit_code=unit_code,
        change=lambda c, a, now: c.ask_citizen(text, a, now, svc.policy, unit_code=a.unit_code),
    )
    return case


async def appeal_rating(
    svc: Services,
    user_id: int,
    number: str,
    reason: str,
    *,
    unit_code: str | None = None,
    update_id: int | None = None,
) -> Case:
    """The unit appeals an unsatisfied rating as caused by objective limits (申请核减)."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.APPEAL,
        number=number,
        update_id=update_id,
        unit_code=unit_code,
        change=lambda c, a, now: c.appeal_rating(a.unit_code or "", reason, a, now, svc.policy),
    )
    return case


# -- supervisors, leaders, all staff -------------------------------------------------------


async def rule_appeal(
    svc: Services, user_id: int, number: str, accept: bool, *, update_id: int | None = None
) -> Case:
    """A supervisor accepts or rejects a unit's appeal of an unsatisfied rating."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.RULE_APPEAL,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.rule_appeal(accept, a, now),
    )
    return case


async def escalate_case(
    svc: Services,
    user_id: int,
    number: str,
    level: str,
    reason: str = "manual",
    *,
    update_id: int | None = None,
) -> Case:
    """Staff escalate a case to the supervision or the leaders' group (督办)."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.ESCALATE,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.escalate(level, reason, a, now),
    )
    return case


async def instruct_case(
    svc: Services, user_id: int, number: str, text: str, *, update_id: int | None = None
) -> Case:
    """A leader writes an instruction (批示); it is pushed to the handling units."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.INSTRUCT,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.instruct(text, a, now, svc.policy),
    )
    return case


async def add_note(
    svc: Services, user_id: int, number: str, text: str, *, update_id: int | None = None
) -> Case:
    """A staff member adds an internal note to the case's timeline."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.NOTE,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.add_note(text, a, now, svc.policy),
    )
    return case


async def contact_citizen(
    svc: Services, user_id: int, number: str, text: str, *, update_id: int | None = None
) -> Case:
    """Staff relay a message to the citizen without either side seeing the other (联系回访)."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.CONTACT_CITIZEN,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.ask_citizen(text, a, now, svc.policy),
    )
    return case


async def close_case(
    svc: Services, user_id: int, number: str, reason: str, *, update_id: int | None = None
) -> Case:
    """The desk closes an open case by hand, with a reason."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.CLOSE,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.close(reason, a, now, svc.policy),
    )
    return case


async def reopen_case(
    svc: Services, user_id: int, number: str, reason: str, *, update_id: int | None = None
) -> Case:
    """The desk reopens a closed case to its last lead unit for another round."""
    case, _ = await _act(
        svc,
        user_id=user_id,
        action=Action.REOPEN,
        number=number,
        update_id=update_id,
        change=lambda c, a, now: c.reopen(a, now, svc.policy, reason),
    )
    return case


async def view_case(svc: Services, user_id: int, number: str) -> Case:
    """The full staff view of a case (non-staff are refused before the lookup)."""
    async with svc.db.unit_of_work() as uow:
        await _authorize(svc, uow, user_id, Action.VIEW_CASE, None, None)
        return await load_case(uow, number=number)


# -- automatic steps (scheduler) ----------------------------------------------------------


async def _system(svc: Services, number: str, change: Callable[[Case, datetime], Any]) -> Case:
    now = svc.clock.now()
    async with svc.db.unit_of_work() as uow:
        case = await load_case(uow, number=number)
        change(case, now)
        await _persist(uow, case, now)
        await uow.commit()
    return case


async def chase_due(svc: Services, limit: int = 500) -> int:
    """The deadline sweep: take every chasing step due now; returns how many were taken.

    Deadlines are data: the index says which assignments need a look. One transaction
    (one hop to the writer, one fsync) reads the due assignments with only what planning
    needs, plans each in the pure domain, and writes only what changed — fired keys and
    next checks, escalation levels, one event per step and its outbox rows — a statement
    per table. Reading inside the writer's transaction is what keeps two sweeps close
    together from taking a step twice; a step's key stored with its event keeps restarts
    and a clock jumping backwards from repeating it. A case that fails to plan is logged
    and skipped (it stays due) without stopping the sweep.
    """
    now = svc.clock.now()
    chaser = Chaser(svc.policy, now)

    async def transaction(uow: UnitOfWork) -> tuple[int, int]:
        due = await chasing_store.due_for_chasing(uow, now, limit)
        checked: list[tuple[int, int | None, list[str] | None]] = []
        escalated: dict[int, str] = {}
        events: list[tuple[int, Event, list[OutboxMessage]]] = []
        for case, assignments in due:
            try:
                outcomes = [(a.id, chaser.chase(a, case)) for a in assignments]
            except Exception:
                logger.exception("deadline sweep: case %s skipped", case.number)
                continue
            units: list[str] | None = None
            for assignment_id, outcome in outcomes:
                checked.append((assignment_id, outcome.next_check, outcome.fired))
                for event in outcome.events:
                    if event.kind == "CaseEscalated":
                        escalated[case.id] = event.details["level"]
                        if units is None:  # rare: the whole case, for its active units
                            units = (await load_case(uow, case_id=case.id)).handling_units
                    events.append((case.id, event, chasing_messages(case, event, units or [])))
        await chasing_store.record_chase(
            uow, chasing_store.ChaseRecord(checked, escalated, events), now
        )
        await uow.commit()
        return len(events), len(checked)

    # A thousand assignments with their events and messages, all alive until the commit.
    with cycle_collector_paused():
        taken, looked_at = await svc.db.run(transaction)
    if taken:
        logger.info("deadline sweep: %d step(s) over %d assignment(s)", taken, looked_at)
    return taken


async def sweep_callbacks(svc: Services) -> tuple[int, int]:
    """The callback sweep: remind citizens who have not rated, close expired windows.

    Returns (reminded, closed).
    """
    policy = svc.policy
    now = svc.clock.now()
    # The reminder is due `close - reminder` before the window closes.
    lead = policy.callback.close_after - policy.callback.reminder_after
    rows = await svc.db.fetch_all(
        "SELECT number, callback_due, callback_reminded FROM cases"
        " WHERE callback_due IS NOT NULL AND callback_due <= ? AND state = 'replied'"
        " ORDER BY callback_due LIMIT 1000",
        (to_db(now + lead),),
    )
    reminded = closed = 0
    for number, due, was_reminded in rows:
        try:
            if due <= (to_db(now) or 0):
                await close_not_rated(svc, number)
                closed += 1
            elif not was_reminded:
                await remind_callback(svc, number)
                reminded += 1
        except errors.IllegalTransition:
            continue  # rated or reminded meanwhile
    return reminded, closed


async def remind_callback(svc: Services, number: str) -> Case:
    """Remind the citizen once to rate the answer."""
    return await _system(svc, number, lambda c, now: c.remind_callback(now))


async def close_not_rated(svc: Services, number: str) -> Case:
    """Close a case whose callback window ended without a rating."""
    return await _system(svc, number, lambda c, now: c.close_not_rated(now))


# -- administration ------------------------------------------------------------------------


async def setup_policy_units(svc: Services) -> int:
    """Create the policy's units in the database (at start); returns how many were new."""
    now_db = to_db(svc.clock.now()) or 0
    async with svc.db.unit_of_work() as uow:
        created = await directory.sync_policy_units(
            uow,
            [(u.code, u.name, u.parent) for u in svc.policy.units.values()],
            now_db,
        )
        for admin in svc.admins:
            await directory.grant_role(uow, admin, Role.ADMIN.value, None, now_db)
        await uow.commit()
    return created


STAFF_ROLES = (Role.ADMIN, Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER)


def _check_role(role: str) -> None:
    """A staff role name, or UnknownCode."""
    if role not in STAFF_ROLES:
        raise errors.UnknownCode(role, kind="role", code=role)


async def _manage(
    svc: Services,
    user_id: int | None,
    system: bool,
    body: Callable[[UnitOfWork], Coroutine[Any, Any, T]],
) -> T:
    """An admin action in one transaction (the CLI acts as the system, unchecked)."""
    async with svc.db.unit_of_work() as uow:
        if not system:
            await _authorize(svc, uow, user_id, Action.MANAGE, None, None)
        result = await body(uow)
        await uow.commit()
    return result


async def grant_role(
    svc: Services, user_id: int | None, target: int, role: str, *, system: bool = False
) -> bool:
    """An admin gives a staff role (the CLI acts as the system)."""
    _check_role(role)
    now_db = to_db(svc.clock.now()) or 0
    return await _manage(
        svc, user_id, system, lambda uow: directory.grant_role(uow, target, role, user_id, now_db)
    )


async def add_liaison(
    svc: Services, user_id: int | None, unit_code: str, target: int, *, system: bool = False
) -> bool:
    """An admin makes a user a liaison of a unit."""
    now_db = to_db(svc.clock.now()) or 0

    async def body(uow: UnitOfWork) -> bool:
        if await directory.unit_is_active(uow, unit_code) is None:
            raise errors.UnknownCode(unit_code, kind="unit", code=unit_code)
        return await directory.add_liaison(uow, unit_code, target, user_id, now_db)

    return await _manage(svc, user_id, system, body)


async def remove_liaison(
    svc: Services, user_id: int | None, unit_code: str, target: int, *, system: bool = False
) -> bool:
    """An admin removes a liaison; their old buttons stop working at once."""
    return await _manage(
        svc, user_id, system, lambda uow: directory.remove_liaison(uow, unit_code, target)
    )


async def bind_chat(
    svc: Services,
    user_id: int | None,
    chat_id: int,
    purpose: str,
    *,
    unit_code: str | None = None,
    title: str | None = None,
    system: bool = False,
) -> str:
    """An admin binds a group chat to the dispatch desk, supervision, leaders or a unit.

    Returns the binding name. A chat plays one part only, and a part has one chat:
    binding a chat that already plays another part is refused.
    """
    if purpose not in ("dispatch", "supervision", "leaders", "unit"):
        raise errors.UnknownCode(purpose, kind="binding", code=purpose)
    if (purpose == "unit") != (unit_code is not None):
        raise errors.InvalidInput("unit_code", field="unit_code")
    binding = f"unit:{unit_code}" if unit_code else purpose
    now_db = to_db(svc.clock.now()) or 0
    async with svc.db.unit_of_work() as uow:
        if not system:
            await _authorize(svc, uow, user_id, Action.MANAGE, None, None)
        if unit_code is not None and await directory.unit_is_active(uow, unit_code) is None:
            raise errors.UnknownCode(unit_code, kind="unit", code=unit_code)
        existing = await uow.fetch_one(
            "SELECT binding FROM chat_bindings WHERE chat_id = ?", (chat_id,)
        )
        if existing is not None and existing[0] != binding:
            raise errors.ChatAlreadyBound(str(chat_id), binding=existing[0])
        await uow.execute(
            "INSERT INTO chat_bindings(binding, chat_id, purpose, unit_code, title, bound_by,"
            " bound_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(binding) DO UPDATE SET chat_id = excluded.chat_id,"
            " title = excluded.title, bound_by = excluded.bound_by,"
            " bound_at = excluded.bound_at, is_reachable = 1",
            (binding, chat_id, purpose, unit_code, title, user_id, now_db),
        )
        # Messages that waited for this group can go now.
        await uow.execute(
            "UPDATE outbox SET next_attempt_at = ? WHERE state = 'pending'"
            " AND recipient_kind = ? AND recipient_ref IS ?",
            (now_db, purpose, unit_code),
        )
        await uow.commit()
    logger.info("chat %s bound as %s", chat_id, binding)
    return binding


async def revoke_role(
    svc: Services, user_id: int | None, target: int, role: str, *, system: bool = False
) -> bool:
    """An admin takes a staff role away."""
    _check_role(role)
    return await _manage(svc, user_id, system, lambda uow: directory.revoke_role(uow, target, role))


@dataclass(frozen=True)
class UnitRow:
    """A unit as admins see it."""

    code: str
    name: str
    parent: str | None
    is_active: bool
    liaisons: int
    bound: bool


async def list_units(svc: Services, user_id: int) -> list[UnitRow]:
    """Every unit with its liaison count and whether its group is bound (staff only)."""
    async with svc.db.unit_of_work() as uow:
        await _authorize(svc, uow, user_id, Action.VIEW_CASE, None, None)
        rows = await uow.fetch_all(
            "SELECT u.code, u.name, u.parent_code, u.is_active,"
            " (SELECT count(*) FROM liaisons l WHERE l.unit_code = u.code),"
            " EXISTS (SELECT 1 FROM chat_bindings b WHERE b.unit_code = u.code)"
            " FROM units u ORDER BY u.code"
        )
    return [UnitRow(r[0], r[1], r[2], bool(r[3]), r[4], bool(r[5])) for r in rows]


_UNIT_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


async def save_unit(
    svc: Services,
    user_id: int | None,
    code: str,
    name: str,
    parent: str | None = None,
    *,
    create: bool,
    system: bool = False,
) -> None:
    """An admin adds a unit, or renames one."""
    if not _UNIT_CODE.match(code):
        raise errors.InvalidInput("code", field="code")
    cleaned = check_text(name, limit=100, field_name="name")
    now_db = to_db(svc.clock.now()) or 0
    async with svc.db.unit_of_work() as uow:
        if not system:
            await _authorize(svc, uow, user_id, Action.MANAGE, None, None)
        exists = await directory.unit_is_active(uow, code) is not None
        if parent is not None and await directory.unit_is_active(uow, parent) is None:
            raise errors.UnknownCode(parent, kind="unit", code=parent)
        if create and exists:
            raise errors.InvalidInput("code", field="code", code=code)
        if not create and not exists:
            raise errors.UnknownCode(code, kind="unit", code=code)
        if create:
            await uow.execute(
                "INSERT INTO units(code, name, parent_code, created_at) VALUES (?, ?, ?, ?)",
                (code, cleaned, parent, now_db),
            )
        else:
            await uow.execute(
                "UPDATE units SET name = ?, parent_code = coalesce(?, parent_code) WHERE code = ?",
                (cleaned, parent, code),
            )
        await uow.commit()


async def set_unit_active(
    svc: Services, user_id: int | None, code: str, active: bool, *, system: bool = False
) -> None:
    """An admin disables a unit (no new assignments) or enables it again."""

    async def body(uow: UnitOfWork) -> None:
        if await directory.unit_is_active(uow, code) is None:
            raise errors.UnknownCode(code, kind="unit", code=code)
        await uow.execute("UPDATE units SET is_active = ? WHERE code = ?", (int(active), code))

    await _manage(svc, user_id, system, body)


JOIN_CODE_LIFETIME = timedelta(days=7)


async def issue_join_code(svc: Services, user_id: int, unit_code: str) -> str:
    """Staff issue a one-time code a liaison redeems in the unit's group with /join CODE."""
    now = svc.clock.now()
    code = secrets.token_hex(4).upper()
    async with svc.db.unit_of_work() as uow:
        await _authorize(svc, uow, user_id, Action.ISSUE_JOIN_CODE, None, None)
        if await directory.unit_is_active(uow, unit_code) is None:
            raise errors.UnknownCode(unit_code, kind="unit", code=unit_code)
        await uow.execute(
            "INSERT INTO join_codes(code, unit_code, issued_by, issued_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (code, unit_code, user_id, to_db(now), to_db(now + JOIN_CODE_LIFETIME)),
        )
        await uow.commit()
    return code


async def redeem_join_code(svc: Services, user: Profile, code: str, chat_id: int) -> str:
    """A liaison redeems a join code inside their unit's bound group; returns the unit code.

    The code works once, before it expires, and only in the group bound to its unit, so a
    leaked code is useless elsewhere.
    """
    now_db = to_db(svc.clock.now()) or 0
    async with svc.db.unit_of_work() as uow:
        row = await uow.fetch_one(
            "SELECT unit_code FROM join_codes WHERE code = ? AND redeemed_by IS NULL"
            " AND expires_at > ?",
            (code.strip().upper(), now_db),
        )
        if row is None:
            raise errors.InvalidInput("code", field="code")
        unit_code = str(row[0])
        bound = await uow.fetch_one(
            "SELECT 1 FROM chat_bindings WHERE binding = ? AND chat_id = ?",
            (f"unit:{unit_code}", chat_id),
        )
        if bound is None:
            raise errors.NotAllowed("join", unit=unit_code)
        await directory.upsert_user(uow, user, now_db)
        await directory.add_liaison(uow, unit_code, user.user_id, None, now_db)
        await uow.execute(
            "UPDATE join_codes SET redeemed_by = ?, redeemed_at = ? WHERE code = ?",
            (user.user_id, now_db, code.strip().upper()),
        )
        await uow.commit()
    return unit_code


async def staff_roles(svc: Services, user_id: int | None) -> frozenset[str]:
    """The staff roles a person holds (for showing menus; services still check each action)."""
    return await directory.roles_of(svc.db, user_id)


async def liaison_units(svc: Services, user_id: int | None) -> frozenset[str]:
    """The active units a person is a liaison of."""
    return await directory.units_of(svc.db, user_id)


async def binding_of(svc: Services, chat_id: int) -> tuple[str, str | None] | None:
    """(purpose, unit code) of a bound group chat, or None."""
    row = await svc.db.fetch_one(
        "SELECT purpose, unit_code FROM chat_bindings WHERE chat_id = ?", (chat_id,)
    )
    return (str(row[0]), row[1]) if row else None


async def find_user(svc: Services, reference: str) -> int | None:
    """A user id from a numeric id or a known @username."""
    reference = reference.strip()
    if reference.lstrip("-").isdigit():
        return int(reference)
    row = await svc.db.fetch_one(
        "SELECT id FROM users WHERE lower(username) = lower(?)", (reference.lstrip("@"),)
    )
    return int(row[0]) if row else None


async def warn_if_calendar_missing(svc: Services) -> bool:
    """From 1 December, tell the desk once a day that next year's official schedule is
    missing from the policy (deadlines would fall back to an approximation)."""
    calendar = svc.policy.calendar
    now = svc.clock.now()
    today = now.astimezone(calendar.tz).date()
    if not calendar.next_year_schedule_missing(today):
        return False
    year = today.year + (1 if calendar.schedule_source(today.year) != "fallback" else 0)
    now_db = to_db(now) or 0

    async def transaction(uow: UnitOfWork) -> bool:
        key = f"calendar-warning:{today.isoformat()}"
        if not await claim_once(uow, key, now_db, in_order=True):
            return False
        await enqueue(
            uow, [OutboxMessage("dispatch", None, "desk.calendar_missing", {"year": year})], now_db
        )
        await uow.commit()
        return True

    warned = await svc.db.run(transaction)
    if warned:
        logger.warning("the official schedule for %s is missing from the policy", year)
    return warned


async def report_error(svc: Services, update_id: int | None, error: BaseException) -> bool:
    """Tell the dispatch desk that an update failed (at most once a minute per error type).

    Only the update id and the error's type go out: no user text, no identities.
    """
    now = svc.clock.now()
    now_db = to_db(now) or 0
    kind = type(error).__name__
    minute = now.strftime("%Y%m%d%H%M")

    async def transaction(uow: UnitOfWork) -> bool:
        if not await claim_once(uow, f"error:{kind}:{minute}", now_db):
            return False
        await enqueue(
            uow,
            [
                OutboxMessage(
                    "dispatch", None, "desk.error", {"update_id": update_id, "error": kind}
                )
            ],
            now_db,
        )
        await uow.commit()
        return True

    return await svc.db.run(transaction)
