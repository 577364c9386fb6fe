"""Bot API calls whose answer is not turned into PTB objects.

PTB's typed methods parse every answer into a `Message`, keyboard and all; a filing step
or an outbox notice only ever needs the new message's id, if anything. In a burst of
filings that parsing was a tenth of the bot's CPU (docs/performance.md).
`Bot.do_api_request` returns the answer as it came, with the same defaults, rate limiter,
timeouts and errors, and warns that a typed method exists; that warning is the point
here, so it is silenced for these endpoints (pyproject.toml does the same for the tests,
which turn warnings into errors).
"""

from __future__ import annotations

import warnings
from typing import Any

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.warnings import PTBUserWarning

QUIET_ENDPOINTS = ("send_message", "edit_message_text", "edit_message_reply_markup")
warnings.filterwarnings(
    "ignore",
    message=r"Please use 'Bot\.({})' instead".format("|".join(QUIET_ENDPOINTS)),
    category=PTBUserWarning,
)


async def send_html(
    bot: Bot, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> int:
    """Send an HTML message; returns its id."""
    fields: dict[str, Any] = {"chat_id": chat_id, "text": text, "parse_mode": ParseMode.HTML}
    if keyboard is not None:
        fields["reply_markup"] = keyboard
    sent = await bot.do_api_request("send_message", api_kwargs=fields)
    return int(sent["message_id"])


async def edit_html(
    bot: Bot,
    chat_id: int,
    message_id: int,
    text: str,
    keyboard: InlineKeyboardMarkup | None = None,
) -> None:
    """Replace a message's text; its buttons become `keyboard` (none if None)."""
    fields: dict[str, Any] = {
        "chat_id": chat_id,
        "message_id": message_id,
        "text": text,
        "parse_mode": ParseMode.HTML,
    }
    if keyboard is not None:
        fields["reply_markup"] = keyboard
    await bot.do_api_request("edit_message_text", api_kwargs=fields)


async def drop_keyboard(bot: Bot, chat_id: int, message_id: int) -> None:
    """Take a message's buttons off."""
    await bot.do_api_request(
        "edit_message_reply_markup", api_kwargs={"chat_id": chat_id, "message_id": message_id}
    )
