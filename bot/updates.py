"""How updates are processed: concurrently across chats, in order within a chat.

PTB handles one update at a time unless told otherwise, so in a burst every citizen waits
for every Bot API round trip and every commit of everyone ahead of them. Its own
concurrent processing (`concurrent_updates(True)`) would let two updates of one chat race,
and a conversation (filing) must see a person's updates in the order they were sent. This
processor runs updates of different chats side by side and those of one chat one after
another, in arrival order (asyncio's locks and semaphores wake waiters first come, first
served).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

MAX_CONCURRENT_UPDATES = 16


def chat_key(update: object) -> int:
    """The chat an update belongs to (its user when there is no chat; 0 for neither)."""
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return 0


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """At most `max_concurrent_updates` at once; one chat's updates strictly in order."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}  # updates holding or waiting for each chat's lock

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the update's handlers once its chat's earlier updates are done."""
        key = chat_key(update)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[key] -= 1
            if not self._users[key]:  # forget idle chats: a city has many citizens
                del self._users[key]
                del self._locks[key]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""
