"""The outbox sender: drains committed messages to Telegram, in order per chat.

A crash after a commit loses nothing: the rows are in the database and the sender
picks them up at start. Retryable failures (network, 5xx, 429) keep a row pending with
a back-off and hold back the rows after it in the same chat, so each chat reads in order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, OrderedDict
from datetime import timedelta
from typing import Any

from telegram import Bot, InputFile, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.clock import Clock
from bot.domain.policy import Policy
from bot.i18n import translator
from handlers.render import RenderContext, Rendered, render
from storage import delivery, directory
from storage.db import Database, to_db
from storage.delivery import PendingMessage

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=5)
CAPTION_LIMIT = 1024


def failure_kind(error: TelegramError) -> str:
    """'5xx' when Telegram answered with a server error, 'network' when no answer came.

    PTB raises NetworkError for both; only the transport's failures carry a cause."""
    if isinstance(error, NetworkError) and not isinstance(error, TimedOut):
        return "network" if error.__cause__ is not None else "5xx"
    return "network"


def retry_after_seconds(error: RetryAfter) -> float:
    """Seconds to wait, whether PTB gives an int or a timedelta."""
    value: Any = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class OutboxSender:
    """Sends pending outbox rows; `wake()` after a commit makes it look at once."""

    def __init__(
        self,
        bot: Bot,
        db: Database,
        policy: Policy,
        clock: Clock,
        *,
        concurrency: int = 16,
        idle_interval: float = 1.0,
    ) -> None:
        self.bot = bot
        self.db = db
        self.policy = policy
        self.clock = clock
        self._wakeup = asyncio.Event()
        self._concurrency = asyncio.Semaphore(concurrency)
        self._idle_interval = idle_interval
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.results: Counter[str] = Counter()  # deliveries by result, for /metrics

    def wake(self) -> None:
        """Something was committed: look at the outbox now."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set; survive every error of a single round."""
        while not stop.is_set():
            self._wakeup.clear()
            try:
                busy = await self.drain_once()
            except Exception:
                logger.exception("outbox round failed; trying again shortly")
                busy = 0
            if busy:
                continue
            waiter = asyncio.ensure_future(self._wakeup.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=self._idle_interval, return_when=asyncio.FIRST_COMPLETED
            )
            for task in (waiter, stopper):
                task.cancel()

    async def drain_once(self) -> int:
        """One round: send what is due; returns how many rows were handled."""
        now_db = to_db(self.clock.now()) or 0
        rows = await delivery.pending(self.db, now_db)
        if not rows:
            return 0
        by_recipient: OrderedDict[tuple[str, str | None], list[PendingMessage]] = OrderedDict()
        for row in rows:
            by_recipient.setdefault((row.recipient_kind, row.recipient_ref), []).append(row)
        results = await asyncio.gather(
            *(self._send_in_order(key, group) for key, group in by_recipient.items())
        )
        return sum(results)

    async def _send_in_order(
        self, recipient: tuple[str, str | None], rows: list[PendingMessage]
    ) -> int:
        async with self._concurrency:
            oldest = await delivery.oldest_pending_id(self.db, *recipient)
            if oldest is not None and oldest < rows[0].id:
                return 0  # an earlier row is waiting for its retry: keep the order
            rows = await self._coalesce_cards(rows)
            handled = 0
            for row in rows:
                done = await self._deliver(row)
                handled += 1
                if not done:
                    break
            return handled

    async def _coalesce_cards(self, rows: list[PendingMessage]) -> list[PendingMessage]:
        """Several refreshes of one card in a batch need one edit (cards render live)."""
        seen: set[str] = set()
        kept: list[PendingMessage] = []
        superseded: list[int] = []
        for row in rows:
            if row.card_key is None:
                kept.append(row)
            elif row.card_key in seen:
                superseded.append(row.id)
            else:
                seen.add(row.card_key)
                kept.append(row)
        await delivery.mark_superseded(self.db, superseded, to_db(self.clock.now()) or 0)
        return kept

    async def _deliver(self, row: PendingMessage) -> bool:
        """Send one row. False when the chat must wait (the row stays pending)."""
        recipient = await delivery.resolve_recipient(self.db, row.recipient_kind, row.recipient_ref)
        if recipient is None:
            await self._retry(row, "recipient group is not bound yet")
            return False
        ctx = RenderContext(
            translator(recipient.language),
            self.policy,
            self.db,
            await directory.unit_names(self.db),
        )
        try:
            rendered = await render(ctx, row.key, row.params)
        except Exception as error:
            logger.exception("outbox %s: cannot render %s", row.id, row.key)
            await delivery.mark_failed(self.db, row.id, f"render: {error!r}")
            self.failed += 1
            self.results["render"] += 1
            return True
        try:
            message_id = await self._send(row, recipient.chat_id, rendered)
        except RetryAfter as error:
            self.results["429"] += 1
            await self._retry(row, "429", seconds=retry_after_seconds(error))
            return False
        except ChatMigrated as error:
            logger.warning("chat %s became supergroup %s", recipient.chat_id, error.new_chat_id)
            await delivery.migrate_chat(self.db, recipient.chat_id, error.new_chat_id)
            return await self._deliver(row)
        except Forbidden as error:
            await delivery.mark_failed(self.db, row.id, f"403: {error.message}")
            if row.recipient_kind == "user":
                await delivery.mark_user_blocked(self.db, recipient.chat_id)
            logger.warning("outbox %s: forbidden (%s)", row.id, error.message)
            self.failed += 1
            self.results["blocked"] += 1
            return True
        except BadRequest as error:
            if "not modified" in error.message:
                await delivery.mark_sent(
                    self.db, row, recipient.chat_id, None, to_db(self.clock.now()) or 0
                )
                self.sent += 1
                self.results["ok"] += 1
                return True
            if row.card_key and (
                "to edit not found" in error.message or "can't be edited" in error.message
            ):
                await delivery.drop_card(self.db, row.card_key)
                return await self._deliver(row)
            logger.error("outbox %s (%s): %s", row.id, row.key, error.message)
            await delivery.mark_failed(self.db, row.id, f"400: {error.message}")
            self.failed += 1
            self.results["bad_request"] += 1
            return True
        except (NetworkError, TelegramError) as error:
            self.results[failure_kind(error)] += 1
            await self._retry(row, f"network: {error}")
            return False
        await delivery.mark_sent(
            self.db, row, recipient.chat_id, message_id, to_db(self.clock.now()) or 0
        )
        self.sent += 1
        self.results["ok"] += 1
        return True

    async def _send(self, row: PendingMessage, chat_id: int, rendered: Rendered) -> int | None:
        if row.card_key:
            existing = await delivery.card_message(self.db, row.card_key)
            if existing is not None and existing[0] == chat_id:
                await self.bot.edit_message_text(
                    rendered.text,
                    chat_id=chat_id,
                    message_id=existing[1],
                    parse_mode="HTML",
                    reply_markup=rendered.keyboard,
                )
                return existing[1]
        if rendered.photos:
            return await self._send_with_photo(chat_id, rendered)
        if rendered.documents and len(rendered.text) <= CAPTION_LIMIT:
            # A letter and its cover text go out as one message, so neither is lost alone.
            name, content = rendered.documents[0]
            message: Message = await self.bot.send_document(
                chat_id,
                InputFile(content, filename=name),
                caption=rendered.text,
                parse_mode="HTML",
                reply_markup=rendered.keyboard,
            )
            return message.message_id
        message = await self.bot.send_message(
            chat_id, rendered.text, parse_mode="HTML", reply_markup=rendered.keyboard
        )
        for attachment in rendered.attachments:
            await self._send_attachment(chat_id, attachment)
        return message.message_id

    async def _send_with_photo(self, chat_id: int, rendered: Rendered) -> int | None:
        """A report: the chart with the text as its caption (or the text first when too
        long for a caption), then each document (the XLSX)."""
        first: Message | None = None
        caption = rendered.text if len(rendered.text) <= CAPTION_LIMIT else None
        if caption is None:
            first = await self.bot.send_message(chat_id, rendered.text, parse_mode="HTML")
        name, content = rendered.photos[0]
        photo = await self.bot.send_photo(
            chat_id, InputFile(content, filename=name), caption=caption, parse_mode="HTML"
        )
        for name, content in rendered.documents:
            await self.bot.send_document(chat_id, InputFile(content, filename=name))
        return (first or photo).message_id

    async def _send_attachment(self, chat_id: int, attachment: dict[str, Any]) -> None:
        kind, file_id = attachment.get("kind"), attachment.get("file_id")
        try:
            if kind == "photo":
                await self.bot.send_photo(chat_id, file_id)
            elif kind == "voice":
                await self.bot.send_voice(chat_id, file_id)
            else:
                await self.bot.send_document(chat_id, file_id)
        except TelegramError as error:
            # The text went out; a lost attachment is logged rather than resending the text.
            logger.warning("attachment to %s not sent: %s", chat_id, error)

    async def _retry(self, row: PendingMessage, reason: str, seconds: float | None = None) -> None:
        if seconds is None:
            base = min(2 ** min(row.attempts, 8), MAX_BACKOFF.total_seconds())
            seconds = base * (0.5 + random.random() / 2)
        next_at = self.clock.now() + timedelta(seconds=seconds)
        await delivery.mark_retry(self.db, row.id, to_db(next_at) or 0, reason)
        self.retried += 1
        logger.info("outbox %s: retry in %.1fs (%s)", row.id, seconds, reason)
