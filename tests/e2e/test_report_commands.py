"""Reports through the real application and the Bot API simulator: /report and /stats in a
staff group, a refusal for anyone else, and the queued weekly report reaching the desk."""

from __future__ import annotations

import asyncio
import io

from openpyxl import load_workbook
from telegram.ext import CommandHandler

from bot import reports, services
from bot.i18n import translator
from handlers import reports as report_handlers
from tests.conftest import PEOPLE, file_one, local
from tests.e2e.conftest import Harness

ZH = "zh_Hans"


def wired(h: Harness) -> bool:
    return any(
        isinstance(handler, CommandHandler) and "report" in handler.commands
        for handlers in h.app.handlers.values()
        for handler in handlers
    )


async def arrange(h: Harness):
    if not wired(h):  # until handlers/__init__.py registers the module itself
        report_handlers.register(h.app, group=1)
    sim, svc = h.sim, h.svc
    clerk = sim.user("分办员", user_id=PEOPLE.dispatcher, started=True)
    stranger = sim.user("路人", user_id=PEOPLE.outsider, started=True)
    sim.user("张", last_name="三", user_id=PEOPLE.citizen, started=True)
    desk = sim.group("分办中心", members=[clerk, stranger])
    await services.bind_chat(svc, None, desk.id, "dispatch", system=True)
    await services.grant_role(svc, None, PEOPLE.dispatcher, "dispatcher", system=True)
    number = await file_one(svc)
    await services.assign_case(svc, PEOPLE.dispatcher, number, "ZJJ", track="routine")
    await h.drained()
    return clerk, stranger, desk, number


async def test_report_week_reaches_the_group_with_chart_and_spreadsheet(harness: Harness):
    clerk, _, desk, number = await arrange(harness)
    before = len(harness.sim.sent(desk))
    await clerk.send("/report week", chat=desk)
    await harness.sim.wait_for(desk, lambda m: m.document_name is not None, timeout=30)
    sent = harness.sim.sent(desk)[before:]
    photos = [m for m in sent if m.kind == "photo"]
    documents = [m for m in sent if m.document_name]
    assert len(photos) == 1 and len(documents) == 1, [m.kind for m in sent]
    g = translator(ZH).gettext
    assert g("Weekly report (周报) {label}").format(label="2026-W49") in photos[0].text
    assert "(0/1)" in photos[0].text  # reply rate: the one case, not answered yet
    assert documents[0].document_name == "report-weekly-2026-W49.xlsx"
    assert documents[0].document_bytes is not None
    book = load_workbook(io.BytesIO(documents[0].document_bytes))
    assert [r[0] for r in book["cases"].iter_rows(min_row=2, values_only=True)] == [number]


async def test_stats_shows_the_current_view(harness: Harness):
    clerk, _, desk, _ = await arrange(harness)
    before = len(harness.sim.sent(desk))
    await clerk.send("/stats", chat=desk)
    await harness.sim.wait_for(desk)
    [reply] = harness.sim.sent(desk)[before:]
    g = translator(ZH).gettext
    assert g("Open cases: {count}").format(count=1) in reply.text
    assert g("Filed today: {count}").format(count=1) in reply.text


async def test_a_non_staff_user_is_refused(harness: Harness):
    _, stranger, desk, _ = await arrange(harness)
    before = len(harness.sim.sent(desk))
    await stranger.send("/report week", chat=desk)
    await harness.sim.wait_for(desk)
    await stranger.send("/stats", chat=desk)
    await harness.sim.wait_for(desk)
    sent = harness.sim.sent(desk)[before:]
    refusal = translator(ZH).gettext("You are not allowed to do this.")
    assert [m.text for m in sent] == [refusal, refusal]
    assert not any(m.kind == "photo" or m.document_name for m in sent)


