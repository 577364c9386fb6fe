"""Operations against real SQLite files: backup, restore, export, admins, doctor, logging."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot import ops, services
from bot.config import EXAMPLE_POLICY, Settings
from bot.logs import configure_logging
from storage.db import Database, migrations, to_db
from storage.directory import Profile
from tests.conftest import PEOPLE, file_one

DISPATCH_CHAT = -100_1001
ZJJ_CHAT = -100_2001


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, in a stable order."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {
            table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in tables
        }
    finally:
        connection.close()


def raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """A write behind the bot's back (foreign keys off, as in the sqlite3 shell)."""
    connection = sqlite3.connect(path)
    try:
        connection.execute(sql, params)
        connection.commit()
    finally:
        connection.close()


async def file_as(
    svc: services.Services, citizen: int, text: str = "路灯不亮，晚上很危险。"
) -> str:
    case = await services.file_case(
        svc,
        Profile(citizen, first_name="李", last_name="四", username=f"u{citizen}"),
        category="housing",
        district="langya",
        text=text,
    )
    return case.number


async def healthy(svc: services.Services) -> list[str]:
    """Bound groups and a few cases in different states: nothing for the doctor."""
    await services.bind_chat(svc, None, DISPATCH_CHAT, "dispatch", system=True)
    await services.bind_chat(svc, None, ZJJ_CHAT, "unit", unit_code="ZJJ", system=True)
    first = await file_one(svc)
    second = await file_one(svc, PEOPLE.other_citizen)
    await services.assign_case(svc, PEOPLE.dispatcher, second, "ZJJ", (), track="routine")
    await services.sign_assignment(svc, PEOPLE.housing, second)
    return [first, second]


# -- backup and restore --------------------------------------------------------------------


async def test_backup_while_cases_are_filed_is_consistent_and_restores_table_for_table(
    svc, db, policy, clock, tmp_path
):
    await services.bind_chat(svc, None, DISPATCH_CHAT, "dispatch", system=True)
    snapshot = tmp_path / "backups" / "during.db"

    async def backup_midway() -> ops.BackupResult:
        while True:  # start once some filings have committed, with more on their way
            row = await db.fetch_one("SELECT count(*) FROM cases")
            if row is not None and row[0] >= 10:
                return await ops.backup(db.path, snapshot)
            await asyncio.sleep(0.001)

    async def stream(first: int) -> None:  # one after the other: many commits
        for citizen in range(first, first + 15):
            await file_as(svc, citizen)

    results = await asyncio.gather(backup_midway(), *(stream(5000 + 100 * i) for i in range(4)))
    taken = results[0]
    assert isinstance(taken, ops.BackupResult)
    assert taken.path == snapshot and taken.schema_version == len(migrations())
    assert not snapshot.with_name("during.db.partial").exists()

    # The copy is the state after some commit: every case it holds is whole.
    copied = dump(snapshot)
    cases = len(copied["cases"])
    assert 10 <= cases <= 60 and taken.cases == cases
    assert [r[1] for r in copied["counters"] if r[0].startswith("case:CZ")] == [cases]
    assert len([e for e in copied["events"] if e[3] == "CaseFiled"]) == cases
    check = Database(snapshot)
    await check.connect(migrate=False)
    try:
        assert await ops.doctor(check, policy, clock) == []
    finally:
        await check.close()

    restored = tmp_path / "restored" / "wenzheng.db"
    result = await ops.restore(snapshot, restored)
    assert result.previous is None and result.cases == cases
    assert dump(restored) == dump(snapshot)

    # After the filings, a fresh backup holds every row of the live database.
    fresh = tmp_path / "fresh.db"
    await ops.backup(db.path, fresh)
    assert dump(fresh) == dump(db.path)
    assert len(dump(fresh)["cases"]) == 60
    assert await ops.restore(fresh, restored)
    assert dump(restored) == dump(fresh)


async def test_backup_refuses_to_overwrite_unless_forced(svc, db, tmp_path):
    target = tmp_path / "b.db"
    target.write_text("an older backup")
    with pytest.raises(ops.OpsError, match="--force"):
        await ops.backup(db.path, target)
    assert target.read_text() == "an older backup"
    await file_one(svc)
    result = await ops.backup(db.path, target, force=True)
    assert result.cases == 1
    with pytest.raises(ops.OpsError, match="does not exist"):
        await ops.backup(tmp_path / "missing.db", tmp_path / "c.db")


