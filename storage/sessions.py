"""Conversation states and per-user session data (drafts), stored as JSON."""

from __future__ import annotations

import json
from typing import Any

from storage.db import Database, UnitOfWork


async def load_conversations(db: Database, name: str) -> dict[str, Any]:
    """All stored states of one conversation handler, by JSON key."""
    rows = await db.fetch_all("SELECT key, state FROM conversations WHERE name = ?", (name,))
    return {r[0]: json.loads(r[1]) for r in rows}


async def save_conversation(db: Database, name: str, key: str, state: Any, now_db: int) -> None:
    """Store (or, with state None, forget) one conversation's state."""
    async def body(uow: UnitOfWork) -> None:
        if state is None:
            await uow.execute("DELETE FROM conversations WHERE name = ? AND key = ?", (name, key))
        else:
            await uow.execute(
                "INSERT INTO conversations(name, key, state, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name, key) DO UPDATE SET state = excluded.state,"
                " updated_at = excluded.updated_at",
                (name, key, json.dumps(state), now_db),
            )
        await uow.commit()

    await db.run(body)


async def load_user_sessions(db: Database) -> dict[int, dict[str, Any]]:
    """Every user's session data."""
    rows = await db.fetch_all("SELECT user_id, data FROM user_sessions")
    return {int(r[0]): json.loads(r[1]) for r in rows}


async def save_user_session(
    db: Database, user_id: int, data: dict[str, Any] | None, now_db: int
) -> None:
    """Store (or, with None, drop) one user's session data."""
    encoded = None if data is None else json.dumps(data, ensure_ascii=False, default=str)

    async def body(uow: UnitOfWork) -> None:
        if data is None:
            await uow.execute("DELETE FROM user_sessions WHERE user_id = ?", (user_id,))
        else:
            await uow.execute(
                "INSERT INTO user_sessions(user_id, data, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(user_id) DO UPDATE SET data = excluded.data,"
                " updated_at = excluded.updated_at",
                (user_id, encoded, now_db),
            )
        await uow.commit()

    await db.run(body)
