"""The aiohttp side: Telegram's webhook, `/healthz` and `/metrics`.

In webhook mode Telegram POSTs each update here; after checking the secret header the update
goes onto the PTB application's update queue and the reply is sent at once, so a slow
handler never makes Telegram wait (or resend). In polling mode the same application serves
only `/healthz` and `/metrics`, on `WENZHENG_METRICS_PORT`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from telegram import Update
from telegram.ext import Application

from bot import app as bot_app
from bot.clock import Clock
from bot.config import Settings, SettingsError
from bot.domain.policy import Policy
from bot.telemetry import outbox_backlog, telemetry_of
from storage.db import Database

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_WEBHOOK_PATH = "/telegram"
DEFAULT_LAG_THRESHOLD = timedelta(minutes=5)
DATABASE_TIMEOUT = 2.0  # seconds a health check waits for `SELECT 1`
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what Telegram accepts as a secret_token


@dataclass(frozen=True)
class WebConfig:
    """How the web application behaves: the webhook's secret and path, the health threshold."""

    secret: str | None
    path: str
    lag_threshold: timedelta


APPLICATION = web.AppKey("application", Application)
CONFIG = web.AppKey("config", WebConfig)


def create_web_app(
    application: bot_app.WenzhengApp,
    *,
    secret: str | None = None,
    path: str = DEFAULT_WEBHOOK_PATH,
    lag_threshold: timedelta = DEFAULT_LAG_THRESHOLD,
) -> web.Application:
    """The aiohttp application for a bot; the webhook route exists only with a secret."""
    web_app = web.Application()
    web_app[APPLICATION] = application
    web_app[CONFIG] = WebConfig(secret, path, lag_threshold)
    telemetry_of(application)  # count updates from the first one on
    if secret is not None:
        web_app.router.add_post(path, receive_update)
    web_app.router.add_get("/healthz", health)
    web_app.router.add_get("/metrics", metrics)
    return web_app


async def receive_update(request: web.Request) -> web.Response:
    """Telegram's POST: check the secret, queue the update, answer at once."""
    config = request.app[CONFIG]
    assert config.secret is not None, "the route exists only with a secret"
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), config.secret.encode()):
        logger.warning("webhook call from %s with a wrong or missing secret", request.remote)
        return web.Response(status=403, text="forbidden")
    application = request.app[APPLICATION]
    try:
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("an update is a JSON object")
        update = Update.de_json(data, application.bot)
    except (KeyError, TypeError, ValueError) as error:
        logger.warning("webhook call with a body that is not an update: %s", error)
        return web.Response(status=400, text="not a Telegram update")
    await application.update_queue.put(update)
    logger.debug("update %s queued", update.update_id)
    return web.Response(text="ok")


async def check_health(
    application: bot_app.WenzhengApp, lag_threshold: timedelta
) -> tuple[dict[str, Any], list[str]]:
    """What `/healthz` reports: the checks' values and the reasons for failing, if any."""
    services = application.bot_data.services
    assert services is not None, "services are set when the app is built"
    checks: dict[str, Any] = {}
    problems: list[str] = []
    try:
        await asyncio.wait_for(services.db.fetch_one("SELECT 1"), DATABASE_TIMEOUT)
        checks["database"] = "ok"
    except Exception as error:  # any failure of the database is the finding itself
        checks["database"] = "unreachable"
        problems.append(f"database does not answer: {error!r}")
    job_queue = application.job_queue
    is_scheduler_running = job_queue is not None and job_queue.scheduler.running
    checks["scheduler"] = "running" if is_scheduler_running else "stopped"
    if not is_scheduler_running:
        problems.append("scheduler is not running")
    if checks["database"] == "ok":
        backlog = await outbox_backlog(services.db, services.clock.now())
        checks["outbox_depth"] = backlog.depth
        checks["outbox_lag_seconds"] = round(backlog.lag_seconds, 1)
        checks["outbox_lag_threshold_seconds"] = lag_threshold.total_seconds()
        if backlog.lag_seconds > lag_threshold.total_seconds():
            problems.append(
                f"outbox lag {backlog.lag_seconds:.0f}s is over "
                f"{lag_threshold.total_seconds():.0f}s"
            )
    is_sender_running = any(
        task.get_name() == "outbox" and not task.done() for task in application.bot_data.tasks
    )
    checks["outbox_sender"] = "running" if is_sender_running else "stopped"
    if not is_sender_running:
        problems.append("outbox sender is not running")
    return checks, problems


