"""Use cases against a real SQLite file: every transition, its guards, and what it writes."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot import services
from bot.domain import errors
from storage.db import Database, from_db
from tests.conftest import PEOPLE, file_one, local

TABLES = (
    "cases",
    "assignments",
    "answers",
    "questions",
    "extensions",
    "ratings",
    "events",
    "outbox",
    "processed_updates",
    "attachments",
)


async def counts(db: Database) -> dict[str, int]:
    """Rows per table, to prove that a refused action wrote nothing."""
    result = {}
    for table in TABLES:
        row = await db.fetch_one(f"SELECT count(*) FROM {table}")
        assert row is not None
        result[table] = row[0]
    return result


async def events_of(db: Database, number: str) -> list[str]:
    rows = await db.fetch_all(
        "SELECT e.kind FROM events e JOIN cases c ON c.id = e.case_id WHERE c.number = ?"
        " ORDER BY e.id",
        (number,),
    )
    return [r[0] for r in rows]


async def outbox_of(db: Database, number: str) -> list[tuple[str, str | None, str]]:
    rows = await db.fetch_all(
        "SELECT o.recipient_kind, o.recipient_ref, o.message_key FROM outbox o"
        " JOIN cases c ON c.id = o.case_id WHERE c.number = ? ORDER BY o.id",
        (number,),
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def state_of(db: Database, number: str) -> str:
    row = await db.fetch_one("SELECT state FROM cases WHERE number = ?", (number,))
    assert row is not None
    return row[0]


async def assigned(svc, track: str = "routine", unit: str = "ZJJ", co=()) -> str:
    number = await file_one(svc)
    await services.assign_case(svc, PEOPLE.dispatcher, number, unit, tuple(co), track=track)
    return number


async def in_progress(svc, track: str = "routine") -> str:
    number = await assigned(svc, track)
    await services.sign_assignment(svc, PEOPLE.housing, number)
    return number


async def test_filing_gives_a_numbered_case_an_event_and_two_messages(svc, db):
    number = await file_one(svc)
    assert number == "CZ2026-000001"
    assert await state_of(db, number) == "new"
    assert await events_of(db, number) == ["CaseFiled"]
    assert await outbox_of(db, number) == [
        ("user", str(PEOPLE.citizen), "citizen.case_filed"),
        ("dispatch", None, "card.desk"),
    ]


async def test_case_numbers_are_sequential_per_year_and_never_collide(svc, clock):
    numbers = await asyncio.gather(*(file_one(svc, 5000 + i) for i in range(30)))
    assert sorted(numbers) == [f"CZ2026-{i:06d}" for i in range(1, 31)]
    clock.set(local(2027, 1, 4, 10, 0))
    assert await file_one(svc) == "CZ2027-000001"


async def test_a_repeated_update_id_files_one_case_not_two(svc, db):
    await file_one(svc, update_id=77)
    before = await counts(db)
    with pytest.raises(errors.DuplicateUpdate):
        await file_one(svc, update_id=77)
    assert await counts(db) == before


async def test_filing_rejects_empty_huge_and_unknown_input_and_writes_nothing(svc, db):
    before = await counts(db)
    for kwargs, error in [
        ({"text": "   "}, errors.TextEmpty),
        ({"text": "长" * 2001}, errors.TextTooLong),
        ({"category": "nope"}, errors.UnknownCode),
        ({"district": "atlantis"}, errors.UnknownCode),
    ]:
        with pytest.raises(error) as caught:
            await file_one(svc, **kwargs)
        assert caught.value.key.startswith("error.")
    assert await counts(db) == before


async def test_a_citizen_may_file_five_cases_an_hour(svc, clock):
    for _ in range(5):
        await file_one(svc)
    with pytest.raises(errors.RateLimited):
        await file_one(svc)
    clock.advance(timedelta(hours=1, seconds=1))
    await file_one(svc)


async def test_assignment_computes_the_137_deadlines_in_working_time(svc, db):
    number = await assigned(svc)
    row = await db.fetch_one(
        "SELECT sign_due, reply_due, resolve_due FROM assignments a JOIN cases c"
        " ON c.id = a.case_id WHERE c.number = ?",
        (number,),
    )
    assert row is not None
    sign, reply, resolve = (from_db(v) for v in row)
    # Assigned Monday 2026-11-30 10:00: +1, +3, +7 working days.
    assert sign == local(2026, 12, 1, 10, 0)
    assert reply == local(2026, 12, 3, 10, 0)
    assert resolve == local(2026, 12, 9, 10, 0)
    assert await state_of(db, number) == "assigned"


async def test_special_track_deadline_in_hours_is_wall_clock(svc, db, clock):
    clock.set(local(2026, 11, 28, 22, 0))  # Saturday night
    number = await assigned(svc, "special")
    row = await db.fetch_one("SELECT sign_due FROM assignments ORDER BY id DESC LIMIT 1")
    assert row is not None
    assert from_db(row[0]) == local(2026, 11, 29, 0, 0)
    assert number


async def test_the_whole_routine_chain_ends_closed_and_satisfied(svc, db):
    number = await in_progress(svc)
    await services.post_answer(svc, PEOPLE.housing, number, "interim", "已联系物业，明日检修。")
    await services.ask_citizen(svc, PEOPLE.housing, number, "请问是几号楼几单元？")
    await services.answer_question(svc, PEOPLE.citizen, number, "3号楼2单元")
    await services.post_answer(svc, PEOPLE.housing, number, "final", "电梯已修复并通过检测。")
    assert await state_of(db, number) == "answered"  # the desk reviews routine answers
    await services.publish_answer(svc, PEOPLE.dispatcher, number)
    assert await state_of(db, number) == "replied"
    await services.rate_case(svc, PEOPLE.citizen, number, "satisfied")
    assert await state_of(db, number) == "closed"
    assert await events_of(db, number) == [
        "CaseFiled",
        "TrackSet",
        "CaseAssigned",
        "AssignmentSigned",
        "InterimAnswerPosted",
        "QuestionAsked",
        "QuestionAnswered",
        "FinalAnswerPosted",
        "AnswerPublished",
        "CaseRated",
        "CaseClosed",
    ]
    row = await db.fetch_one(
        "SELECT sign_on_time, reply_on_time, resolve_on_time, state FROM assignments"
    )
    assert row is not None and tuple(row) == (1, 1, 1, "reported")
    keys = [key for _, _, key in await outbox_of(db, number)]
    assert keys.count("citizen.final_answer") == 1
    assert "citizen.question" in keys and "unit.citizen_answer" in keys


async def test_review_track_waits_for_the_desk_and_send_back_returns_to_the_unit(svc, db):
    number = await in_progress(svc, "high_level")
    await services.post_answer(svc, PEOPLE.housing, number, "final", "已处理。")
    assert await state_of(db, number) == "answered"
    await services.send_back_answer(svc, PEOPLE.dispatcher, number, "请写明处理结果和时间。")
    assert await state_of(db, number) == "in_progress"
    await services.post_answer(svc, PEOPLE.housing, number, "final", "已于11月30日修复。")
    await services.publish_answer(svc, PEOPLE.dispatcher, number)
    assert await state_of(db, number) == "replied"
    keys = [k for _, _, k in await outbox_of(db, number)]
    assert "leaders.special_report" in keys
    assert keys.count("desk.review_request") == 2
    assert "unit.answer_sent_back" in keys


async def test_two_liaisons_signing_at_once_give_exactly_one_signature(svc, db):
    number = await assigned(svc)
    results = await asyncio.gather(
        services.sign_assignment(svc, PEOPLE.housing, number),
        services.sign_assignment(svc, PEOPLE.housing_2, number),
        return_exceptions=True,
    )
    assert sum(isinstance(r, errors.AlreadySigned) for r in results) == 1
    assert (await events_of(db, number)).count("AssignmentSigned") == 1


async def test_a_liaison_cannot_touch_another_units_case(svc, db):
    number = await assigned(svc)
    before = await counts(db)
    with pytest.raises(errors.NotYourCase):
        await services.sign_assignment(svc, PEOPLE.city, number)
    with pytest.raises(errors.NotAllowed):
        await services.sign_assignment(svc, PEOPLE.outsider, number)
    with pytest.raises(errors.NotAllowed):
        await services.sign_assignment(svc, PEOPLE.dispatcher, number)
    assert await counts(db) == before


async def test_a_removed_liaison_can_no_longer_act(svc):
    number = await assigned(svc)
    await services.remove_liaison(svc, PEOPLE.admin, "ZJJ", PEOPLE.housing)
    with pytest.raises(errors.NotAllowed):
        await services.sign_assignment(svc, PEOPLE.housing, number)


async def test_staff_actions_refuse_outsiders_without_revealing_the_case(svc):
    number = await file_one(svc)
    for target in (number, "CZ2026-999999"):
        with pytest.raises(errors.NotAllowed):
            await services.assign_case(svc, PEOPLE.outsider, target, "ZJJ", track="routine")
        with pytest.raises(errors.NotAllowed):
            await services.view_case(svc, PEOPLE.citizen, target)


async def test_a_citizen_cannot_rate_or_see_another_citizens_case(svc, db):
    number = await in_progress(svc)
    await services.post_answer(svc, PEOPLE.housing, number, "final", "已修复。")
    await services.publish_answer(svc, PEOPLE.dispatcher, number)
    before = await counts(db)
    with pytest.raises(errors.CaseNotFound):
        await services.rate_case(svc, PEOPLE.other_citizen, number, "satisfied")
    with pytest.raises(errors.CaseNotFound):
        await services.view_own_case(svc, PEOPLE.other_citizen, number)
    assert await counts(db) == before
    assert (await services.view_own_case(svc, PEOPLE.citizen, number)).number == number


async def test_assigning_needs_a_track_a_known_active_unit_and_the_new_state(svc, db):
    number = await file_one(svc)
    with pytest.raises(errors.TrackNotSet):
        await services.assign_case(svc, PEOPLE.dispatcher, number, "ZJJ")
    with pytest.raises(errors.UnknownCode):
        await services.assign_case(svc, PEOPLE.dispatcher, number, "NOPE", track="routine")
    async with db.unit_of_work() as uow:
        await uow.execute("UPDATE units SET is_active = 0 WHERE code = 'JYJ'")
        await uow.commit()
    with pytest.raises(errors.UnitDisabled):
        await services.assign_case(svc, PEOPLE.dispatcher, number, "JYJ", track="routine")
    with pytest.raises(errors.CoUnitsNeedCoordinatedTrack):
        await services.assign_case(svc, PEOPLE.dispatcher, number, "ZJJ", ("CGJ",), track="routine")
    assert await state_of(db, number) == "new"
    await services.assign_case(svc, PEOPLE.dispatcher, number, "ZJJ", track="routine")
    with pytest.raises(errors.IllegalTransition):
        await services.assign_case(svc, PEOPLE.dispatcher, number, "CGJ")


async def test_reject_and_duplicate_tell_the_citizen_why(svc, db):
    original = await file_one(svc)
    copy = await file_one(svc)
    with pytest.raises(errors.CaseNotFound):
        await services.reject_case(
            svc, PEOPLE.dispatcher, copy, "duplicate", duplicate_of="CZ2026-424242"
        )
    await services.reject_case(svc, PEOPLE.dispatcher, copy, "duplicate", duplicate_of=original)
    assert await state_of(db, copy) == "rejected"
    row = await db.fetch_one(
        "SELECT params FROM outbox WHERE message_key = 'citizen.case_rejected'"
    )
    assert row is not None and json.loads(row[0])["duplicate_of"] == original
    third = await file_one(svc)
    with pytest.raises(errors.UnknownCode):
        await services.reject_case(svc, PEOPLE.dispatcher, third, "boring")
    await services.reject_case(svc, PEOPLE.dispatcher, third, "out_of_scope", "属于司法程序")


async def test_return_then_unfounded_ruling_sends_it_back_and_forbids_a_second_return(svc, db):
    number = await assigned(svc)
    await services.return_assignment(svc, PEOPLE.housing, number, "duty", "应由物业公司负责")
    assert await state_of(db, number) == "new"
    await services.rule_return(svc, PEOPLE.dispatcher, number, "ZJJ", note="属于住建职责")
    assert await state_of(db, number) == "assigned"
    with pytest.raises(errors.ReturnNotAllowed):
        await services.return_assignment(svc, PEOPLE.housing, number, "duty", "again")
    row = await db.fetch_one("SELECT assigned_at, sign_due FROM assignments")
    assert row is not None
    # The clock still runs from the original assignment.
    assert from_db(row[1]) == local(2026, 12, 1, 10, 0)


async def test_return_and_reassign_moves_the_case_to_another_unit(svc, db):
    number = await assigned(svc, unit="CGJ")
    await services.return_assignment(svc, PEOPLE.city, number, "district", "属琅琊区管辖")
    await services.rule_return(svc, PEOPLE.dispatcher, number, "CGJ", reassign_to="LYQ")
    assert await state_of(db, number) == "assigned"
    await services.sign_assignment(svc, PEOPLE.langya, number)
    with pytest.raises(errors.NotYourCase):
        await services.sign_assignment(svc, PEOPLE.city, number)
    rows = await db.fetch_all("SELECT unit_code, state FROM assignments ORDER BY id")
    assert [tuple(r) for r in rows] == [("CGJ", "withdrawn"), ("LYQ", "signed")]


async def test_too_many_returns_go_to_the_supervisor(svc, db):
    number = await assigned(svc, unit="CGJ")
    await services.return_assignment(svc, PEOPLE.city, number, "district", "不属我局")
    await services.rule_return(svc, PEOPLE.dispatcher, number, "CGJ", reassign_to="ZJJ")
    await services.return_assignment(svc, PEOPLE.housing, number, "ownership", "权属不清")
    keys = [k for _, _, k in await outbox_of(db, number)]
    assert "supervision.escalation" in keys
    assert (await events_of(db, number)).count("CaseEscalated") == 1


async def test_extension_approve_moves_the_deadline_and_tells_the_citizen(svc, db):
    number = await in_progress(svc)
    new_due = local(2026, 12, 15, 17, 30)
    await services.request_extension(svc, PEOPLE.housing, number, new_due, "需要更换主板")
    with pytest.raises(errors.ExtensionPending):
        await services.request_extension(svc, PEOPLE.housing, number, new_due, "again")
    await services.decide_extension(svc, PEOPLE.dispatcher, number, approve=True)
    row = await db.fetch_one("SELECT resolve_due FROM assignments")
    assert row is not None and from_db(row[0]) == new_due
    keys = [k for _, _, k in await outbox_of(db, number)]
    assert "citizen.extension" in keys and "desk.extension_request" in keys


async def test_extension_past_the_cap_is_refused_and_deny_keeps_the_deadline(svc, db):
    number = await in_progress(svc)
    before = await counts(db)
    with pytest.raises(errors.ExtensionPastCap):
        await services.request_extension(
            svc, PEOPLE.housing, number, local(2027, 1, 30, 17, 0), "太久了"
        )
    assert await counts(db) == before
    await services.request_extension(
        svc, PEOPLE.housing, number, local(2026, 12, 14, 12, 0), "需要协调"
    )
    await services.decide_extension(svc, PEOPLE.dispatcher, number, approve=False)
    row = await db.fetch_one("SELECT resolve_due FROM assignments")
    assert row is not None and from_db(row[0]) == local(2026, 12, 9, 10, 0)


async def test_coordinated_case_waits_for_co_units_unless_the_desk_waives(svc, db):
    number = await file_one(svc)
    await services.assign_case(
        svc, PEOPLE.dispatcher, number, "ZJJ", ("CGJ", "LYQ"), track="coordinated"
    )
    for liaison in (PEOPLE.housing, PEOPLE.city, PEOPLE.langya):
        await services.sign_assignment(svc, liaison, number)
    await services.post_answer(svc, PEOPLE.city, number, "input", "城管已清理占道。")
    with pytest.raises(errors.CoUnitsNotReported):
        await services.post_answer(svc, PEOPLE.housing, number, "final", "已办结。")
    with pytest.raises(errors.NotAllowed):
        await services.post_answer(svc, PEOPLE.langya, number, "final", "我来办结")
    await services.waive_co_unit_input(svc, PEOPLE.dispatcher, number)
    await services.post_answer(svc, PEOPLE.housing, number, "final", "已办结。")
    assert await state_of(db, number) == "answered"
    recipients = await outbox_of(db, number)
    assert ("unit", "ZJJ", "unit.co_unit_input") in recipients


async def test_unsatisfied_reopens_to_the_same_unit_then_goes_to_the_desk(svc, db):
    number = await in_progress(svc)
    for expected_state in ("in_progress", "new"):
        await services.post_answer(svc, PEOPLE.housing, number, "final", "已处理。")
        await services.publish_answer(svc, PEOPLE.dispatcher, number)
        await services.rate_case(svc, PEOPLE.citizen, number, "unsatisfied", "电梯还是坏的")
        assert await state_of(db, number) == expected_state
    kinds = await events_of(db, number)
    assert kinds.count("CaseReopened") == 1 and kinds.count("ReopenedToDesk") == 1
    row = await db.fetch_one("SELECT round FROM cases")
    assert row is not None and row[0] == 3


async def test_appeal_of_an_unsatisfied_rating_is_ruled_by_a_supervisor(svc, db):
    number = await in_progress(svc)
    await services.post_answer(svc, PEOPLE.housing, number, "final", "已处理。")
    await services.publish_answer(svc, PEOPLE.dispatcher, number)
    await services.rate_case(svc, PEOPLE.citizen, number, "unsatisfied", "要求赔偿十万元")
    await services.appeal_rating(svc, PEOPLE.housing, number, "诉求超出法律规定")
    with pytest.raises(errors.NotAllowed):
        await services.rule_appeal(svc, PEOPLE.dispatcher, number, accept=True)
    await services.rule_appeal(svc, PEOPLE.supervisor, number, accept=True)
    row = await db.fetch_one("SELECT rating, appeal FROM ratings")
    assert row is not None and tuple(row) == ("unsatisfied", "approved")


async def test_question_pauses_the_resolve_clock_until_the_citizen_answers(svc, db, clock):
    number = await in_progress(svc)
    await services.ask_citizen(svc, PEOPLE.housing, number, "请提供照片")
    clock.advance(timedelta(days=1))  # Tuesday 10:00: 8.5 working hours paused
    await services.answer_question(svc, PEOPLE.citizen, number, "已发送")
    row = await db.fetch_one("SELECT resolve_due, paused_at FROM assignments")
    assert row is not None
    assert from_db(row[0]) == local(2026, 12, 10, 10, 0)
    assert row[1] is None
    with pytest.raises(errors.NoOpenQuestion):
        await services.answer_question(svc, PEOPLE.citizen, number, "再补充")


async def test_late_signing_is_stored_as_late(svc, db, clock):
    number = await assigned(svc)
    clock.advance(timedelta(days=2))
    await services.sign_assignment(svc, PEOPLE.housing, number)
    row = await db.fetch_one("SELECT sign_on_time FROM assignments")
    assert row is not None and row[0] == 0


async def test_leader_instruction_reaches_every_handling_unit(svc, db):
    number = await file_one(svc)
    await services.assign_case(svc, PEOPLE.dispatcher, number, "ZJJ", ("CGJ",), track="coordinated")
    with pytest.raises(errors.NotAllowed):
        await services.instruct_case(svc, PEOPLE.dispatcher, number, "尽快办理")
    await services.instruct_case(svc, PEOPLE.leader, number, "请两单位联合办理，本周内办结。")
    recipients = [(ref, key) for kind, ref, key in await outbox_of(db, number) if kind == "unit"]
    assert ("ZJJ", "unit.leader_instruction") in recipients
    assert ("CGJ", "unit.leader_instruction") in recipients


async def test_staff_close_reopen_note_escalate_and_contact(svc, db):
    number = await in_progress(svc)
    await services.add_note(svc, PEOPLE.supervisor, number, "已电话督促")
    await services.escalate_case(svc, PEOPLE.supervisor, number, "supervision")
    with pytest.raises(errors.UnknownCode):
        await services.escalate_case(svc, PEOPLE.supervisor, number, "mars")
    await services.contact_citizen(svc, PEOPLE.dispatcher, number, "您好，请问问题解决了吗？")
    await services.answer_question(svc, PEOPLE.citizen, number, "还没有")
    await services.close_case(svc, PEOPLE.dispatcher, number, "网民撤回诉求")
    assert await state_of(db, number) == "closed"
    with pytest.raises(errors.IllegalTransition):
        await services.close_case(svc, PEOPLE.dispatcher, number, "again")
    await services.reopen_case(svc, PEOPLE.dispatcher, number, "网民再次反映")
    assert await state_of(db, number) == "in_progress"
    keys = [k for _, _, k in await outbox_of(db, number)]
    assert "desk.citizen_answer" in keys and "citizen.contact" in keys


async def test_callback_reminder_once_then_closed_as_not_rated(svc, db):
    number = await in_progress(svc)
    await services.post_answer(svc, PEOPLE.housing, number, "final", "已修复。")
    await services.publish_answer(svc, PEOPLE.dispatcher, number)
    await services.remind_callback(svc, number)
    with pytest.raises(errors.IllegalTransition):
        await services.remind_callback(svc, number)
    await services.close_not_rated(svc, number)
    row = await db.fetch_one(
        "SELECT c.state, c.close_reason, r.rating FROM cases c JOIN ratings r ON r.case_id = c.id"
    )
    assert row is not None and tuple(row) == ("closed", "not_rated", "not_rated")


async def test_events_are_append_only(svc, db):
    await file_one(svc)
    async with db.unit_of_work() as uow:
        with pytest.raises(Exception, match="append-only"):
            await uow.execute("UPDATE events SET kind = 'x'")
        with pytest.raises(Exception, match="append-only"):
            await uow.execute("DELETE FROM events")


async def test_every_outbox_row_belongs_to_an_event_of_its_case(svc, db):
    await test_the_whole_routine_chain_ends_closed_and_satisfied(svc, db)
    orphans = await db.fetch_one(
        "SELECT count(*) FROM outbox o LEFT JOIN events e ON e.id = o.event_id"
        " WHERE e.id IS NULL OR e.case_id != o.case_id"
    )
    assert orphans is not None and orphans[0] == 0


async def test_errors_reach_the_desk_at_most_once_a_minute_per_kind(svc, db, clock):
    assert await services.report_error(svc, 41, ValueError("boom: 13800138000"))
    assert not await services.report_error(svc, 42, ValueError("again"))
    assert await services.report_error(svc, 43, KeyError("x"))
    clock.advance(timedelta(minutes=1))
    assert await services.report_error(svc, 44, ValueError("later"))
    rows = await db.fetch_all("SELECT params FROM outbox WHERE message_key = 'desk.error'")
    params = [json.loads(r[0]) for r in rows]
    assert params == [{"update_id": 41, "error": "ValueError"},
                      {"update_id": 43, "error": "KeyError"},
                      {"update_id": 44, "error": "ValueError"}]
