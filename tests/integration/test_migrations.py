"""Migrations: from empty to current, and running them again changes nothing."""

from __future__ import annotations

import sqlite3

import pytest

from storage import delivery
from storage.db import Database, migrations


async def schema(db: Database) -> list[tuple[str, str]]:
    rows = await db.fetch_all("SELECT name, sql FROM sqlite_master ORDER BY name")
    return [(r[0], r[1]) for r in rows]


async def test_migrations_from_empty_reach_the_latest_version(tmp_path):
    db = Database(tmp_path / "a.db")
    applied = await db.connect()
    assert applied == [v for v, _, _ in migrations()]
    assert await db.schema_version() == len(migrations())
    names = {name for name, _ in await schema(db)}
    assert {
        "cases",
        "assignments",
        "events",
        "outbox",
        "processed_updates",
        "chat_bindings",
        "liaisons",
        "staff_roles",
        "units",
        "users",
        "attachments",
    } <= names
    mode = await db.fetch_one("PRAGMA journal_mode")
    assert mode is not None and mode[0] == "wal"
    await db.close()


async def test_running_migrations_again_changes_nothing(tmp_path):
    db = Database(tmp_path / "a.db")
    await db.connect()
    before = await schema(db)
    await db.close()
    again = Database(tmp_path / "a.db")
    assert await again.connect() == []
    assert await schema(again) == before
    assert await again.migrate() == []
    await again.close()


async def test_foreign_keys_are_enforced(tmp_path):
    db = Database(tmp_path / "a.db")
    await db.connect()
    async with db.unit_of_work() as uow:
        try:
            await uow.execute(
                "INSERT INTO liaisons(unit_code, user_id, added_at) VALUES ('NOPE', 1, 0)"
            )
        except Exception as error:
            assert "FOREIGN KEY" in str(error)
        else:
            raise AssertionError("a liaison of an unknown unit was accepted")
    await db.close()


async def test_a_unit_of_work_without_commit_rolls_back(tmp_path):
    db = Database(tmp_path / "a.db")
    await db.connect()
    async with db.unit_of_work() as uow:
        await uow.execute("INSERT INTO counters(name, value) VALUES ('x', 1)")
    assert await db.fetch_one("SELECT * FROM counters") is None
    await db.close()


async def test_the_outbox_rebuild_keeps_its_rows_and_still_refuses_unknown_values(tmp_path):
    path = tmp_path / "a.db"
    # A file as version 2 left it, with a delivered and a pending outbox row.
    old = sqlite3.connect(path, isolation_level=None)
    for version, _, sql in migrations()[:2]:
        old.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
    old.executemany(
        "INSERT INTO outbox(recipient_kind, recipient_ref, message_key, params, state,"
        " next_attempt_at, created_at, message_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [("unit", "U1", "unit.overdue", '{"number": "A1"}', "sent", 5, 4, 77),
         ("dispatch", None, "card.desk", '{"case_id": 1}', "pending", 9, 8, None)],
    )
    before = old.execute("SELECT * FROM outbox ORDER BY id").fetchall()
    old.close()

    db = Database(path)
    assert 3 in await db.connect()
    after = await db.fetch_all("SELECT * FROM outbox ORDER BY id")
    # Later migrations only add columns at the end (0005: parts_sent, 0 for these rows).
    assert [tuple(row)[: len(before[0])] for row in after] == before
    assert [row["parts_sent"] for row in after] == [0, 0]
    pending = await db.fetch_all("SELECT id FROM outbox WHERE state = 'pending'")
    assert [row[0] for row in pending] == [2]
    refused = [
        ("nobody", "pending"),  # no such recipient kind
        ("unit", "lost"),  # no such state
    ]
    for kind, state in refused:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            async with db.unit_of_work() as uow:
                await uow.execute(
                    "INSERT INTO outbox(recipient_kind, message_key, state, next_attempt_at,"
                    " created_at) VALUES (?, 'k', ?, 1, 1)",
                    (kind, state),
                )
    rows = await db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'index'")
    indexes = {row[0] for row in rows}
    assert {"outbox_pending", "outbox_pending_by_recipient"} <= indexes
    assert "events_by_kind" not in indexes
    await db.close()


async def test_a_reply_to_a_question_is_found_by_index_and_the_outbox_has_no_by_case_one(
    tmp_path,
):
    db = Database(tmp_path / "a.db")
    await db.connect()
    try:
        async with db.unit_of_work() as uow:
            await uow.execute("INSERT INTO users(id, created_at, updated_at) VALUES (5, 1, 1)")
            await uow.execute(
                "INSERT INTO cases(id, number, citizen_id, text, category, district, state,"
                " filed_at, updated_at) VALUES (1, 'A1', 5, 't', 'c', 'd', 'assigned', 1, 1)"
            )
            await uow.execute_many(
                "INSERT INTO outbox(case_id, recipient_kind, recipient_ref, message_key, state,"
                " next_attempt_at, created_at, chat_id, message_id) VALUES"
                " (1, 'user', '5', ?, 'sent', 1, 1, 5, ?)",
                [("citizen.question", 70), ("citizen.answer_published", 71)],
            )
            await uow.commit()
        assert await delivery.case_asked_in(db, 5, 70) == "A1"
        assert await delivery.case_asked_in(db, 5, 71) is None  # not a question
        assert await delivery.case_asked_in(db, 6, 70) is None
        plan = await db.fetch_all(f"EXPLAIN QUERY PLAN {delivery.ASKED_IN_SQL}", (5, 70))
        assert "USING INDEX outbox_questions_by_message" in plan[0][3]
        rows = await db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'index'")
        assert "outbox_by_case" not in {row[0] for row in rows}
    finally:
        await db.close()
