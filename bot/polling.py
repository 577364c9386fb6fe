"""Long polling that confirms an update to Telegram only after it was handled.

PTB's Updater confirms a batch (by the next getUpdates' offset) as soon as it has queued
it, before any handler ran; a crash then loses every update fetched but not handled yet,
and a citizen's message vanishes without an answer. Here the offset moves past an update
only once `Application.process_update` is done with it, so after a crash Telegram
delivers it again; the processed-update ids of the services make the repeat change
nothing (at least once in, exactly once in effect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from telegram.error import InvalidToken, RetryAfter, TelegramError

logger = logging.getLogger(__name__)

MAX_BACKOFF = 30.0  # seconds between getUpdates attempts while Telegram keeps failing


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _backoff(failures: int, error: TelegramError) -> float:
    seconds = min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 6))
    logger.warning("Bot API call failed (%s); trying again in %.1fs", error, seconds)
    return seconds


async def poll(app: Any, stop: asyncio.Event, *, long_poll: int,
               allowed_updates: list[str]) -> None:
    """Fetch and handle updates one batch at a time until `stop` is set; the next
    getUpdates (which confirms the batch) waits until the whole batch is handled.

    A stop waits for the batch being handled, never for a long poll: updates fetched but
    not handled stay unconfirmed and come again at the next start.
    """
    offset = 0
    failures = 0
    while not stop.is_set():
        fetch = asyncio.ensure_future(
            app.bot.get_updates(offset=offset, timeout=long_poll, allowed_updates=allowed_updates)
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await fetch
            break
        try:
            updates = fetch.result()
        except InvalidToken:
            raise
        except RetryAfter as error:
            value = error.retry_after
            seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
            logger.warning("getUpdates: flood control, waiting %.0fs", seconds)
            await _pause(stop, seconds)
            continue
        except TelegramError as error:
            failures += 1
            await _pause(stop, _backoff(failures, error))
            continue
        failures = 0
        if updates:
            # Through the application's update processor, as PTB would: chats side by side,
            # each chat's updates in order. Handler errors go to the error handler.
            processor = app.update_processor
            await asyncio.gather(
                *(processor.process_update(update, app.process_update(update))
                  for update in updates)
            )
            offset = updates[-1].update_id + 1
    if offset:
        # Confirm what was handled, so a clean restart does not see it again.
        with contextlib.suppress(TelegramError):
            await app.bot.get_updates(offset=offset, timeout=0, allowed_updates=allowed_updates)