async def test_restore_replaces_the_database_and_keeps_the_old_one(svc, db, tmp_path):
    await file_one(svc)
    saved = tmp_path / "one-case.db"
    await ops.backup(db.path, saved)
    await file_one(svc, PEOPLE.other_citizen)
    await db.close()
    result = await ops.restore(saved, db.path)
    assert result.cases == 1 and result.previous is not None
    assert len(dump(result.previous)["cases"]) == 2
    assert not db.path.with_name(db.path.name + "-wal").exists()
    await db.connect()  # the fixture closes it again
    row = await db.fetch_one("SELECT count(*) FROM cases")
    assert row is not None and row[0] == 1


async def test_restore_replaces_a_damaged_database(svc, db, tmp_path):
    await file_one(svc)
    saved = tmp_path / "saved.db"
    await ops.backup(db.path, saved)
    await db.close()
    db.path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)  # a wrecked file
    result = await ops.restore(saved, db.path)
    assert result.previous is not None and result.previous.read_bytes().endswith(b"\xff")
    assert dump(db.path) == dump(saved)
    await db.connect()


async def test_restore_is_refused_while_the_bot_runs(svc, db, tmp_path):
    saved = tmp_path / "saved.db"
    await ops.backup(db.path, saved)
    with ops.hold_run_lock(db.path):
        assert ops.is_running(db.path)
        with pytest.raises(ops.AlreadyRunning, match="stop the bot"):
            await ops.restore(saved, db.path)
        with pytest.raises(ops.AlreadyRunning), ops.hold_run_lock(db.path):
            pass  # a second `wenzheng run`
    assert not ops.is_running(db.path)


async def test_restore_refuses_files_that_are_not_wenzheng_databases(db, tmp_path):
    before = dump(db.path)
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, just some notes\n" * 10)
    other = tmp_path / "other.db"
    raw(other, "CREATE TABLE things (id INTEGER PRIMARY KEY)")
    newer = tmp_path / "newer.db"
    await ops.backup(db.path, newer)
    raw(newer, "PRAGMA user_version = 99")
    for source, reason in [
        (text, "not an SQLite database"),
        (other, "not a Wenzheng database"),
        (newer, "newer than this Wenzheng"),
        (tmp_path / "missing.db", "does not exist"),
    ]:
        with pytest.raises(ops.OpsError, match=reason):
            await ops.restore(source, db.path)
    assert dump(db.path) == before


# -- export --------------------------------------------------------------------------------


async def test_export_csv_has_one_row_per_case_and_no_identity(svc, db, policy, tmp_path):
    first, second = await healthy(svc)
    out = tmp_path / "cases.csv"
    day = date(2026, 11, 30)
    assert await ops.export_cases(db, day, day, "csv", out, policy=policy) == 2
    content = out.read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header == list(ops.EXPORT_COLUMNS)
    assert [r[0] for r in body] == [first, second]
    by_number = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    signed = by_number[second]
    assert signed["登记时间 filed at"] == "2026-11-30 10:00"
    assert signed["状态 state"] == "in_progress"
    assert signed["办理类型 track"] == "routine"
    assert signed["主办单位 lead unit"] and signed["签收期限 sign due"]
    assert signed["按时签收 signed on time"] == "是"
    assert by_number[first]["状态 state"] == "new"
    assert by_number[first]["签收期限 sign due"] == ""
    text = content.decode("utf-8-sig")
    assert "zhangsan" not in text and str(PEOPLE.citizen) not in text
    assert "电梯" not in text  # no message text either

    staff = tmp_path / "staff.csv"
    await ops.export_cases(db, day, day, "csv", staff, policy=policy, include_identity=True)
    staff_rows = list(csv.reader(io.StringIO(staff.read_text(encoding="utf-8-sig"))))
    assert staff_rows[0][-4:] == list(ops.IDENTITY_COLUMNS)
    assert staff_rows[1][-4:] == [str(PEOPLE.citizen), "张 三", "zhangsan", ""]

    empty = tmp_path / "none.csv"
    after = day + timedelta(days=1)
    assert (
        await ops.export_cases(db, after, after + timedelta(days=6), "csv", empty, policy=policy)
        == 0
    )
    with pytest.raises(ops.OpsError):
        await ops.export_cases(db, day, day, "pdf", tmp_path / "x.pdf", policy=policy)


async def test_export_xlsx(svc, db, policy, tmp_path):
    from openpyxl import load_workbook

    first, second = await healthy(svc)
    out = tmp_path / "cases.xlsx"
    day = date(2026, 11, 30)
    assert await ops.export_cases(db, day - timedelta(days=3), day, "xlsx", out, policy=policy) == 2
    sheet = load_workbook(out).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == list(ops.EXPORT_COLUMNS)
    assert [r[0] for r in rows[1:]] == [first, second]
    assert "zhangsan" not in repr(rows)


# -- admins --------------------------------------------------------------------------------


