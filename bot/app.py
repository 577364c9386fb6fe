"""The composition root: builds the PTB Application with everything it needs, and runs it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from telegram import BotCommand, BotCommandScopeAllPrivateChats, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackContext,
    Defaults,
    ExtBot,
)
from telegram.ext import ContextTypes as PTBContextTypes

from bot import services as use_cases
from bot.clock import Clock
from bot.config import Settings
from bot.domain.policy import Policy
from bot.http import Backend, use_backend
from bot.i18n import N_, translator
from bot.outbox import OutboxSender, flood_limiter
from bot.persistence import SqlitePersistence
from bot.polling import poll
from bot.services import Services
from bot.telemetry import Telemetry, install_telemetry
from bot.throttle import Throttle
from bot.updates import PerChatUpdateProcessor
from scheduler.calendar_watch import schedule as watch_calendar
from scheduler.jobs import schedule
from storage.db import Database

logger = logging.getLogger(__name__)

# PTB 22 reports time periods (e.g. RetryAfter.retry_after) as timedelta when this is set,
# and warns about the old int form otherwise; we read both, and want no warnings.
os.environ.setdefault("PTB_TIMEDELTA", "true")

# PTB's transport (bot/http.py; docs/performance.md says why this one).
DEFAULT_HTTP_BACKEND: Backend = "aiohttp"

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member", "channel_post"]


class BotData:
    """The application's typed state in `context.bot_data`."""

    def __init__(self) -> None:
        self.services: Services | None = None
        self.sender: OutboxSender | None = None
        self.known_users: set[int] = set()
        # Keyboards that depend only on the policy and a language, built once each.
        self.keyboards: dict[tuple[str, str], InlineKeyboardMarkup] = {}
        self.throttle = Throttle()
        self.tasks: list[asyncio.Task[Any]] = []
        self.stop_event = asyncio.Event()
        self.polling_stop = asyncio.Event()
        self.poller: asyncio.Task[None] | None = None
        self.telemetry: Telemetry | None = None


class Context(CallbackContext[ExtBot[None], dict[str, Any], dict[str, Any], BotData]):
    """The callback context our handlers receive."""

    @property
    def services(self) -> Services:
        """The use cases' dependencies."""
        assert self.bot_data.services is not None, "services are set when the app is built"
        return self.bot_data.services


WenzhengApp = Application[ExtBot[None], Context, dict[str, Any], dict[str, Any], BotData, Any]


def create_application(
    settings: Settings,
    *,
    policy: Policy,
    clock: Clock,
    db: Database,
    persistence_interval: float = 1.0,
    rate_limiter: bool = True,
    http_backend: Backend = DEFAULT_HTTP_BACKEND,
) -> WenzhengApp:
    """Build the bot: PTB application, persistence, rate limiter, services and handlers.

    `http_backend` picks PTB's transport: its httpx default or our aiohttp one (bot/http.py).
    """
    from handlers import register  # handlers depend on bot.app's Context; import late

    if not settings.token:
        raise ValueError("a bot token is required")
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.api_base_url)
        .base_file_url(settings.file_base_url)
        .context_types(PTBContextTypes(context=Context, bot_data=BotData))
        .persistence(SqlitePersistence(db, clock, persistence_interval))
        .defaults(Defaults(tzinfo=policy.calendar.tz))
        # Chats side by side, each chat's updates in order (bot/updates.py says why).
        .concurrent_updates(PerChatUpdateProcessor())
    )
    if rate_limiter and settings.rate_limit:
        builder = builder.rate_limiter(flood_limiter())
    builder = use_backend(builder, http_backend)
    app: WenzhengApp = builder.build()  # type: ignore[assignment]
    app.bot_data.services = Services(db=db, policy=policy, clock=clock, admins=settings.admins)
    sender = OutboxSender(app.bot, db, policy, clock)
    app.bot_data.sender = sender
    db.commit_listeners.append(sender.wake)
    register(app)
    install_telemetry(app)  # counts and times every update for /metrics
    return app


async def set_commands(app: WenzhengApp) -> None:
    """Register the citizen commands with Telegram, per language."""
    commands = [
        ("new", N_("File a new message")),
        ("my", N_("My cases")),
        ("case", N_("Look up one of my cases")),
        ("language", N_("Choose the language")),
        ("help", N_("How this works")),
        ("cancel", N_("Stop what you are doing")),
    ]
    # Telegram keys command lists by two-letter language; Chinese readers get Simplified.
    for language, code in (("zh_Hans", None), ("zh_Hans", "zh"), ("en", "en")):
        t = translator(language)
        await app.bot.set_my_commands(
            [BotCommand(name, t.gettext(text)) for name, text in commands],
            scope=BotCommandScopeAllPrivateChats(),
            language_code=code,
        )


async def start(app: WenzhengApp, *, polling: bool = True, poll_timeout: int = 10) -> None:
    """Start everything: PTB, policy units, commands, the outbox sender and polling."""
    data = app.bot_data
    await app.initialize()
    assert data.services is not None and data.sender is not None
    await use_cases.setup_policy_units(data.services)
    try:
        await set_commands(app)
    except TelegramError as error:
        # The command menu is a convenience; a Bot API hiccup must not keep the bot down.
        logger.warning("command menu not set (%s); commands still work", error)
    data.stop_event.clear()
    data.tasks.append(asyncio.create_task(data.sender.run(data.stop_event), name="outbox"))
    await app.start()
    schedule(app)
    watch_calendar(app)
    if polling:
        # Not PTB's Updater: it confirms updates before they are handled (see bot.polling).
        # As PTB's Updater does: a webhook left from webhook mode would refuse polling.
        await app.bot.delete_webhook()
        data.polling_stop.clear()
        data.poller = asyncio.create_task(
            poll(app, data.polling_stop, long_poll=poll_timeout, allowed_updates=ALLOWED_UPDATES),
            name="polling",
        )
    logger.info("bot started as @%s", app.bot.username)


async def stop(app: WenzhengApp) -> None:
    """Stop cleanly: no new updates, the update in flight finishes, state is flushed."""
    data = app.bot_data
    if data.poller is not None:
        data.polling_stop.set()
        await data.poller  # the batch being handled finishes; nothing new is fetched
        data.poller = None
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()  # waits for the handlers still running
    data.stop_event.set()
    for task in data.tasks:
        await task
    data.tasks.clear()
    await app.shutdown()  # flushes persistence
    logger.info("bot stopped")


async def run_polling(settings: Settings, policy: Policy, clock: Clock) -> None:
    """`wenzheng run`: poll until SIGTERM or SIGINT, then shut down cleanly."""
    db = Database(settings.database)
    await db.connect()
    app = create_application(settings, policy=policy, clock=clock, db=db)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    health = None
    try:
        await start(app)
        if settings.metrics_port is not None:
            from bot.web import listen_address, serve_health  # bot.web imports this module

            host, _ = listen_address(settings.listen)
            health = await serve_health(app, host, settings.metrics_port)
        signalled = asyncio.ensure_future(stopping.wait())
        poller = app.bot_data.poller
        # Polling only ends by itself on a fatal error (a revoked token): exit with it.
        await asyncio.wait({signalled, *([poller] if poller else [])},
                           return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        if stopping.is_set():
            logger.info("signal received, shutting down")
    finally:
        if health is not None:
            await health.cleanup()
        await stop(app)
        await db.close()


def update_label(update: object) -> str:
    """An update's id for log lines."""
    return str(update.update_id) if isinstance(update, Update) else "-"
