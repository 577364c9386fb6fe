"""PTB persistence on our SQLite file: conversation states and per-user drafts survive a
restart, so a citizen halfway through /new never has to start over."""

from __future__ import annotations

import asyncio
import json
from copy import deepcopy
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from bot.clock import Clock
from storage import sessions
from storage.db import Database, to_db

# PTB's own aliases live in a private module; these are the same shapes.
ConversationKey = tuple[int | str, ...]
ConversationDict = dict[ConversationKey, object]
CDCData = tuple[list[tuple[str, float, dict[str, Any]]], dict[str, str]]


class SqlitePersistence(BasePersistence[dict[str, Any], dict[str, Any], dict[str, Any]]):
    """Stores user data and conversation states; chat and bot data are not kept."""

    def __init__(self, db: Database, clock: Clock, update_interval: float = 1.0) -> None:
        # A short interval: PTB writes only what changed, and a crash loses at most this
        # much of a conversation.
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=True, callback_data=False
            ),
            update_interval=update_interval,
        )
        self._db = db
        self._clock = clock
        self._conversations: dict[str, ConversationDict] = {}
        # PTB calls update_* once per changed user and conversation, side by side; they
        # are written together, one transaction per round instead of one per call.
        self._pending_conversations: dict[tuple[str, str], object | None] = {}
        self._pending_users: dict[int, dict[str, Any] | None] = {}
        self._round: asyncio.Future[None] | None = None
        self._writing: set[asyncio.Task[None]] = set()  # held, so none is collected mid-way

    def _now(self) -> int:
        return to_db(self._clock.now()) or 0

    async def get_user_data(self) -> dict[int, dict[str, Any]]:
        """All users' stored data."""
        return await sessions.load_user_sessions(self._db)

    async def get_chat_data(self) -> dict[int, dict[str, Any]]:
        """Chat data is not stored."""
        return {}

    async def get_bot_data(self) -> dict[str, Any]:
        """Bot data is not stored."""
        return {}

    async def get_callback_data(self) -> CDCData | None:
        """Arbitrary callback data is not used."""
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        """The stored states of one conversation handler."""
        stored = await sessions.load_conversations(self._db, name)
        states: ConversationDict = {tuple(json.loads(key)): state for key, state in stored.items()}
        self._conversations[name] = states
        return deepcopy(states)

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        """Store one conversation's new state (None ends it)."""
        known = self._conversations.setdefault(name, {})
        if known.get(key) == new_state:
            return
        if new_state is None:
            known.pop(key, None)
        else:
            known[key] = new_state
        await self._write(conversation=(name, json.dumps(list(key)), new_state))

    async def update_user_data(self, user_id: int, data: dict[str, Any]) -> None:
        """Store a user's data."""
        await self._write(user=(user_id, data))

    async def drop_user_data(self, user_id: int) -> None:
        """Forget a user's data."""
        await self._write(user=(user_id, None))

    async def _write(
        self,
        conversation: tuple[str, str, object | None] | None = None,
        user: tuple[int, dict[str, Any] | None] | None = None,
    ) -> None:
        """Queue a write for this round; return once the round's transaction committed."""
        if conversation is not None:
            name, key, state = conversation
            self._pending_conversations[(name, key)] = state
        if user is not None:
            self._pending_users[user[0]] = user[1]
        if self._round is None:
            loop = asyncio.get_running_loop()
            self._round = loop.create_future()
            # Runs after the other update_* calls PTB started together with this one
            # have queued theirs (their first steps are already scheduled).
            loop.call_soon(self._start_round)
        await asyncio.shield(self._round)

    def _start_round(self) -> None:
        round_, self._round = self._round, None
        conversations = [(n, k, s) for (n, k), s in self._pending_conversations.items()]
        users = list(self._pending_users.items())
        self._pending_conversations, self._pending_users = {}, {}
        assert round_ is not None
        task = asyncio.ensure_future(
            sessions.save_sessions(self._db, conversations, users, self._now())
        )
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        task.add_done_callback(lambda done: _settle(round_, done))

    async def update_chat_data(self, chat_id: int, data: dict[str, Any]) -> None:
        """Chat data is not stored."""

    async def update_bot_data(self, data: dict[str, Any]) -> None:
        """Bot data is not stored."""

    async def update_callback_data(self, data: CDCData) -> None:
        """Arbitrary callback data is not used."""

    async def drop_chat_data(self, chat_id: int) -> None:
        """Chat data is not stored."""

    async def refresh_user_data(self, user_id: int, user_data: dict[str, Any]) -> None:
        """Nothing else writes user data, so there is nothing to refresh."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[str, Any]) -> None:
        """Chat data is not stored."""

    async def refresh_bot_data(self, bot_data: dict[str, Any]) -> None:
        """Bot data is not stored."""

    async def flush(self) -> None:
        """Every update was written when it happened; nothing is buffered."""


def _settle(round_: asyncio.Future[None], done: asyncio.Future[None]) -> None:
    """Pass the round's outcome to everyone waiting for it."""
    if done.cancelled():
        round_.cancel()
    elif done.exception() is not None:
        round_.set_exception(done.exception())  # type: ignore[arg-type]
        round_.exception()  # retrieved here; each waiter re-raises it
    else:
        round_.set_result(None)
