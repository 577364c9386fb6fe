"""Typed answers in groups: a button asks for text with ForceReply, the reply completes it.

The pending action lives in the person's (persisted) user data, keyed to the prompt
message, so a reply to anything else is never mistaken for it.
"""

from __future__ import annotations

import html
from typing import Any

from telegram import ForceReply, Message, Update
from telegram.constants import ParseMode

from bot.app import Context
from bot.services import Attachment


async def ask_for_text(
    update: Update, context: Context, action: str, number: str, prompt: str, **extra: Any
) -> Message | None:
    """Send a ForceReply prompt to the person who pressed; remember what the reply is for."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or user is None or context.user_data is None:
        return None
    # The mention makes the selective ForceReply open for this person only.
    mention = f'<a href="tg://user?id={user.id}">{html.escape(user.first_name)}</a>'
    message = await context.bot.send_message(
        chat.id,
        f"{mention} ✍️ <b>{html.escape(number)}</b> · {prompt}",
        parse_mode=ParseMode.HTML,
        reply_markup=ForceReply(selective=True),
    )
    context.user_data["pending"] = {
        "action": action,
        "number": number,
        "chat": chat.id,
        "prompt": message.message_id,
        **extra,
    }
    return message


def pending_for(update: Update, context: Context) -> dict[str, Any] | None:
    """The pending action this message answers (a reply to its prompt), if any."""
    message = update.effective_message
    if message is None or context.user_data is None or message.reply_to_message is None:
        return None
    pending = context.user_data.get("pending")
    if (
        isinstance(pending, dict)
        and pending.get("chat") == message.chat_id
        and pending.get("prompt") == message.reply_to_message.message_id
    ):
        return pending
    return None


def text_and_files(message: Message) -> tuple[str, tuple[Attachment, ...]]:
    """The words of a reply (text or caption) and any photo or document with it."""
    files: list[Attachment] = []
    if message.photo:
        photo = message.photo[-1]
        files.append(
            Attachment(
                "photo", photo.file_id, photo.file_unique_id, None, "image/jpeg", photo.file_size
            )
        )
    if message.document:
        doc = message.document
        files.append(
            Attachment(
                "document",
                doc.file_id,
                doc.file_unique_id,
                doc.file_name,
                doc.mime_type,
                doc.file_size,
            )
        )
    return (message.text or message.caption or "").strip(), tuple(files)
