"""What the outbox sender reads and writes: pending rows, recipients, cards, results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.db import Database, UnitOfWork


@dataclass(frozen=True)
class PendingMessage:
    """An outbox row waiting to be sent."""

    id: int
    case_id: int | None
    recipient_kind: str
    recipient_ref: str | None
    key: str
    params: dict[str, Any]
    card_key: str | None
    attempts: int
    # Of a message sent as several (a report): the parts already sent, and the message
    # id of the first of them.
    parts_sent: int = 0
    first_message_id: int | None = None


@dataclass(frozen=True)
class Recipient:
    """Where a message goes and in which language."""

    chat_id: int
    language: str | None
    is_group: bool


# The condition repeats the partial index's own (migration 0004): SQLite uses a partial
# index only for a query whose WHERE contains its condition term for term.
ASKED_IN_SQL = (
    "SELECT c.number FROM outbox o INDEXED BY outbox_questions_by_message"
    " JOIN cases c ON c.id = o.case_id"
    " WHERE o.chat_id = ? AND o.message_id = ?"
    " AND (o.message_key = 'citizen.question' OR o.message_key = 'citizen.contact')"
)


async def case_asked_in(db: Database, chat_id: int, message_id: int) -> str | None:
    """The number of the case whose question to the citizen is message `message_id` of
    chat `chat_id` (what a citizen's "reply to" answers), if it is one."""
    row = await db.fetch_one(ASKED_IN_SQL, (chat_id, message_id))
    return str(row[0]) if row else None


async def due_recipients(db: Database, now_db: int, limit: int) -> list[tuple[str, str | None]]:
    """Recipients with rows due for (another) attempt, the longest waiting first."""
    rows = await db.fetch_all(
        "SELECT recipient_kind, recipient_ref FROM outbox"
        " WHERE state = 'pending' AND next_attempt_at <= ?"
        " GROUP BY recipient_kind, recipient_ref ORDER BY min(id) LIMIT ?",
        (now_db, limit),
    )
    return [(str(r[0]), r[1]) for r in rows]


async def due_in_order(
    db: Database, kind: str, ref: str | None, now_db: int, limit: int
) -> list[PendingMessage]:
    """A recipient's pending rows from the oldest on, as far as they are due: none when
    the oldest waits for a retry, so the chat reads its messages in order."""
    rows = await db.fetch_all(
        "SELECT id, case_id, recipient_kind, recipient_ref, message_key, params, card_key,"
        " attempts, next_attempt_at, parts_sent, message_id FROM outbox"
        " WHERE state = 'pending' AND recipient_kind = ? AND recipient_ref IS ?"
        " ORDER BY id LIMIT ?",
        (kind, ref, limit),
    )
    due: list[PendingMessage] = []
    for r in rows:
        if r[8] > now_db:
            break
        due.append(
            PendingMessage(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[9], r[10])
        )
    return due


async def resolve_recipient(db: Database, kind: str, ref: str | None) -> Recipient | None:
    """The chat of a recipient (None while a group is not bound yet)."""
    if kind == "user":
        row = await db.fetch_one("SELECT language FROM users WHERE id = ?", (int(ref or 0),))
        return Recipient(int(ref or 0), row[0] if row else None, False)
    binding = f"unit:{ref}" if kind == "unit" else kind
    row = await db.fetch_one(
        "SELECT chat_id, language FROM chat_bindings WHERE binding = ?", (binding,)
    )
    return Recipient(int(row[0]), row[1], True) if row else None


async def card_message(db: Database, card_key: str) -> tuple[int, int] | None:
    """(chat id, message id) of a card already shown."""
    row = await db.fetch_one(
        "SELECT chat_id, message_id FROM cards WHERE card_key = ?", (card_key,)
    )
    return (int(row[0]), int(row[1])) if row else None


async def mark_sent(
    db: Database,
    message: PendingMessage,
    chat_id: int,
    message_id: int | None,
    now_db: int,
) -> None:
    """Record a delivery (and where a card now lives)."""
    async def body(uow: UnitOfWork) -> None:
        await uow.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?, chat_id = ?, message_id = ?,"
            " attempts = attempts + 1, error = NULL WHERE id = ? AND state = 'pending'",
            (now_db, chat_id, message_id, message.id),
        )
        if message.card_key and message_id is not None:
            await uow.execute(
                "INSERT INTO cards(card_key, chat_id, message_id, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(card_key) DO UPDATE SET chat_id = excluded.chat_id,"
                " message_id = excluded.message_id, updated_at = excluded.updated_at",
                (message.card_key, chat_id, message_id, now_db),
            )
        await uow.commit()

    await db.run(body)


