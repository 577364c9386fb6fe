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
