"""The outbox sender: drains committed messages to Telegram, in order per chat.

A crash after a commit loses nothing: the rows are in the database and the sender
picks them up at start. Retryable failures (network, 5xx, 429) keep a row pending with
a back-off and hold back the rows after it in the same chat, so each chat reads in order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any

from aiolimiter import AsyncLimiter
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
from telegram.ext import AIORateLimiter

from bot import quiet
from bot.clock import Clock
from bot.domain.policy import Policy
from bot.i18n import translator
from handlers.render import MESSAGE_LIMIT, RenderContext, Rendered, render
from storage import delivery, directory
from storage.db import Database, to_db
from storage.delivery import PendingMessage, Recipient

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=5)
CAPTION_LIMIT = 1024
LANE_BATCH = 50  # rows a lane reads at a time
LOOK_INTERVAL = 0.02  # seconds between two looks at the outbox
DIGEST_SEPARATOR = "\n\n"
# Telegram's flood limits (its Bots FAQ): about 30 messages/s overall, 20/min per group,
# about 1/s per private chat after a short burst. Our buckets hold less than Telegram's:
# a request reaches Telegram later than our limiter let it go, by a delay that varies
# (hundreds of milliseconds on a loaded machine), and what is in flight must never meet
# a bucket that is already empty there. The overall rate also stays a little under 30.
OVERALL_PER_SECOND = 29.0
OVERALL_BURST = 10
GROUP_PER_MINUTE = 20.0
GROUP_BURST = 19
PRIVATE_PER_SECOND = 1.0
PRIVATE_BURST = 2
PRIVATE_IN_FLIGHT = 8  # private sends queued for the overall budget at once (see _pace)


def telegram_length(text: str) -> int:
    """Telegram counts UTF-16 code units; counted on the HTML, this errs on the safe side."""
    return len(text.encode("utf-16-le")) // 2


def is_plain(rendered: Rendered) -> bool:
    """A notice that may share a digest: text only, nothing to press or open."""
    return not (rendered.keyboard or rendered.photos or rendered.documents or rendered.attachments)


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


def flood_limiter() -> AIORateLimiter:
    """PTB's AIORateLimiter at about Telegram's rates, each bucket smaller than Telegram's.

    Smaller bursts cost little (a group's backlog drains one message, 3 s, later; the
    overall one a third of a second) and keep requests that arrive out of step with our
    clock from meeting a 429. Private chats are paced by the outbox sender, which is what
    sends them bursts; replies to a citizen's own messages come one at a time.
    """
    return AIORateLimiter(
        overall_max_rate=OVERALL_BURST,
        overall_time_period=OVERALL_BURST / OVERALL_PER_SECOND,
        group_max_rate=GROUP_BURST,
        group_time_period=GROUP_BURST * 60.0 / GROUP_PER_MINUTE,
    )


class OutboxSender:
    """Sends pending outbox rows; `wake()` after a commit makes it look at once.

    Each recipient with due rows gets a lane, a task that sends that chat's rows one after
    another; lanes run side by side, so a group waiting for its per-minute budget never
    holds up the rest, and the rate limiter decides who goes when.

    `digest`: when at least `digest_min` rows wait for the same group chat, consecutive
    plain notices (no buttons, no files, not a card that is edited later) go out as one
    message, up to Telegram's 4,096 characters. On by default: a group may receive 20
    messages a minute, so a backlog (the morning's overdue notices, a flood of cases) would
    otherwise reach it minutes late and push its cards out of sight; when nothing is
    waiting, each notice still goes out alone, as soon as it is committed.
    """

    def __init__(
        self,
        bot: Bot,
        db: Database,
        policy: Policy,
        clock: Clock,
        *,
        lanes: int = 256,
        idle_interval: float = 1.0,
        digest: bool = True,
        digest_min: int = 3,
    ) -> None:
        self.bot = bot
        self.db = db
        self.policy = policy
        self.clock = clock
        self.digest = digest
        self.digest_min = digest_min
        self._wakeup = asyncio.Event()
        self._max_lanes = lanes
        self._lanes: dict[tuple[str, str | None], asyncio.Task[None]] = {}
        self._idle_interval = idle_interval
        self._private_pace: dict[int, AsyncLimiter] = {}
        self._private_in_flight = asyncio.Semaphore(PRIVATE_IN_FLIGHT)
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.digests = 0  # messages that carried more than one row
        self.results: Counter[str] = Counter()  # deliveries by result, for /metrics

    def wake(self) -> None:
        """Something was committed: look at the outbox now."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Start lanes for due rows until `stop` is set, then let each lane finish the
        row it is sending; survive every error of a single look."""
        try:
            while not stop.is_set():
                self._wakeup.clear()
                try:
                    await self._start_lanes(stop)
                except Exception:
                    logger.exception("outbox round failed; trying again shortly")
                waiter = asyncio.ensure_future(self._wakeup.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self._idle_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in (waiter, stopper):
                    task.cancel()
                # Every commit wakes us, our own included: look at most ~50 times a second.
                await asyncio.sleep(LOOK_INTERVAL)
        finally:
            if self._lanes:
                await asyncio.gather(*self._lanes.values(), return_exceptions=True)

    async def _start_lanes(self, stop: asyncio.Event) -> None:
        free = self._max_lanes - len(self._lanes)
        if free <= 0:
            return
        now_db = to_db(self.clock.now()) or 0
        for recipient in await delivery.due_recipients(self.db, now_db, free + len(self._lanes)):
            if recipient in self._lanes:
                continue
            if len(self._lanes) >= self._max_lanes:
                break
            self._lanes[recipient] = asyncio.create_task(
                self._lane(recipient, stop), name=f"outbox {recipient[0]}:{recipient[1]}"
            )

    async def _lane(self, recipient: tuple[str, str | None], stop: asyncio.Event) -> None:
        """Send one chat's due rows in order until none is left or one must wait."""
        failed = False
        try:
            while not stop.is_set():
                now_db = to_db(self.clock.now()) or 0
                rows = await delivery.due_in_order(self.db, *recipient, now_db, LANE_BATCH)
                if not rows or not await self._send_in_order(rows, stop):
                    return
        except Exception:
            failed = True  # the next look (a commit, or the idle interval) tries again
            logger.exception("outbox lane %s:%s failed; trying again shortly", *recipient)
        finally:
            del self._lanes[recipient]
            if not failed:
                self.wake()  # rows committed while this lane was finishing get a new lane

    async def _send_in_order(self, rows: list[PendingMessage], stop: asyncio.Event) -> bool:
        """Send `rows` (one chat's, oldest first); False when the chat must wait."""
        rows = await self._coalesce_cards(rows)
        backlog = self.digest and len(rows) >= self.digest_min
        index = 0
        while index < len(rows) and not stop.is_set():
            if backlog:
                taken = await self._deliver_digest(rows[index:])
                if taken is None:
                    return False
                if taken:
                    index += taken
                    continue
            if not await self._deliver(rows[index]):
                return False
            index += 1
        return True

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

    @asynccontextmanager
    async def _pace(self, recipient: Recipient) -> AsyncIterator[None]:
        """Private chats wait for their own bucket (PTB's limiter keeps the overall and the
        group ones): a citizen with five notices waiting gets them about a second apart.

        And only a few private sends at a time queue for the overall budget. A group may
        send 20 a minute and its next message is requested only once the last one is
        answered (order per chat), so a group stuck behind hundreds of citizens' messages
        loses budget it never regains; a citizen loses nothing by waiting a moment."""
        if recipient.is_group:
            yield
            return
        if len(self._private_pace) > 1024:
            # Forget chats whose bucket has refilled: a new one starts just as full.
            for chat_id, bucket in list(self._private_pace.items()):
                if bucket.has_capacity(bucket.max_rate):
                    del self._private_pace[chat_id]
        bucket = self._private_pace.get(recipient.chat_id)
        if bucket is None:
            bucket = AsyncLimiter(PRIVATE_BURST, PRIVATE_BURST / PRIVATE_PER_SECOND)
            self._private_pace[recipient.chat_id] = bucket
        async with bucket, self._private_in_flight:
            yield

    async def _context(self, recipient: Recipient) -> RenderContext:
        return RenderContext(
            translator(recipient.language),
            self.policy,
            self.db,
            await directory.unit_names(self.db),
        )

    async def _deliver_digest(self, rows: list[PendingMessage]) -> int | None:
        """Send the leading plain notices of `rows` as one message to their group.

        Returns how many rows it delivered (0: fewer than two could be combined, send the
        first alone), or None when the chat must wait."""
        recipient = await delivery.resolve_recipient(
            self.db, rows[0].recipient_kind, rows[0].recipient_ref
        )
        if recipient is None or not recipient.is_group:
            return 0
        ctx = await self._context(recipient)
        taken: list[PendingMessage] = []
        texts: list[str] = []
        length = -len(DIGEST_SEPARATOR)
        for row in rows:
            if row.card_key is not None:
                break  # a card is edited in place later: it keeps a message of its own
            try:
                rendered = await render(ctx, row.key, row.params)
            except Exception:
                break  # the single path logs it and marks the row failed
            if not is_plain(rendered):
                break
            size = telegram_length(rendered.text) + telegram_length(DIGEST_SEPARATOR)
            if length + size > MESSAGE_LIMIT:
                break
            length += size
            taken.append(row)
            texts.append(rendered.text)
        if len(taken) < 2:
            return 0
        outcome = await self._deliver_rows(taken, recipient, Rendered(DIGEST_SEPARATOR.join(texts)))
        if outcome is None:
            return 0  # Telegram refused the combined text: send them one by one
        if outcome:
            self.digests += 1
            return len(taken)
        return None

    async def _deliver(self, row: PendingMessage) -> bool:
        """Send one row. False when the chat must wait (the row stays pending)."""
        recipient = await delivery.resolve_recipient(self.db, row.recipient_kind, row.recipient_ref)
        if recipient is None:
            await self._retry(row, "recipient group is not bound yet")
            return False
        try:
            rendered = await render(await self._context(recipient), row.key, row.params)
        except Exception as error:
            logger.exception("outbox %s: cannot render %s", row.id, row.key)
            await delivery.mark_failed(self.db, row.id, f"render: {error!r}")
            self.failed += 1
            self.results["render"] += 1
            return True
        outcome = await self._deliver_rows([row], recipient, rendered)
        assert outcome is not None, "a single row is never sent back to be split"
        return outcome

    async def _deliver_rows(
        self, rows: list[PendingMessage], recipient: Recipient, rendered: Rendered
    ) -> bool | None:
        """Send `rendered` for `rows` (one row, or a digest of several) and record the
        result on all of them. False when the chat must wait (the first row carries the
        retry; the others wait behind it); None when Telegram refused a digest's text."""
        row = rows[0]
        try:
            async with self._pace(recipient):
                message_id = await self._send(row, recipient.chat_id, rendered)
        except RetryAfter as error:
            self.results["429"] += 1
            await self._retry(row, "429", seconds=retry_after_seconds(error))
            return False
        except ChatMigrated as error:
            logger.warning("chat %s became supergroup %s", recipient.chat_id, error.new_chat_id)
            await delivery.migrate_chat(self.db, recipient.chat_id, error.new_chat_id)
            moved = Recipient(int(error.new_chat_id), recipient.language, recipient.is_group)
            return await self._deliver_rows(rows, moved, rendered)
        except Forbidden as error:
            for each in rows:
                await delivery.mark_failed(self.db, each.id, f"403: {error.message}")
            if row.recipient_kind == "user":
                await delivery.mark_user_blocked(self.db, recipient.chat_id)
            logger.warning("outbox %s: forbidden (%s)", row.id, error.message)
            self.failed += len(rows)
            self.results["blocked"] += len(rows)
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
            if len(rows) > 1:
                logger.warning("outbox %s: digest refused (%s)", row.id, error.message)
                return None
            logger.error("outbox %s (%s): %s", row.id, row.key, error.message)
            await delivery.mark_failed(self.db, row.id, f"400: {error.message}")
            self.failed += 1
            self.results["bad_request"] += 1
            return True
        except (NetworkError, TelegramError) as error:
            self.results[failure_kind(error)] += 1
            await self._retry(row, f"network: {error}")
            return False
        await delivery.mark_sent_together(
            self.db, rows, recipient.chat_id, message_id, to_db(self.clock.now()) or 0
        )
        self.sent += len(rows)
        self.results["ok"] += len(rows)
        return True

    async def _send(self, row: PendingMessage, chat_id: int, rendered: Rendered) -> int | None:
        if row.card_key:
            existing = await delivery.card_message(self.db, row.card_key)
            if existing is not None and existing[0] == chat_id:
                await quiet.edit_html(
                    self.bot, chat_id, existing[1], rendered.text, rendered.keyboard
                )
                return existing[1]
        if rendered.photos:
            return await self._send_with_photo(row, chat_id, rendered)
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
        message_id = await quiet.send_html(self.bot, chat_id, rendered.text, rendered.keyboard)
        for attachment in rendered.attachments:
            await self._send_attachment(chat_id, attachment)
        return message_id

    async def _send_with_photo(
        self, row: PendingMessage, chat_id: int, rendered: Rendered
    ) -> int | None:
        """A report: the chart with the text as its caption (or the text first when too
        long for a caption), then each document (the XLSX). Each part is recorded as it
        goes out, so a retry after a failed part sends only the parts still missing."""
        caption = rendered.text if len(rendered.text) <= CAPTION_LIMIT else None
        name, content = rendered.photos[0]
        parts: list[Callable[[], Awaitable[Message]]] = []
        if caption is None:
            parts.append(partial(self.bot.send_message, chat_id, rendered.text, parse_mode="HTML"))
        parts.append(
            partial(
                self.bot.send_photo,
                chat_id,
                InputFile(content, filename=name),
                caption=caption,
                parse_mode="HTML",
            )
        )
        for name, content in rendered.documents:
            parts.append(
                partial(self.bot.send_document, chat_id, InputFile(content, filename=name))
            )
        first = row.first_message_id
        for index, part in enumerate(parts[row.parts_sent :], start=row.parts_sent):
            message = await part()
            if first is None:
                first = message.message_id
            if index + 1 < len(parts):
                await delivery.mark_part_sent(self.db, row, index + 1, chat_id, first)
        return first

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