async def mark_sent_together(
    db: Database,
    messages: list[PendingMessage],
    chat_id: int,
    message_id: int | None,
    now_db: int,
) -> None:
    """Record one delivery that carried `messages` (one row, or a digest of several)."""
    if len(messages) == 1:
        await mark_sent(db, messages[0], chat_id, message_id, now_db)
        return

    async def body(uow: UnitOfWork) -> None:
        await uow.execute_many(
            "UPDATE outbox SET state = 'sent', sent_at = ?, chat_id = ?, message_id = ?,"
            " attempts = attempts + 1, error = NULL WHERE id = ? AND state = 'pending'",
            [(now_db, chat_id, message_id, m.id) for m in messages],
        )
        await uow.commit()

    await db.run(body)


async def mark_part_sent(
    db: Database, message: PendingMessage, parts: int, chat_id: int, first_id: int | None
) -> None:
    """Record that the first `parts` parts of a message sent as several have gone out
    (the row stays pending until the last)."""
    async def body(uow: UnitOfWork) -> None:
        await uow.execute(
            "UPDATE outbox SET parts_sent = ?, chat_id = ?, message_id = coalesce(message_id, ?)"
            " WHERE id = ? AND state = 'pending'",
            (parts, chat_id, first_id, message.id),
        )
        await uow.commit()

    await db.run(body)


async def mark_superseded(db: Database, ids: list[int], now_db: int) -> None:
    """Card refreshes made redundant by a later refresh of the same card."""
    if not ids:
        return
    async def body(uow: UnitOfWork) -> None:
        await uow.execute_many(
            "UPDATE outbox SET state = 'sent', sent_at = ?, error = 'superseded'"
            " WHERE id = ? AND state = 'pending'",
            [(now_db, i) for i in ids],
        )
        await uow.commit()

    await db.run(body)


async def mark_retry(db: Database, message_id: int, next_db: int, error: str) -> None:
    """Try again later."""
    async def body(uow: UnitOfWork) -> None:
        await uow.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, error = ?"
            " WHERE id = ? AND state = 'pending'",
            (next_db, error[:500], message_id),
        )
        await uow.commit()

    await db.run(body)


async def mark_failed(db: Database, message_id: int, error: str) -> None:
    """Give up on a row; staff see it (and `wenzheng doctor` lists it)."""
    async def body(uow: UnitOfWork) -> None:
        await uow.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, error = ?"
            " WHERE id = ? AND state = 'pending'",
            (error[:500], message_id),
        )
        await uow.commit()

    await db.run(body)


async def mark_user_blocked(db: Database, user_id: int, blocked: bool = True) -> None:
    """The user blocked the bot (or wrote again after unblocking it)."""
    async def body(uow: UnitOfWork) -> None:
        await uow.execute("UPDATE users SET is_blocked = ? WHERE id = ?", (int(blocked), user_id))
        await uow.commit()

    await db.run(body)


async def migrate_chat(db: Database, old_chat_id: int, new_chat_id: int) -> None:
    """A group became a supergroup: its binding and cards follow the new id."""
    async def body(uow: UnitOfWork) -> None:
        await uow.execute(
            "UPDATE chat_bindings SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
        )
        # Cards in the old group cannot be edited any more; they are posted anew.
        await uow.execute("DELETE FROM cards WHERE chat_id = ?", (old_chat_id,))
        await uow.commit()

    await db.run(body)


async def drop_card(db: Database, card_key: str) -> None:
    """Forget a card whose message is gone, so the next refresh posts it anew."""
    async def body(uow: UnitOfWork) -> None:
        await uow.execute("DELETE FROM cards WHERE card_key = ?", (card_key,))
        await uow.commit()

    await db.run(body)
