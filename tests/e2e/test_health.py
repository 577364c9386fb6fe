"""`/healthz` and `/metrics` on the polling bot's metrics port, against the real application."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import services
from bot.telemetry import telemetry_of
from bot.web import serve_health
from storage.db import to_db
from tests.conftest import PEOPLE, file_one
from tests.e2e.conftest import Harness
from tests.e2e.test_citizen import file_guided


@pytest.fixture
async def web(harness: Harness) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """An HTTP client and the base URL of the bot's health server (on a free port)."""
    runner = await serve_health(harness.app, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            yield session, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text as {(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def stop_the_sender(h: Harness) -> None:
    """Stop the outbox sender as a crash of its task would, leaving the bot otherwise up."""
    h.app.bot_data.stop_event.set()
    for task in h.app.bot_data.tasks:
        await task


async def test_health_is_ok_while_the_bot_runs(harness: Harness, web):
    session, base = web
    async with session.get(f"{base}/healthz") as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["scheduler"] == "running"
    assert body["outbox_sender"] == "running"
    assert body["outbox_lag_seconds"] == 0


async def test_health_turns_503_with_the_reason_when_the_outbox_is_stuck(harness: Harness, web):
    session, base = web
    await stop_the_sender(harness)
    now = to_db(harness.clock.now())
    async with harness.db.unit_of_work() as uow:
        await uow.execute(
            "INSERT INTO outbox (recipient_kind, recipient_ref, message_key, next_attempt_at,"
            " created_at) VALUES ('unit', 'ZJJ', 'unit.case_assigned', ?, ?)",
            (now, now),
        )
        await uow.commit()
    harness.clock.advance(timedelta(minutes=10))

    async with session.get(f"{base}/healthz") as response:
        assert response.status == 503
        body = json.loads(await response.text())
    assert body["status"] == "failing"
    assert body["outbox_lag_seconds"] == 600
    assert "outbox lag 600s is over 300s" in body["reasons"]
    assert "outbox sender is not running" in body["reasons"]
    assert body["database"] == "ok" and body["scheduler"] == "running"


async def test_health_turns_503_when_the_scheduler_stops(harness: Harness, web):
    session, base = web
    assert harness.app.job_queue is not None
    harness.app.job_queue.scheduler.shutdown(wait=False)
    async with session.get(f"{base}/healthz") as response:
        assert response.status == 503
        assert (await response.json())["reasons"] == ["scheduler is not running"]


async def test_metrics_show_the_named_series_after_a_citizen_files_a_case(harness: Harness, web):
    session, base = web
    citizen = harness.sim.user("王", language_code="en")
    number = await file_guided(harness, citizen)
    await harness.drained()

    async with session.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    values = samples(text)

    # The citizen sent two messages (/new and the description) and pressed five buttons
    # (category, district, done, stay anonymous, submit).
    assert values[("wenzheng_updates_total", (("type", "message"),))] == 2
    assert values[("wenzheng_updates_total", (("type", "callback_query"),))] == 5
    updates = sum(v for (name, _), v in values.items() if name == "wenzheng_updates_total")
    timed = sum(v for (name, _), v in values.items() if name == "wenzheng_handler_seconds_count")
    assert timed == updates
    handler_seconds = sum(
        v for (name, _), v in values.items() if name == "wenzheng_handler_seconds_sum"
    )
    assert 0 < handler_seconds < 60

    assert number.startswith("CZ2026-")
    assert values[("wenzheng_cases", (("state", "new"), ("track", "none")))] == 1
    assert values[("wenzheng_outbox_sends_total", (("result", "ok"),))] >= 1
    depth = await harness.count("SELECT count(*) FROM outbox WHERE state = 'pending'")
    assert values[("wenzheng_outbox_depth", ())] == depth
    assert values[("wenzheng_outbox_oldest_age_seconds", ())] >= 0
    assert values[("wenzheng_outbox_lag_seconds", ())] == 0
    for family in ("wenzheng_sweep_seconds", "wenzheng_reports_built"):
        assert re.search(rf"^# TYPE {family}(_total)? ", text, re.MULTILINE), family


async def test_sweeps_and_reports_recorded_by_the_jobs_show_in_the_metrics(
    harness: Harness, web
):
    session, base = web
    count, total = ("wenzheng_sweep_seconds_count", "wenzheng_sweep_seconds_sum")
    deadline, weekly = (("sweep", "deadline"),), (("kind", "weekly"),)

    async def scrape() -> dict:
        async with session.get(f"{base}/metrics") as response:
            return samples(await response.text())

    # The start-up sweep records itself once; on a loaded machine it may run late, so
    # wait for it rather than let it land between the two scrapes.
    for _ in range(200):
        before = await scrape()
        if before.get((count, deadline), 0) >= 1:
            break
        await asyncio.sleep(0.05)
    telemetry = telemetry_of(harness.app)
    telemetry.observe_sweep(0.2, sweep="deadline")
    telemetry.count_report("weekly")
    after = await scrape()
    assert after[(count, deadline)] - before.get((count, deadline), 0) == 1
    assert after[(total, deadline)] - before.get((total, deadline), 0) == pytest.approx(0.2)
    reports = ("wenzheng_reports_built_total", weekly)
    assert after[reports] - before.get(reports, 0) == 1


async def test_sends_are_counted_by_result_ok_429_5xx_and_blocked(harness: Harness, web):
    sim, sender = harness.sim, harness.app.bot_data.sender
    assert sender is not None
    citizen = sim.user("市民", user_id=PEOPLE.citizen, started=True)
    sim.block(citizen)
    await file_one(harness.svc)  # the citizen's receipt: 403; the desk's card waits for /bind
    await harness.drained()
    clerk = sim.user("分办员", user_id=PEOPLE.dispatcher, started=True)
    group = sim.group("分办中心", members=[clerk])
    sim.set_faults(error_rate=1.0, error_status=500, methods=["sendMessage"])
    await services.bind_chat(harness.svc, None, group.id, "dispatch", title="分办中心",
                             system=True)
    harness.clock.advance(timedelta(minutes=10))
    sender.wake()
    await harness.drained()
    sim.clear_faults()
    sim.force_429(count=1, retry_after=1, methods=["sendMessage"])
    for _ in range(3):  # 5xx back-off, then the 429's wait, then the card goes out
        harness.clock.advance(timedelta(minutes=10))
        sender.wake()
        await harness.drained()
    await sim.wait_for(group, "CZ2026-000001", since=0)

    session, base = web
    async with session.get(f"{base}/metrics") as response:
        values = samples(await response.text())
    sends = {labels[0][1]: value for (name, labels), value in values.items()
             if name == "wenzheng_outbox_sends_total"}
    assert sends["blocked"] == 1
    assert sends["5xx"] >= 1
    assert sends["429"] == 1
    assert sends["ok"] >= 1


async def test_the_start_up_sweeps_show_in_the_metrics(harness: Harness, web):
    session, base = web
    for _ in range(100):
        async with session.get(f"{base}/metrics") as response:
            values = samples(await response.text())
        if all(("wenzheng_sweep_seconds_count", (("sweep", kind),)) in values
               for kind in ("deadline", "callback")):
            break
        await asyncio.sleep(0.05)
    assert values[("wenzheng_sweep_seconds_count", (("sweep", "deadline"),))] >= 1
    assert values[("wenzheng_sweep_seconds_count", (("sweep", "callback"),))] >= 1