async def health(request: web.Request) -> web.Response:
    """`GET /healthz`: 200 when the database, the scheduler and the outbox are fine, else 503."""
    checks, problems = await check_health(
        request.app[APPLICATION], request.app[CONFIG].lag_threshold
    )
    if problems:
        return web.json_response({"status": "failing", "reasons": problems, **checks}, status=503)
    return web.json_response({"status": "ok", **checks})


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: the application's registry in Prometheus' text format."""
    application = request.app[APPLICATION]
    services = application.bot_data.services
    assert services is not None, "services are set when the app is built"
    telemetry = telemetry_of(application)
    await telemetry.refresh(services.db, services.clock.now())
    return web.Response(
        body=generate_latest(telemetry.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


# -- running --------------------------------------------------------------------------------


def listen_address(listen: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) from WENZHENG_LISTEN."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"WENZHENG_LISTEN: expected host:port, got {listen!r}")
    return host.strip("[]"), int(port)


def webhook_settings(settings: Settings) -> tuple[str, str, str]:
    """The public URL, the secret and the local path; SettingsError says what is missing."""
    url, secret = settings.webhook_url, settings.webhook_secret
    if not url or not url.lower().startswith("https://"):
        raise SettingsError(
            "WENZHENG_WEBHOOK_URL: webhook mode needs the public https:// URL Telegram posts to"
        )
    if not secret or not _SECRET.match(secret):
        raise SettingsError(
            "WENZHENG_WEBHOOK_SECRET: webhook mode needs a secret of 1–256 characters "
            "A-Z, a-z, 0-9, _ and -"
        )
    return url, secret, urlsplit(url).path or DEFAULT_WEBHOOK_PATH


def bot_running(
    application: bot_app.WenzhengApp,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context: the bot runs (without polling) while the web application does."""

    async def context(_web_app: web.Application) -> AsyncIterator[None]:
        await bot_app.start(application, polling=False)
        yield
        await bot_app.stop(application)  # the server has stopped accepting updates by now

    return context


async def serve(web_app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving `web_app`; the caller cleans the returned runner up."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def serve_health(
    application: bot_app.WenzhengApp,
    host: str,
    port: int,
    *,
    lag_threshold: timedelta = DEFAULT_LAG_THRESHOLD,
) -> web.AppRunner:
    """Polling mode: serve `/healthz` and `/metrics` only; `await runner.cleanup()` to stop."""
    runner = await serve(create_web_app(application, lag_threshold=lag_threshold), host, port)
    logger.info("health and metrics on %s", ", ".join(map(str, runner.addresses)))
    return runner


async def run_webhook(settings: Settings, policy: Policy, clock: Clock) -> None:
    """`wenzheng run --webhook`: serve Telegram's webhook until SIGTERM or SIGINT."""
    url, secret, path = webhook_settings(settings)
    host, port = listen_address(settings.listen)
    db = Database(settings.database)
    await db.connect()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        application = bot_app.create_application(settings, policy=policy, clock=clock, db=db)
        web_app = create_web_app(application, secret=secret, path=path)
        web_app.cleanup_ctx.append(bot_running(application))
        runner = await serve(web_app, host, port)  # starts the bot, then listens
        try:
            await application.bot.set_webhook(
                url=url, secret_token=secret, allowed_updates=bot_app.ALLOWED_UPDATES
            )
            logger.info("webhook set; listening on %s:%s%s", host, port, path)
            await stopping.wait()
            logger.info("signal received, shutting down")
        finally:
            await runner.cleanup()  # stops listening, then stops the bot
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await db.close()
