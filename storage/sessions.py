"""Conversation states and per-user session data (drafts), stored as JSON."""

from __future__ import annotations

import json
from typing import Any

from storage.db import Database, UnitOfWork


async def load_conversations(db: Database, name: str) -> dict[str, Any]:
    """All stored states of one conversation handler, by JSON key."""
    rows = await db.fetch_all("SELECT key, state FROM conversations WHERE name = ?", (name,))
    return {r[0]: json.loads(r[1]) for r in rows}


async def load_user_sessions(db: Database) -> dict[int, dict[str, Any]]:
    """Every user's session data."""
    rows = await db.fetch_all("SELECT user_id, data FROM user_sessions")
    return {int(r[0]): json.loads(r[1]) for r in rows}


ConversationWrite = tuple[str, str, Any]  # handler name, JSON key, state (None: ended)
SessionWrite = tuple[int, dict[str, Any] | None]  # user id, data (None: dropped)


async def save_sessions(
    db: Database,
    conversations: list[ConversationWrite],
    users: list[SessionWrite],
    now_db: int,
) -> None:
    """Store conversation states and users' session data, all in one transaction."""
    ended = [(name, key) for name, key, state in conversations if state is None]
    states = [(name, key, json.dumps(state), now_db)
              for name, key, state in conversations if state is not None]
    dropped = [(user_id,) for user_id, data in users if data is None]
    kept = [(user_id, json.dumps(data, ensure_ascii=False, default=str), now_db)
            for user_id, data in users if data is not None]

    async def body(uow: UnitOfWork) -> None:
        if ended:
            await uow.execute_many("DELETE FROM conversations WHERE name = ? AND key = ?", ended)
        if states:
            await uow.execute_many(
                "INSERT INTO conversations(name, key, state, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name, key) DO UPDATE SET state = excluded.state,"
                " updated_at = excluded.updated_at",
                states,
            )
        if dropped:
            await uow.execute_many("DELETE FROM user_sessions WHERE user_id = ?", dropped)
        if kept:
            await uow.execute_many(
                "INSERT INTO user_sessions(user_id, data, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(user_id) DO UPDATE SET data = excluded.data,"
                " updated_at = excluded.updated_at",
                kept,
            )
        await uow.commit()

    await db.run(body)
