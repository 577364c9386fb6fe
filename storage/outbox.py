"""The outbox: messages a state change causes, written in the same transaction."""

from __future__ import annotations

from bot.domain.notifications import OutboxMessage
from storage.db import UnitOfWork, to_json


async def enqueue(
    uow: UnitOfWork,
    messages: list[OutboxMessage],
    now_db: int,
    *,
    case_id: int | None = None,
    event_id: int | None = None,
) -> None:
    """Write messages to the outbox inside the caller's transaction."""
    await enqueue_rows(uow, [(case_id, event_id, m) for m in messages], now_db)


async def enqueue_rows(
    uow: UnitOfWork,
    rows: list[tuple[int | None, int | None, OutboxMessage]],
    now_db: int,
) -> None:
    """Write (case id, event id, message) rows to the outbox in one statement."""
    if not rows:
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
                to_json(m.params),
                m.card_key,
                now_db,
                now_db,
            )
            for case_id, event_id, m in rows
        ],
    )


async def claim_once(uow: UnitOfWork, name: str, now_db: int, *, in_order: bool = False) -> bool:
    """Record `name` (e.g. 'report:weekly:2026-W48') inside the caller's transaction;
    False when it was recorded before — for messages that go out once per period.

    `in_order`: the name ends in a period that sorts in time (an ISO date), and a period
    not after the latest one claimed under the same prefix is refused too, so a clock set
    back (an NTP correction) never sends an earlier day's message after a later day's.
    """
    if in_order:
        prefix = name.rsplit(":", 1)[0] + ":"
        latest = await uow.fetch_one(
            "SELECT max(name) FROM counters WHERE name > ? AND name < ?", (prefix, prefix + "~")
        )
        if latest is not None and latest[0] is not None and latest[0] >= name:
            return False
    row = await uow.fetch_one(
        "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING"
        " RETURNING value",
        (name, now_db),
    )
    return row is not None


async def replace_counter(uow: UnitOfWork, name: str, value: int) -> int | None:
    """Set `name` to `value` inside the caller's transaction; returns its value before
    (None: it was never set)."""
    row = await uow.fetch_one("SELECT value FROM counters WHERE name = ?", (name,))
    await uow.execute(
        "INSERT INTO counters(name, value) VALUES (?, ?)"
        " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (name, value),
    )
    return None if row is None else int(row[0])
