"""`run_webhook`: the real application behind aiohttp, fed by POSTs as Telegram would send them
(the simulator records setWebhook but never pushes updates, so the test posts them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot import app as bot_app
from bot.clock import FrozenClock
from bot.config import Settings, SettingsError
from bot.domain.policy import Policy
from bot.web import SECRET_HEADER, listen_address, run_webhook, webhook_settings
from sandbox import BotApiSimulator
from storage.db import Database

SECRET = "s3cret-Token_for-tests"
PUBLIC_URL = "https://bot.example.org/wenzheng/hook"


@dataclass
class WebhookBot:
    """The simulator, the session posting to the bot, and where the bot listens."""

    sim: BotApiSimulator
    http: aiohttp.ClientSession
    base: str
    settings: Settings

    async def post(self, update: object, secret: str | None = SECRET) -> int:
        """POST an update as Telegram would; returns the HTTP status."""
        headers = {} if secret is None else {SECRET_HEADER: secret}
        async with self.http.post(f"{self.base}/wenzheng/hook", json=update,
                                  headers=headers) as response:
            return response.status


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def webhook_bot(tmp_path: Path, policy: Policy, clock: FrozenClock
                      ) -> AsyncIterator[WebhookBot]:
    """`run_webhook` running in this process, stopped with SIGTERM at the end."""
    async with BotApiSimulator(seed=7) as sim:
        port = free_port()
        settings = Settings(token=sim.token, api_base_url=sim.base_url,
                            file_base_url=sim.file_base_url, database=tmp_path / "bot.db",
                            webhook_url=PUBLIC_URL, webhook_secret=SECRET,
                            listen=f"127.0.0.1:{port}")
        runner = asyncio.create_task(run_webhook(settings, policy, clock))
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            await wait_until_healthy(http, base, runner)
            yield WebhookBot(sim, http, base, settings)
            os.kill(os.getpid(), signal.SIGTERM)  # run_webhook's handler catches it
            await asyncio.wait_for(runner, timeout=20)


async def wait_until_healthy(http: aiohttp.ClientSession, base: str, runner: asyncio.Task
                             ) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        if runner.done():
            runner.result()  # raises what made run_webhook stop
            raise AssertionError("run_webhook returned before serving")
        with contextlib.suppress(aiohttp.ClientConnectionError):  # not listening yet
            async with http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        if loop.time() > deadline:
            raise AssertionError("the webhook server did not become healthy")
        await asyncio.sleep(0.05)


async def test_set_webhook_is_called_with_the_url_secret_and_update_types(webhook_bot):
    calls = webhook_bot.sim.calls("setWebhook")
    assert len(calls) == 1
    params = calls[0].params
    assert params["url"] == PUBLIC_URL
    assert params["secret_token"] == SECRET
    allowed = params["allowed_updates"]
    assert (json.loads(allowed) if isinstance(allowed, str) else allowed) == \
        bot_app.ALLOWED_UPDATES
    assert not webhook_bot.sim.calls("getUpdates")


async def test_an_update_with_the_right_secret_reaches_the_bot_which_answers(webhook_bot):
    sim = webhook_bot.sim
    citizen = sim.user("孙", language_code="en")
    sent = await citizen.send("/start")
    assert await webhook_bot.post(sent.update) == 200
    welcome = await sim.wait_for(citizen, "Welcome", timeout=10)
    assert welcome


@pytest.mark.parametrize("secret", ["wrong-secret", None, ""], ids=["wrong", "missing", "empty"])
async def test_an_update_without_the_right_secret_is_refused_and_never_processed(
    webhook_bot, secret
):
    sim = webhook_bot.sim
    intruder = sim.user("钱", language_code="en")
    sent = await intruder.send("/start")
    assert await webhook_bot.post(sent.update, secret=secret) == 403
    await asyncio.sleep(0.3)
    assert sim.sent(intruder) == []
    async with webhook_bot.http.get(f"{webhook_bot.base}/metrics") as response:
        assert "wenzheng_updates_total{" not in await response.text()


async def test_a_body_that_is_not_an_update_gets_400(webhook_bot):
    async with webhook_bot.http.post(
        f"{webhook_bot.base}/wenzheng/hook", data=b"{not json",
        headers={SECRET_HEADER: SECRET, "Content-Type": "application/json"},
    ) as response:
        assert response.status == 400
    assert await webhook_bot.post([1, 2, 3]) == 400


async def test_the_reply_does_not_wait_for_the_handlers(webhook_bot):
    sim = webhook_bot.sim
    # The welcome's sendMessage is answered only after 1.5 s, so the handler takes that long.
    sim.set_faults(delay_rate=1.0, delay_seconds=1.5, methods=["sendMessage"])
    citizen = sim.user("赵", language_code="en")
    sent = await citizen.send("/start")
    loop = asyncio.get_running_loop()
    posted_at = loop.time()
    assert await webhook_bot.post(sent.update) == 200
    answered_in = loop.time() - posted_at
    assert answered_in < 0.5
    assert await sim.wait_for(citizen, "Welcome", timeout=10)
    await asyncio.sleep(1.5)  # let the held-back answer reach the handler before shutdown
    sim.clear_faults()


async def test_polling_again_deletes_the_webhook(tmp_path, policy, clock):
    async with BotApiSimulator(seed=8) as sim:
        settings = Settings(token=sim.token, api_base_url=sim.base_url,
                            file_base_url=sim.file_base_url, database=tmp_path / "bot.db")
        db = Database(settings.database)
        await db.connect()
        app = bot_app.create_application(settings, policy=policy, clock=clock, db=db)
        await app.bot.set_webhook(PUBLIC_URL, secret_token=SECRET)
        try:
            await bot_app.start(app, poll_timeout=1)
            assert (await app.bot.get_webhook_info()).url == ""
            citizen = sim.user("李", language_code="en")
            await citizen.send("/start")
            assert await sim.wait_for(citizen, "Welcome", timeout=10)
        finally:
            await bot_app.stop(app)
            await db.close()


def test_webhook_mode_says_which_setting_is_missing():
    with pytest.raises(SettingsError, match="WENZHENG_WEBHOOK_URL"):
        webhook_settings(Settings(webhook_secret=SECRET))
    with pytest.raises(SettingsError, match="WENZHENG_WEBHOOK_URL"):
        webhook_settings(Settings(webhook_url="http://example.org/", webhook_secret=SECRET))
    with pytest.raises(SettingsError, match="WENZHENG_WEBHOOK_SECRET"):
        webhook_settings(Settings(webhook_url=PUBLIC_URL))
    with pytest.raises(SettingsError, match="WENZHENG_WEBHOOK_SECRET"):
        webhook_settings(Settings(webhook_url=PUBLIC_URL, webhook_secret="has spaces"))
    assert webhook_settings(Settings(webhook_url=PUBLIC_URL, webhook_secret=SECRET)) == (
        PUBLIC_URL, SECRET, "/wenzheng/hook")
    assert webhook_settings(
        Settings(webhook_url="https://bot.example.org", webhook_secret=SECRET))[2] == "/telegram"


def test_the_listen_address_is_host_and_port():
    assert listen_address("0.0.0.0:8443") == ("0.0.0.0", 8443)
    assert listen_address("[::1]:8080") == ("::1", 8080)
    for wrong in ("8080", "localhost", "host:port", "host:99999"):
        with pytest.raises(SettingsError, match="WENZHENG_LISTEN"):
            listen_address(wrong)
