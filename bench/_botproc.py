"""The bot side of the intake and chain benchmarks, in a process of its own.

    python -m bench._botproc --kind wenzheng|echo --token T --base-url U --file-url F ...

The benchmark's driver runs the simulator and the simulated people; the bot runs here, so
`time.process_time()` counts the bot's CPU alone (in one process it would also count the
simulator's HTTP server and the driver). Lines on stdin/stdout, one JSON object each:

    bot -> {"ready": true}             polling, set up (groups bound, units, liaisons)
    driver -> "go"                     the measured window starts (CPU, counters, profile)
    bot -> {"measuring": true}         the driver starts sending only after this
    driver -> "stop"                   the window ends
    bot -> {"cpu_s": ..., ...}         figures of the window; then the bot shuts down
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.http import BACKENDS, Backend, use_backend

logger = logging.getLogger("bench.bot")

FIRST_GROUP = -1000  # before every handler of either bot
LAST_GROUP = 1000  # after every handler


class Stopwatch:
    """Handler latency of every update: from its first handler group to its last."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.seconds: list[float] = []
        self.by_type: dict[str, int] = {}
        self.measuring = False

    async def first(self, update: object, _context: object) -> None:
        """Stamp the start (only inside the measured window)."""
        if self.measuring and isinstance(update, Update):
            self.started[update.update_id] = time.perf_counter()

    async def last(self, update: object, _context: object) -> None:
        """Record the time the handlers took."""
        if not isinstance(update, Update):
            return
        started = self.started.pop(update.update_id, None)
        if started is not None:
            self.seconds.append(time.perf_counter() - started)
            kind = "callback_query" if update.callback_query else "message"
            self.by_type[kind] = self.by_type.get(kind, 0) + 1

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Bracket every handler group of the application."""
        app.add_handler(TypeHandler(Update, self.first), group=FIRST_GROUP)
        app.add_handler(TypeHandler(Update, self.last), group=LAST_GROUP)


async def echo(update: Update, _context: object) -> None:
    """The bare echo bot: answer every text with itself."""
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text)


def echo_application(args: argparse.Namespace) -> Application[Any, Any, Any, Any, Any, Any]:
    """A bare PTB bot with nothing but the transport chosen for the benchmark."""
    builder = ApplicationBuilder().token(args.token).base_url(args.base_url)
    builder = use_backend(builder.base_file_url(args.file_url), args.backend)
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return app


async def start_echo(args: argparse.Namespace, watch: Stopwatch) -> Any:
    """Start the echo (or flow) bot; returns a coroutine function that stops it."""
    app = echo_application(args) if args.kind == "echo" else flow_application(args)
    watch.install(app)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=10)

    async def stop() -> None:
        assert app.updater is not None
        await app.updater.stop()
        await app.stop()
        await app.shutdown()

    return stop


def flow_application(args: argparse.Namespace) -> Application[Any, Any, Any, Any, Any, Any]:
    """The framework's ceiling for a quick filing: a bare PTB bot making the same Bot API
    calls with the same texts and keyboards as Wenzheng's quick filing (the category and
    district questions, the summary, "filed as …" and the desk's card), with PTB's typed
    methods and its own concurrent processing (16, as Wenzheng), and nothing else: no
    database, no persistence, no outbox, no checks."""
    from bot.config import EXAMPLE_POLICY, load_policy
    from bot.i18n import translator

    policy = load_policy(EXAMPLE_POLICY)
    language = "zh_Hans"
    g = translator(language).gettext
    desk = int(json.loads(args.setup)["chats"]["dispatch"]) if args.setup else 0

    def grid(buttons: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
        return InlineKeyboardMarkup([*rows, [InlineKeyboardButton(g("Cancel"),
                                                                  callback_data="f:x")]])

    categories = grid([InlineKeyboardButton(c.name_in(language), callback_data=f"f:c:{c.code}")
                       for c in policy.categories.values()])
    districts = grid([InlineKeyboardButton(d.name_in(language), callback_data=f"f:d:{d.code}")
                      for d in policy.districts.values()])
    summary = InlineKeyboardMarkup([
        [InlineKeyboardButton("✅ " + g("Submit"), callback_data="f:ok")],
        [InlineKeyboardButton("✏️ " + g("Edit"), callback_data="f:e"),
         InlineKeyboardButton("✖️ " + g("Cancel"), callback_data="f:x")],
    ])
    card = InlineKeyboardMarkup([[InlineKeyboardButton(g("Routine"), callback_data="d:t:1:r"),
                                  InlineKeyboardButton(g("Coordinated"), callback_data="d:t:1:c")],
                                 [InlineKeyboardButton(g("Other unit…"), callback_data="d:u:1:0")]])
    drafts: dict[int, dict[str, str]] = {}
    numbers = iter(range(1, 1_000_000))

    async def text(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        drafts[message.chat_id] = {"text": message.text}
        await message.reply_text(
            g("I can file this as a message to the city. What is it about? Please choose a "
              "category."), reply_markup=categories)

    async def button(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None and query.message is not None
        draft = drafts.setdefault(query.message.chat.id, {})
        if query.data.startswith("f:c:"):
            draft["category"] = query.data[4:]
            await query.answer()
            name = policy.categories[draft["category"]].name_in(language)
            await query.edit_message_text(
                g("Category: {name}").format(name=name) + "\n\n"
                + g("Where is it? Please choose the district."),
                parse_mode=ParseMode.HTML, reply_markup=districts)
        elif query.data.startswith("f:d:"):
            draft["district"] = query.data[4:]
            await query.answer()
            lines = ["<b>" + g("Please check your message") + "</b>", "",
                     g("Category") + ": " + policy.categories[draft["category"]].name_in(language),
                     g("District") + ": " + policy.districts[draft["district"]].name_in(language),
                     "", draft.get("text", "")]
            await query.edit_message_text("\n".join(lines), parse_mode=ParseMode.HTML,
                                          reply_markup=summary)
        elif query.data == "f:ok":
            number = f"{policy.case_prefix}2026-{next(numbers):06d}"
            await query.answer(g("Submitted."))
            await query.edit_message_reply_markup(None)
            await query.message.chat.send_message(
                "✅ " + g("Your message has been filed as <b>{number}</b>.").format(
                    number=number), parse_mode=ParseMode.HTML)
            if desk:
                await query.get_bot().send_message(
                    desk, f"<b>{number}</b>\n{draft.get('text', '')}",
                    parse_mode=ParseMode.HTML, reply_markup=card)
            drafts.pop(query.message.chat.id, None)

    builder = ApplicationBuilder().token(args.token).base_url(args.base_url)
    builder = use_backend(builder.base_file_url(args.file_url), args.backend)
    app = builder.concurrent_updates(16).build()
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text))
    app.add_handler(CallbackQueryHandler(button))
    return app


async def start_wenzheng(args: argparse.Namespace, watch: Stopwatch) -> Any:
    """Start the real application on a real SQLite file, with the groups bound."""
    from bench._setup import prepare
    from bot import app as bot_app
    from bot.clock import Clock
    from bot.config import EXAMPLE_POLICY, Settings, load_policy
    from storage.db import Database

    policy = load_policy(EXAMPLE_POLICY)
    settings = Settings(
        token=args.token,
        api_base_url=args.base_url,
        file_base_url=args.file_url,
        database=Path(args.db),
    )
    db = Database(settings.database)
    await db.connect()
    app = bot_app.create_application(
        settings,
        policy=policy,
        clock=Clock(),
        db=db,
        rate_limiter=False,
        http_backend=args.backend,
    )
    watch.install(app)
    await bot_app.start(app, poll_timeout=10)
    assert app.bot_data.services is not None
    await prepare(app.bot_data.services, json.loads(args.setup) if args.setup else {})

    async def stop() -> None:
        await bot_app.stop(app)
        await db.close()

    return stop


def percentile(values: list[float], share: float) -> float | None:
    """The value below which `share` of the values lie (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[rank]


def say(payload: dict[str, Any]) -> None:
    """One line to the driver."""
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    watch = Stopwatch()
    stop = await (start_wenzheng if args.kind == "wenzheng" else start_echo)(args, watch)
    say({"ready": True, "pid": os.getpid()})
    line = await asyncio.to_thread(sys.stdin.readline)
    if line.strip() != "go":
        await stop()
        return
    # CPU time, not wall time: on a shared machine waiting is noise, CPU is the cost.
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    watch.measuring = True
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    say({"measuring": True})  # the driver sends nothing before this
    line = await asyncio.to_thread(sys.stdin.readline)
    # The driver stops when it has seen the last reply; that update's handler may still be
    # finishing (a reply goes out before the handler returns). Let it end inside the window.
    for _ in range(1000):
        if not watch.started:
            break
        await asyncio.sleep(0.01)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    watch.measuring = False
    say(
        {
            "cpu_s": cpu,
            "wall_s": wall,
            "updates": len(watch.seconds),
            "by_type": watch.by_type,
            "latency_p50_s": percentile(watch.seconds, 0.50),
            "latency_p99_s": percentile(watch.seconds, 0.99),
            "latency_max_s": max(watch.seconds, default=None),
        }
    )
    await stop()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("wenzheng", "echo", "flow"), required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--file-url", required=True)
    parser.add_argument("--backend", choices=BACKENDS, default="httpx")
    parser.add_argument("--db", help="SQLite file (wenzheng)")
    parser.add_argument("--setup", help="JSON: chats to bind, units to add (wenzheng, flow)")
    parser.add_argument("--profile", help="write a cProfile of the measured window here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    arguments = parse()
    backend: Backend = arguments.backend
    arguments.backend = backend
    asyncio.run(main(arguments))
