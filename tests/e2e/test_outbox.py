"""The outbox sender against Telegram's failures: 429, 5xx, 403 and group migration."""

from __future__ import annotations

from datetime import timedelta

from bot import services
from tests.conftest import PEOPLE, file_one
from tests.e2e.conftest import Harness


async def bind_dispatch(h: Harness, title: str = "分办中心"):
    clerk = h.sim.user("分办员", user_id=PEOPLE.dispatcher, started=True)
    group = h.sim.group(title, members=[clerk])
    await services.bind_chat(h.svc, None, group.id, "dispatch", title=title, system=True)
    return group


async def test_rows_for_an_unbound_group_wait_and_go_once_it_is_bound(harness: Harness):
    await file_one(harness.svc)
    await harness.drained()
    row = await harness.db.fetch_one("SELECT state, error FROM outbox WHERE recipient_kind ="
                                     " 'dispatch'")
    assert row is not None and row[0] == "pending" and "not bound" in row[1]
    group = await bind_dispatch(harness)
    card = await harness.sim.wait_for(group, "CZ2026-000001", since=0)
    assert "小区电梯坏了" in card.text


async def test_429_is_honoured_and_the_message_arrives_once(harness: Harness):
    citizen = harness.sim.user("市民", user_id=PEOPLE.citizen, started=True)
    harness.sim.force_429(count=1, retry_after=3, methods=["sendMessage"])
    await file_one(harness.svc)
    await harness.drained()
    row = await harness.db.fetch_one(
        "SELECT state, error FROM outbox WHERE message_key = 'citizen.case_filed'")
    assert row is not None and row[0] == "pending" and row[1] == "429"
    assert harness.sim.stats.too_many_requests == 1
    harness.clock.advance(timedelta(seconds=3))
    harness.app.bot_data.sender.wake()  # type: ignore[union-attr]
    await harness.sim.wait_for(citizen, "CZ2026-000001", since=0)
    await harness.drained()
    assert len([m for m in harness.sim.sent(citizen) if "CZ2026-000001" in m.text]) == 1


async def test_5xx_is_retried_with_backoff_in_order(harness: Harness):
    group = await bind_dispatch(harness)
    harness.sim.set_faults(error_rate=1.0, error_status=500, methods=["sendMessage"])
    await file_one(harness.svc)
    await file_one(harness.svc, text="第二件：路灯不亮已经一周了，请尽快修理。")
    await harness.drained()
    rows = await harness.db.fetch_all(
        "SELECT state, attempts FROM outbox WHERE recipient_kind = 'dispatch' ORDER BY id")
    assert [r[0] for r in rows] == ["pending", "pending"]
    assert rows[0][1] >= 1 and rows[1][1] == 0  # the second waits behind the first
    assert harness.sim.stats.faults
    harness.sim.clear_faults()
    harness.clock.advance(timedelta(minutes=10))
    harness.app.bot_data.sender.wake()  # type: ignore[union-attr]
    second = await harness.sim.wait_for(group, "CZ2026-000002", since=0)
    numbers = [m.text.split()[1] for m in harness.sim.sent(group)]
    assert numbers == ["CZ2026-000001", "CZ2026-000002"], numbers
    assert second is not None


async def test_a_blocked_citizen_marks_the_row_failed_visibly(harness: Harness):
    person = harness.sim.user("被封", user_id=PEOPLE.citizen, started=True)
    harness.sim.block(person)
    await file_one(harness.svc)
    await harness.drained()
    row = await harness.db.fetch_one(
        "SELECT state, error FROM outbox WHERE message_key = 'citizen.case_filed'")
    assert row is not None and row[0] == "failed" and row[1].startswith("403")
    blocked = await harness.db.fetch_one("SELECT is_blocked FROM users WHERE id = ?",
                                         (PEOPLE.citizen,))
    assert blocked is not None and blocked[0] == 1


async def test_a_group_that_became_a_supergroup_is_followed(harness: Harness):
    group = await bind_dispatch(harness)
    supergroup = await harness.sim.migrate_group(group)
    await file_one(harness.svc)
    card = await harness.sim.wait_for(supergroup, "CZ2026-000001", since=0)
    assert card is not None
    row = await harness.db.fetch_one("SELECT chat_id FROM chat_bindings WHERE binding ="
                                     " 'dispatch'")
    assert row is not None and row[0] == supergroup.id


async def test_cards_are_edited_in_place(harness: Harness):
    group = await bind_dispatch(harness)
    number = await file_one(harness.svc)
    await harness.sim.wait_for(group, number, since=0)
    await services.grant_role(harness.svc, None, PEOPLE.dispatcher, "dispatcher", system=True)
    await services.set_track(harness.svc, PEOPLE.dispatcher, number, "routine")
    await harness.drained()
    cards = [m for m in harness.sim.sent(group) if number in m.text]
    assert len(cards) == 1 and cards[0].edits