async def test_the_queued_weekly_report_reaches_the_desk(harness: Harness):
    _, _, desk, _ = await arrange(harness)
    harness.clock.set(local(2026, 12, 7, 9, 0))  # the next Monday: week 49 is complete
    assert await reports.enqueue_weekly(harness.svc)
    assert not await reports.enqueue_weekly(harness.svc)
    harness.app.bot_data.sender.wake()
    await harness.drained(within=30)
    sent = [m for m in harness.sim.sent(desk) if m.kind == "photo" or m.document_name]
    assert [m.kind for m in sent] == ["photo", "document"]
    assert "2026-W49" in sent[0].text
    assert sent[1].document_name == "report-weekly-2026-W49.xlsx"


async def test_a_report_whose_spreadsheet_failed_sends_only_the_spreadsheet_again(
    harness: Harness,
):
    _, _, desk, _ = await arrange(harness)
    harness.clock.set(local(2026, 12, 7, 9, 0))
    harness.sim.set_faults(error_rate=1.0, methods=["sendDocument"])
    assert await reports.enqueue_weekly(harness.svc)
    harness.app.bot_data.sender.wake()
    await harness.sim.wait_for(desk, lambda m: m.kind == "photo", since=0, timeout=30)
    for _ in range(500):  # the XLSX failed: the row waits for its retry, the chart sent
        if await harness.count("SELECT count(*) FROM outbox WHERE message_key = 'report'"
                               " AND state = 'pending' AND attempts > 0 AND parts_sent = 1"):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the report's failed part was never put back for a retry")
    harness.sim.clear_faults()
    harness.clock.set(local(2026, 12, 7, 9, 10))
    harness.app.bot_data.sender.wake()
    await harness.drained(within=30)
    sent = [m for m in harness.sim.sent(desk) if m.kind == "photo" or m.document_name]
    assert [m.kind for m in sent] == ["photo", "document"]
    row = await harness.db.fetch_one(
        "SELECT state, message_id, parts_sent FROM outbox WHERE message_key = 'report'")
    assert row is not None and tuple(row) == ("sent", sent[0].message_id, 1)


async def ran_once(h: Harness) -> None:
    """Wait for the start-up job to record that the bot ran (it runs beside the test)."""
    for _ in range(500):
        if await h.count("SELECT count(*) FROM counters WHERE name = ?", reports.RUNNING):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the start-up job never recorded the bot running")


async def test_a_weekly_report_missed_while_the_bot_was_down_goes_out_at_start_up(
    harness: Harness,
):
    _, _, desk, _ = await arrange(harness)
    await ran_once(harness)  # first start on a new database: nothing was missed
    assert await harness.count("SELECT count(*) FROM outbox WHERE message_key = 'report'") == 0
    harness.clock.set(local(2026, 12, 7, 10, 0))  # down across Monday 09:00
    await harness.restart()
    photo = await harness.sim.wait_for(desk, lambda m: m.kind == "photo", since=0, timeout=30)
    assert "2026-W49" in photo.text
    await harness.drained(within=30)
    harness.clock.set(local(2026, 12, 7, 11, 0))
    await harness.restart()  # down again, but the week's report went out: not again
    await harness.sim.idle()
    await harness.drained(within=30)
    photos = [m for m in harness.sim.sent(desk) if m.kind == "photo"]
    assert len(photos) == 1


async def test_the_report_jobs_run_at_the_policys_times(harness: Harness):
    queue = harness.app.job_queue
    assert queue is not None
    tz = harness.policy.calendar.tz
    [weekly] = queue.get_jobs_by_name("weekly-report")
    [daily] = queue.get_jobs_by_name("daily-report")
    [quarterly] = queue.get_jobs_by_name("quarterly-report")
    weekly_at = weekly.next_t.astimezone(tz)
    assert (weekly_at.weekday(), weekly_at.hour, weekly_at.minute) == (0, 9, 0)
    daily_at = daily.next_t.astimezone(tz)
    assert (daily_at.hour, daily_at.minute) == (8, 30)
    assert quarterly.next_t.astimezone(tz).hour == 9
