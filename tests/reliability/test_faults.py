"""Faults of the Bot API (issue 7, item 2): `wenzheng run` against a simulator that answers
a tenth of calls with 5xx, holds some answers past the client's timeout, answers 429 with
retry_after, closes connections before and after a call took effect — getUpdates included.

Citizens file, the desk assigns, liaisons sign and answer throughout. Every notification
arrives, in order per chat; updates keep being processed; the only duplicates are calls
that took effect while the bot saw a failure (a timeout or a dropped answer), which no
client can tell from a lost call: they are counted and bounded by those faults.

CI runs 5 citizens; `pytest tests/reliability --full` 100.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from sandbox import BotApiSimulator
from tests.reliability.conftest import (
    CATEGORY_UNIT,
    BotProcess,
    People,
    account,
    build_city,
    cancel,
    cases_in,
    doctor,
    outbox_pending,
    query,
    wait_until,
)

# PTB's default read timeout is 5 s: these answers come too late for the bot.
PAST_TIMEOUT = 6.0
SEND_METHODS = ("sendMessage", "sendDocument", "sendPhoto")
FAULTY_METHODS = (*SEND_METHODS, "editMessageText", "editMessageReplyMarkup",
                  "answerCallbackQuery", "getUpdates", "setMyCommands")


async def test_notifications_arrive_in_order_through_5xx_timeouts_429s_and_drops(
    tmp_path: Path, full_run: bool
):
    citizens = 100 if full_run else 5
    started = time.monotonic()
    database = tmp_path / "bot.db"
    async with BotApiSimulator(seed=23) as sim:
        city = await build_city(sim, database)
        bot = BotProcess(sim, database, tmp_path / "bot.log")
        # The short run makes ~190 calls: at 2 % a kind of fault was missing in about one
        # run in fifteen, and the test proves nothing of a fault never injected.
        # (Delays stay rarer: each holds a call for 6 s.)
        rare = 0.02 if full_run else 0.04
        sim.set_faults(error_rate=0.10, delay_rate=min(rare, 0.03), delay_seconds=PAST_TIMEOUT,
                       drop_rate=rare, reset_rate=rare, throttle_rate=max(rare, 0.03),
                       throttle_retry_after=2, methods=FAULTY_METHODS)
        await bot.start()
        people = People(sim, city, patience=10.0)
        crowd = [sim.user(f"市民{n}", user_id=600_000 + n, started=True) for n in range(citizens)]
        categories = list(CATEGORY_UNIT)
        gate = asyncio.Semaphore(20)

        async def citizen(n: int) -> None:
            async with gate:
                await people.file_case(
                    crowd[n], f"市民{n}反映：楼下餐馆油烟直排，家里窗户都不敢开，请管一管",
                    categories[n % len(categories)], "langya", attempts=10)

        staff = [asyncio.create_task(people.dispatch()),
                 *(asyncio.create_task(people.liaise(unit)) for unit in city.units)]
        try:
            await asyncio.gather(*(citizen(n) for n in range(citizens)))
            filed = {n for person in crowd for n in people.told_filed(person)}
            # Speed is not what this proves: with a quarter of the calls faulted, each step
            # a person retries costs their 10 s of patience, and one unit's chain of sign,
            # prompt and answer lost four in a row in one run in about seven (100 s).
            await wait_until(lambda: cases_in(database, "replied") >= len(filed),
                             180 + citizens * 2, "every filed case answered by its unit")
            await wait_until(lambda: outbox_pending(database) == 0, 120,
                             "the outbox drained through the faults")
            await sim.idle(timeout=30, quiet=0.5)
        finally:
            people.stopping.set()
            await cancel(staff)
            sim.clear_faults()
            code = await bot.stop() if bot.running else None
        assert code == 0, bot.log_tail()

        faults = {kind: sim.stats.faults[kind]
                  for kind in ("error", "delay", "drop", "reset", "throttle")}
        assert all(faults.values()), faults  # every kind of fault was really injected
        polls_faulted = sum(n for (kind, method), n in sim.stats.fault_methods.items()
                            if method == "getUpdates")
        assert polls_faulted, "getUpdates must fail too"

        assert people.tally.gave_up == []
        assert len(filed) >= citizens
        deliveries = account(sim, database, [*crowd, *city.group_chats()])
        assert deliveries.undelivered == [], deliveries.undelivered[:10]
        assert deliveries.missing == [], deliveries.missing[:10]

        # In order per chat: each recipient's rows went out in the order they were written
        # (a row waits for the one before it, even through its retries). Rows a group got
        # together as one digest share its message id; no others may.
        rows = query(database, "SELECT chat_id, message_id, sent_at FROM outbox"
                               " WHERE state = 'sent' AND card_key IS NULL"
                               " AND message_id IS NOT NULL ORDER BY id")
        last: dict[int, tuple[int, int]] = {}
        for chat_id, message_id, sent_at in rows:
            before, before_at = last.get(chat_id, (0, 0))
            assert message_id > before or (message_id == before and sent_at == before_at
                                           and chat_id < 0), f"out of order in chat {chat_id}"
            last[chat_id] = (message_id, sent_at)
        for person in crowd:  # as the citizen reads them: "filed as …" before the answer
            texts = [m.text for m in sim.sent(person)]
            told = [i for i, text in enumerate(texts) if people.filed.search(text)]
            answers = [i for i, text in enumerate(texts) if "已派人现场处理完毕" in text]
            assert told and answers and told[0] < answers[0], texts
        # Sent twice only where the call took effect but the bot saw a failure.
        unknowable = sum(sim.stats.fault_methods[(kind, method)]
                         for kind in ("drop", "delay") for method in SEND_METHODS)
        duplicates = len(deliveries.duplicates)
        assert duplicates <= unknowable, (duplicates, unknowable)
        answered = query(database, "SELECT count(*) FROM cases WHERE state = 'replied'")[0][0]
        assert answered == len(filed)
        code, report = doctor(database)
        assert code == 0, report
        by_method = Counter({f"{k}:{m}": n for (k, m), n in sim.stats.fault_methods.items()})
        print(f"\nfault suite: {sum(faults.values())} faults injected {faults} "
              f"({polls_faulted} on getUpdates), {sum(sim.stats.calls.values())} calls, "
              f"{len(filed)} cases filed and answered, {deliveries.rows} outbox rows, "
              f"{duplicates} duplicates (bound: {unknowable} sends that took effect unseen), "
              f"0 lost, {people.tally.unanswered} actions retried by people, "
              f"{time.monotonic() - started:.0f}s\n  by method: {dict(by_method.most_common())}")



async def test_the_bot_starts_and_answers_although_the_command_menu_cannot_be_set(
    tmp_path: Path,
):
    async with BotApiSimulator(seed=24) as sim:
        sim.set_faults(error_rate=1.0, methods=["setMyCommands"])
        bot = BotProcess(sim, tmp_path / "bot.db", tmp_path / "bot.log")
        await bot.start()
        try:
            person = sim.user("Lin", language_code="en", started=True)
            await person.send("/start")
            assert await sim.wait_for(person, "Welcome", timeout=20)
        finally:
            assert await bot.stop() == 0, bot.log_tail()
        assert sim.stats.faults["error"] >= 1
