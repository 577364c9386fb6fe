"""Random sequences of use cases never reach an illegal state, lose an event, or leave
the outbox out of step with the events — and the report SQL agrees with the §6 functions."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import services
from bot.clock import FrozenClock
from bot.config import EXAMPLE_POLICY, load_policy
from bot.domain import errors
from bot.domain.case import CaseState
from bot.domain.metrics import on_time_rate, reply_rate, satisfaction_rate
from bot.domain.timeline import state_after
from storage.db import Database, to_db
from storage.reports import period_facts, unit_counts
from tests.conftest import PEOPLE, local
from tests.integration.test_services import TABLES, counts

POLICY = load_policy(EXAMPLE_POLICY)
LIAISONS = {"ZJJ": PEOPLE.housing, "CGJ": PEOPLE.city, "LYQ": PEOPLE.langya,
            "ZLSGS": PEOPLE.water}
ANYONE = [PEOPLE.dispatcher, PEOPLE.supervisor, PEOPLE.leader, PEOPLE.housing, PEOPLE.city,
          PEOPLE.langya, PEOPLE.citizen, PEOPLE.other_citizen, PEOPLE.outsider]

OPERATIONS = [
    "file", "assign", "assign_coordinated", "reject", "sign", "return", "rule_unfounded",
    "reassign", "interim", "input", "final", "publish", "send_back", "rate_good", "rate_bad",
    "ask", "answer", "extend", "decide", "appeal", "rule_appeal", "close", "reopen",
    "remind", "close_not_rated", "wait",
]

# Messages every event kind must cause at least one of (NoteAdded is timeline-only).
SILENT_KINDS = {"NoteAdded"}


async def run_operation(svc: services.Services, op: str, case: str | None, who: int,
                        pick: int) -> None:
    units = list(LIAISONS)
    unit = units[pick % len(units)]
    liaison = LIAISONS[unit] if pick % 3 else who
    if op == "file" or case is None:
        await services.file_case(
            svc, services.Profile(PEOPLE.citizen + pick % 2),
            category="housing", district="langya", text=f"第{pick}号反映：路灯不亮，请维修。",
        )
        return
    if op == "wait":
        svc.clock.advance(timedelta(hours=pick * 7 + 1))  # type: ignore[attr-defined]
        return
    desk = PEOPLE.dispatcher if pick % 4 else who
    citizen = PEOPLE.citizen if pick % 5 else who
    calls = {
        "assign": lambda: services.assign_case(svc, desk, case, unit, track="routine"),
        "assign_coordinated": lambda: services.assign_case(
            svc, desk, case, unit, tuple(u for u in units if u != unit)[:2], track="coordinated"
        ),
        "reject": lambda: services.reject_case(svc, desk, case, "invalid", "内容无法核实"),
        "sign": lambda: services.sign_assignment(svc, liaison, case),
        "return": lambda: services.return_assignment(svc, liaison, case, "duty", "非本单位职责"),
        "rule_unfounded": lambda: services.rule_return(svc, desk, case, unit),
        "reassign": lambda: services.rule_return(svc, desk, case, unit, reassign_to="ZJJ"),
        "interim": lambda: services.post_answer(svc, liaison, case, "interim", "正在处理"),
        "input": lambda: services.post_answer(svc, liaison, case, "input", "协办意见"),
        "final": lambda: services.post_answer(svc, liaison, case, "final", "已处理完毕"),
        "publish": lambda: services.publish_answer(svc, desk, case),
        "send_back": lambda: services.send_back_answer(svc, desk, case, "请补充"),
        "rate_good": lambda: services.rate_case(svc, citizen, case, "satisfied"),
        "rate_bad": lambda: services.rate_case(svc, citizen, case, "unsatisfied", "没解决"),
        "ask": lambda: services.ask_citizen(svc, liaison, case, "请问具体位置？"),
        "answer": lambda: services.answer_question(svc, citizen, case, "小区东门"),
        "extend": lambda: services.request_extension(
            svc, liaison, case, svc.clock.now() + timedelta(days=pick % 20 + 1), "需要时间"
        ),
        "decide": lambda: services.decide_extension(svc, desk, case, approve=bool(pick % 2)),
        "appeal": lambda: services.appeal_rating(svc, liaison, case, "诉求不合理"),
        "rule_appeal": lambda: services.rule_appeal(svc, PEOPLE.supervisor, case, bool(pick % 2)),
        "close": lambda: services.close_case(svc, desk, case, "网民撤回"),
        "reopen": lambda: services.reopen_case(svc, desk, case, "再次反映"),
        "remind": lambda: services.remind_callback(svc, case),
        "close_not_rated": lambda: services.close_not_rated(svc, case),
    }
    await calls[op]()


async def check_invariants(db: Database) -> None:
    for case in await db.fetch_all("SELECT id, number, state, round FROM cases"):
        events = [
            (r[0], json.loads(r[1]))
            for r in await db.fetch_all(
                "SELECT kind, details FROM events WHERE case_id = ? ORDER BY id", (case[0],)
            )
        ]
        assert events and events[0][0] == "CaseFiled"
        assert state_after(events) == CaseState(case[2]), (case[1], events)
        active = await db.fetch_all(
            "SELECT role, state FROM assignments WHERE case_id = ? AND round = ?"
            " AND state IN ('assigned', 'signed', 'returned')",
            (case[0], case[3]),
        )
        leads = [r for r in active if r[0] == "lead"]
        state = CaseState(case[2])
        if state in (CaseState.ASSIGNED, CaseState.IN_PROGRESS, CaseState.ANSWERED):
            assert len(leads) == 1, (case[1], state, [tuple(r) for r in active])
        if state == CaseState.IN_PROGRESS:
            assert leads[0][1] == "signed"
        if state in (CaseState.CLOSED, CaseState.REJECTED, CaseState.REPLIED):
            assert not leads
        pending = await db.fetch_one(
            "SELECT count(*) FROM answers WHERE case_id = ? AND state = 'pending_review'",
            (case[0],),
        )
        assert pending is not None and pending[0] == (1 if state == CaseState.ANSWERED else 0)
    orphans = await db.fetch_one(
        "SELECT count(*) FROM outbox o LEFT JOIN events e ON e.id = o.event_id"
        " WHERE e.id IS NULL OR e.case_id IS NOT o.case_id"
    )
    assert orphans is not None and orphans[0] == 0
    silent = await db.fetch_all(
        "SELECT e.kind FROM events e WHERE NOT EXISTS"
        " (SELECT 1 FROM outbox o WHERE o.event_id = e.id)"
    )
    assert {r[0] for r in silent} <= SILENT_KINDS


async def run_sequence(steps: list[tuple[str, int, int, int]]) -> Counter[str]:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(Path(folder) / "p.db", synchronous="OFF")
        await db.connect()
        clock = FrozenClock(local(2026, 11, 30, 10, 0))
        svc = services.Services(db=db, policy=POLICY, clock=clock, admins=(PEOPLE.admin,))
        await services.setup_policy_units(svc)
        for user, role in [(PEOPLE.dispatcher, "dispatcher"), (PEOPLE.supervisor, "supervisor"),
                           (PEOPLE.leader, "leader")]:
            await services.grant_role(svc, PEOPLE.admin, user, role)
        for unit, user in LIAISONS.items():
            await services.add_liaison(svc, PEOPLE.admin, unit, user)
        try:
            for op, case_index, who_index, pick in steps:
                rows = await db.fetch_all("SELECT number FROM cases ORDER BY id")
                case = rows[case_index % len(rows)][0] if rows else None
                before = await counts(db)
                event_total = before["events"]
                try:
                    await run_operation(svc, op, case, ANYONE[who_index % len(ANYONE)], pick)
                except errors.DomainError:
                    assert await counts(db) == before, f"{op} failed but wrote something"
                else:
                    after = await counts(db)
                    assert after["events"] >= event_total
                    for table in TABLES:
                        if table not in ("answers", "questions", "extensions", "ratings"):
                            assert after[table] >= before[table], table
                clock.advance(timedelta(minutes=pick + 1))
                await check_invariants(db)
            await check_reports_agree(db, clock)
            kinds = await db.fetch_all("SELECT kind FROM events")
            return Counter(r[0] for r in kinds)
        finally:
            await db.close()


async def check_reports_agree(db: Database, clock: FrozenClock) -> None:
    start, end, now = local(2026, 11, 1), local(2027, 1, 1), clock.now()
    aggregates = await unit_counts(db, start, end, now)
    facts = await period_facts(db, start, end)
    stored_now = to_db(now)  # the facts' moments are as stored
    assert stored_now is not None
    units = set(aggregates) | {u for u, _ in facts.cases if u} | {s.unit_code for s in facts.stages}
    for unit in units:
        agg = aggregates.get(unit)
        reply = reply_rate(f for u, f in facts.cases if u == unit)
        on_time = {
            stage: on_time_rate((s for s in facts.stages
                                 if s.unit_code == unit and s.stage == stage), stored_now)
            for stage in ("sign", "reply", "resolve")
        }
        satisfaction = satisfaction_rate(f for u, f in facts.ratings if u == unit)
        if agg is None:
            assert reply.denominator == 0 and satisfaction.denominator == 0
            assert all(r.denominator == 0 for r in on_time.values())
            continue
        assert agg.reply == reply
        assert agg.sign == on_time["sign"]
        assert agg.reply_stage == on_time["reply"]
        assert agg.resolve == on_time["resolve"]
        assert agg.satisfaction == satisfaction


step = st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 5), st.integers(0, 8),
                 st.integers(0, 40))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40))
def test_random_use_case_sequences_keep_every_invariant(steps):
    asyncio.run(run_sequence(steps))


def test_a_long_busy_day_keeps_every_invariant():
    """A deterministic long run that reaches the deep states (reopen, appeal, review)."""
    ops = []
    for i in range(6):
        ops += [("file", 0, 0, 2 * i), ("assign", i, 0, 4), ("sign", i, 3, 4),
                ("interim", i, 3, 4), ("final", i, 3, 4), ("publish", i, 0, 4),
                ("rate_bad", i, 6, 1), ("appeal", i, 3, 4), ("rule_appeal", i, 1, i),
                ("final", i, 3, 4), ("publish", i, 0, 4), ("rate_good", i, 6, 1),
                ("wait", 0, 0, i)]
    kinds = asyncio.run(run_sequence(ops))
    assert kinds["CaseFiled"] == 6
    assert kinds["CaseReopened"] == 6 and kinds["AppealFiled"] == 6
    assert kinds["CaseClosed"] == 6
