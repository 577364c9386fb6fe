"""The outbox sender keeps within Telegram's flood limits (the simulator enforces them)."""

from __future__ import annotations

import asyncio

from bot.domain.notifications import OutboxMessage
from storage import outbox
from storage.db import to_db
from tests.conftest import PEOPLE
from tests.e2e.conftest import Harness


async def test_five_notices_to_one_citizen_at_once_arrive_paced_without_a_429(
    harness: Harness,
):
    harness.sim.enable_rate_limits()  # Telegram: about 1/s per private chat, short bursts
    citizen = harness.sim.user("市民", user_id=PEOPLE.citizen, started=True)
    notices = [OutboxMessage("user", str(PEOPLE.citizen), "citizen.case_reopened",
                             {"number": f"CZ2026-00000{k}"}) for k in range(1, 6)]
    async with harness.db.unit_of_work() as uow:
        await outbox.enqueue(uow, notices, to_db(harness.clock.now()) or 0)
        await uow.commit()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await harness.drained(within=15)
    elapsed = loop.time() - began
    texts = [m.text for m in harness.sim.sent(citizen)]
    assert [f"CZ2026-00000{k}" in t for k, t in enumerate(texts, 1)] == [True] * 5, texts
    assert harness.sim.stats.too_many_requests == 0
    assert elapsed >= 2.5  # a burst of two, then one a second
