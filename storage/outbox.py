"""The outbox: messages a state change causes, written in the same transaction."""

from __future__ import annotations

import json

from bot.domain.notifications import OutboxMessage
from storage.db import UnitOfWork


async def enqueue(
    uow: UnitOfWork,
    messages: list[OutboxMessage],
    now_db: int,
    *,
    case_id: int | None = None,
    event_id: int | None = None,
) -> None:
    """Write messages to the outbox inside the caller's transaction."""
    if not messages:
        return
    await uow.execute_many(
        "INSERT INTO outbox(case_id, event_id, recipient_kind, recipient_ref, message_key,"
        " params, card_key, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                case_id,
                event_id,
                m.recipient_kind,
                m.recipient_ref,
                m.key,
                json.dumps(m.params, ensure_ascii=False, default=str),
                m.card_key,
                now_db,
                now_db,
            )
            for m in messages
        ],
    )


async def claim_once(uow: UnitOfWork, name: str, now_db: int) -> bool:
    """Record `name` (e.g. 'report:weekly:2026-W48') inside the caller's transaction;
    False when it was recorded before — for messages that go out once per period."""
    row = await uow.fetch_one(
        "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING"
        " RETURNING value",
        (name, now_db),
    )
    return row is not None
