"""The outbox sender's digest: a backlog of plain notices to one group goes out combined."""

from __future__ import annotations

import re

from bot import services
from bot.domain.notifications import OutboxMessage
from storage import outbox
from storage.db import to_db
from tests.conftest import PEOPLE, file_one
from tests.e2e.conftest import Harness, label


async def bind(h: Harness, purpose: str, unit: str | None = None):
    group = h.sim.group(f"{purpose}-{unit}")
    await services.bind_chat(h.svc, None, group.id, purpose, unit_code=unit, system=True)
    return group


async def enqueue(h: Harness, messages: list[OutboxMessage]) -> None:
    """Write rows in one transaction, as a use case (or the morning sweep) does."""
    async with h.db.unit_of_work() as uow:
        await outbox.enqueue(uow, messages, to_db(h.clock.now()) or 0)
        await uow.commit()


def reminder(number: str) -> OutboxMessage:
    return OutboxMessage("unit", "ZJJ", "unit.reminder",
                         {"number": number, "stage": "reply", "due": "2026-12-02T09:00:00+08:00"})


def answer(number: str, text: str = "2单元，整栋楼都没有水。") -> OutboxMessage:
    return OutboxMessage("dispatch", None, "desk.citizen_answer", {"number": number, "text": text})


def numbers_in(h: Harness, chat) -> list[list[str]]:
    return [re.findall(r"CZ2026-\d+", m.text or "") for m in h.sim.sent(chat)]


async def test_a_backlog_of_notices_to_a_group_goes_out_as_one_message_in_order(
    harness: Harness,
):
    group = await bind(harness, "unit", "ZJJ")
    await enqueue(harness, [reminder(f"CZ2026-00000{k}") for k in range(1, 6)])
    await harness.drained()
    assert numbers_in(harness, group) == [[f"CZ2026-00000{k}" for k in range(1, 6)]]
    rows = await harness.db.fetch_all(
        "SELECT state, message_id FROM outbox WHERE recipient_kind = 'unit' ORDER BY id")
    message_id = harness.sim.sent(group)[0].message_id
    assert [tuple(r) for r in rows] == [("sent", message_id)] * 5


async def test_a_digest_is_written_in_the_groups_language(harness: Harness):
    group = await bind(harness, "unit", "ZJJ")
    async with harness.db.unit_of_work() as uow:
        await uow.execute("UPDATE chat_bindings SET language = 'en' WHERE binding = 'unit:ZJJ'")
        await uow.commit()
    await enqueue(harness, [reminder(f"CZ2026-00000{k}") for k in range(1, 4)])
    await harness.drained()
    (digest,) = harness.sim.sent(group)
    template = "Reminder: <b>{number}</b> — {stage} is due by {date}."
    assert digest.text.count(label("en", template).split("<b>")[0]) == 3, digest.text
    assert label("zh_Hans", template).split("<b>")[0] not in digest.text


async def test_buttons_and_documents_never_share_a_digest_and_order_holds(harness: Harness):
    desk = await bind(harness, "dispatch")
    returned = OutboxMessage("dispatch", None, "desk.case_returned", {
        "number": "CZ2026-000003", "case_id": 3, "unit": "ZJJ", "reason": "district",
        "note": "不在本区", "returns": 1})
    await enqueue(harness, [answer("CZ2026-000001"), answer("CZ2026-000002"), returned,
                            answer("CZ2026-000004"), answer("CZ2026-000005"),
                            answer("CZ2026-000006")])
    await harness.drained()
    assert numbers_in(harness, desk) == [
        ["CZ2026-000001", "CZ2026-000002"], ["CZ2026-000003"],
        ["CZ2026-000004", "CZ2026-000005", "CZ2026-000006"]]
    with_buttons = harness.sim.sent(desk)[1]
    assert with_buttons.reply_markup is not None

    supervision = await bind(harness, "supervision")
    number = await file_one(harness.svc)
    escalation = {"number": number, "case_id": 1, "units": ["ZJJ"], "unit": "ZJJ",
                  "stage": "sign", "due": "2026-11-27T17:30:00+08:00"}
    manual = OutboxMessage("supervision", None, "supervision.escalation",
                           {**escalation, "reason": "manual"})
    overdue = OutboxMessage("supervision", None, "supervision.escalation",
                            {**escalation, "reason": "overdue"})
    await enqueue(harness, [manual, manual, overdue, manual, manual])
    await harness.drained()
    sent = harness.sim.sent(supervision)
    assert [m.text.count(number) for m in sent] == [2, 1, 2], [m.text for m in sent]
    assert [m.document_name is not None for m in sent] == [False, True, False]


async def test_a_digest_stays_within_telegrams_4096_characters(harness: Harness):
    desk = await bind(harness, "dispatch")
    long_text = "楼道灯不亮，" * 250  # 1,500 characters
    await enqueue(harness, [answer(f"CZ2026-00000{k}", long_text) for k in range(1, 6)])
    await harness.drained()
    sent = harness.sim.sent(desk)
    assert [len(m.text) <= 4096 for m in sent] == [True] * len(sent)
    assert numbers_in(harness, desk) == [
        ["CZ2026-000001", "CZ2026-000002"], ["CZ2026-000003", "CZ2026-000004"],
        ["CZ2026-000005"]]


async def test_without_a_backlog_each_notice_goes_out_alone(harness: Harness):
    group = await bind(harness, "unit", "ZJJ")
    await enqueue(harness, [reminder("CZ2026-000001"), reminder("CZ2026-000002")])
    await harness.drained()
    await enqueue(harness, [reminder("CZ2026-000003")])
    await harness.drained()
    assert numbers_in(harness, group) == [["CZ2026-000001"], ["CZ2026-000002"],
                                          ["CZ2026-000003"]]


async def test_with_the_digest_off_a_backlog_goes_out_one_by_one(harness: Harness):
    sender = harness.app.bot_data.sender
    assert sender is not None
    sender.digest = False
    group = await bind(harness, "unit", "ZJJ")
    await enqueue(harness, [reminder(f"CZ2026-00000{k}") for k in range(1, 6)])
    await harness.drained()
    assert numbers_in(harness, group) == [[f"CZ2026-00000{k}"] for k in range(1, 6)]


async def test_private_chats_never_get_a_digest(harness: Harness):
    citizen = harness.sim.user("市民", user_id=PEOPLE.citizen, started=True)
    await enqueue(harness, [
        OutboxMessage("user", str(PEOPLE.citizen), "citizen.case_reopened",
                      {"number": f"CZ2026-00000{k}"}) for k in range(1, 5)])
    await harness.drained()
    await harness.sim.idle()
    assert numbers_in(harness, citizen) == [[f"CZ2026-00000{k}"] for k in range(1, 5)]