async def test_add_admin(db, clock, tmp_path):
    settings = Settings(database=db.path, policy=EXAMPLE_POLICY)
    assert await ops.add_admin(settings, 777, clock) is True
    assert await ops.add_admin(settings, 777, clock) is False
    row = await db.fetch_one("SELECT role FROM staff_roles WHERE user_id = 777")
    assert row is not None and row[0] == "admin"
    with pytest.raises(ops.OpsError, match="wenzheng init"):
        await ops.add_admin(Settings(database=tmp_path / "none.db"), 777, clock)


# -- doctor --------------------------------------------------------------------------------


async def test_doctor_finds_nothing_on_a_healthy_database(svc, db, policy, clock):
    await healthy(svc)
    assert await ops.doctor(db, policy, clock) == []


async def test_doctor_finds_each_planted_problem(svc, db, policy, clock):
    first, _ = await healthy(svc)
    third = await file_one(svc, PEOPLE.outsider)
    await services.assign_case(svc, PEOPLE.dispatcher, third, "CGJ", (), track="routine")
    now_db = to_db(clock.now()) or 0
    hour = 3_600_000_000
    raw(db.path, "UPDATE cases SET state = 'closed' WHERE number = ?", (first,))
    raw(db.path, "UPDATE outbox SET state = 'sent'")
    raw(
        db.path,
        "INSERT INTO outbox(recipient_kind, recipient_ref, message_key, next_attempt_at,"
        " created_at) VALUES ('user', '3001', 'case_filed', ?, ?)",
        (now_db - hour, now_db - hour),
    )
    raw(
        db.path,
        "INSERT INTO outbox(recipient_kind, recipient_ref, message_key, state, next_attempt_at,"
        " created_at, error) VALUES ('user', '3002', 'case_filed', 'failed', ?, ?, ?)",
        (now_db - hour, now_db - hour, "403: Forbidden: bot was blocked by the user"),
    )
    raw(db.path, "INSERT INTO liaisons(unit_code, user_id, added_at) VALUES ('ZJJ', 999999, 0)")
    raw(db.path, "UPDATE chat_bindings SET is_reachable = 0 WHERE binding = 'dispatch'")

    problems = await ops.doctor(db, policy, clock)
    found = {p.check: [] for p in problems}
    for p in problems:
        found[p.check].append(p.message)
        assert p.fix
    assert set(found) == {"states", "outbox", "foreign-keys", "bindings"}
    assert found["states"] == [f"case {first} is 'closed' but its events say 'new'"]
    assert any("waiting longer than 10 minutes" in m for m in found["outbox"])
    assert any("failed in the last day: 403" in m for m in found["outbox"])
    assert found["foreign-keys"] == [
        "1 row(s) of liaisons point to missing users rows (user_id = 999999)"
    ]
    assert any("dispatch group" in m for m in found["bindings"])
    assert any(m.startswith("unit CGJ") for m in found["bindings"])
    assert "UPDATE cases SET state = 'new'" in str(problems[0]) or any(
        "UPDATE cases SET state = 'new'" in p.fix for p in problems
    )


# -- logging -------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    httpx_level = logging.getLogger("httpx").level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(httpx_level)


TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"


def test_json_logs_parse_and_redact_phone_and_token(restore_logging):
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log = logging.getLogger("bot.test")
    log.info(
        "case %s: citizen shared %s",
        "CZ2026-000001",
        "13812345678",
        extra={"case": "CZ2026-000001", "update": 42},
    )
    logging.getLogger("httpx").warning("POST https://api.telegram.org/bot%s/sendMessage", TOKEN)
    log.debug("not shown at INFO")
    try:
        raise RuntimeError(f"call +86 139-1234-5678 with {TOKEN}")
    except RuntimeError:
        log.exception("send failed")
    lines = stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 3
    first = entries[0]
    assert set(first) >= {"time", "level", "logger", "message"}
    assert first["level"] == "INFO" and first["logger"] == "bot.test"
    assert first["case"] == "CZ2026-000001" and first["update"] == 42
    assert first["message"] == "case CZ2026-000001: citizen shared <phone>"
    assert "<token>" in entries[1]["message"]
    assert "exc" in entries[2] and "RuntimeError" in entries[2]["exc"]
    text = stream.getvalue()
    assert "13812345678" not in text and "1234-5678" not in text
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq" not in text


def test_text_logs_are_readable_lines_with_context(restore_logging):
    stream = io.StringIO()
    configure_logging("DEBUG", "text", stream=stream)
    log = logging.getLogger("bot.test")
    log.info("case filed", extra={"case": "CZ2026-000007"})
    log.debug("token %s, phone 13812345678", TOKEN)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "INFO" in lines[0] and lines[0].endswith("bot.test: case filed [case=CZ2026-000007]")
    assert "<token>" in lines[1] and TOKEN not in lines[1]
    with pytest.raises(ValueError):
        configure_logging("INFO", "xml")
