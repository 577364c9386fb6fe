"""Thin Telegram adapters, one module per audience; `register` wires them in order."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import CallbackQueryHandler, MessageHandler, TypeHandler, filters


def register(app: Any) -> None:
    """Add every handler, in the order they are tried."""
    from handlers import admin, citizen, common, desk, reports, staff, unit

    # Group -2: one person flooding the bot is throttled here, before anything is written.
    app.add_handler(TypeHandler(Update, common.throttle), group=-2)
    # Group -1: the gatekeeper sees every update that passed and never stops it.
    app.add_handler(TypeHandler(Update, common.remember_user), group=-1)
    # Group 0: the audiences' handlers; the first that matches handles the update.
    # Staff first: /case serves staff and citizens alike.
    staff.register(app)
    desk.register(app)
    unit.register(app)
    citizen.register(app)
    admin.register(app)
    reports.register(app)
    # Last in group 0: whatever nobody handled.
    app.add_handler(
        MessageHandler(filters.ChatType.PRIVATE & filters.COMMAND, common.unknown_command)
    )
    app.add_handler(CallbackQueryHandler(common.stale_button))
    app.add_error_handler(common.on_error)
