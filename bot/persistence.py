"""PTB persistence on our SQLite file: conversation states and per-user drafts survive a
restart, so a citizen halfway through /new never has to start over."""

from __future__ import annotations

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
        await sessions.save_conversation(
            self._db, name, json.dumps(list(key)), new_state, self._now()
        )

    async def update_user_data(self, user_id: int, data: dict[str, Any]) -> None:
        """Store a user's data."""
        await sessions.save_user_session(self._db, user_id, data, self._now())

    async def drop_user_data(self, user_id: int) -> None:
        """Forget a user's data."""
        await sessions.save_user_session(self._db, user_id, None, self._now())

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
