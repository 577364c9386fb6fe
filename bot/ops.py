"""Operations behind the admin CLI: backup, restore, export, admins and the health check.

Every function here is async and returns a result; the CLI prints it and picks the exit
code. Blocking file and SQLite work runs in a thread, so these are safe to call from a
running bot's event loop too.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import Settings, load_policy
from bot.domain.policy import Policy
from bot.domain.timeline import state_after
from storage.db import Database, from_db, migrations, to_db

# Tables every Wenzheng database has; a file without them is refused by `restore`.
REQUIRED_TABLES = frozenset(
    {"users", "units", "cases", "assignments", "events", "outbox", "chat_bindings", "counters"}
)
OUTBOX_LAG = timedelta(minutes=10)
FAILED_WINDOW = timedelta(days=1)


class OpsError(Exception):
    """An operation refused or failed; the message says why and what to do."""


class AlreadyRunning(OpsError):
    """Another process holds the database's run lock (the bot is running)."""


# -- the run lock --------------------------------------------------------------------------


def lock_path(db_path: Path | str) -> Path:
    """The lock file next to the database: `<db>.lock`."""
    path = Path(db_path)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def hold_run_lock(db_path: Path | str) -> Iterator[Path]:
    """Hold the database's exclusive run lock for the life of the block.

    `wenzheng run` holds it while the bot runs, `restore` while it replaces the file. A
    second holder is refused at once with `AlreadyRunning` (never waits). The kernel
    releases the lock if the process dies, so a crash leaves no stale lock behind.
    """
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(
                f"{db_path} is in use by a running Wenzheng (lock {path}); stop the bot first "
                "(e.g. `systemctl stop wenzheng`)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_running(db_path: Path | str) -> bool:
    """Whether a process holds the run lock right now."""
    try:
        with hold_run_lock(db_path):
            return False
    except AlreadyRunning:
        return True


# -- backup and restore --------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    """A verified copy of the database."""

    path: Path
    size: int
    schema_version: int
    cases: int


def _integrity(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute("PRAGMA integrity_check").fetchall()
    found = [str(r[0]) for r in rows]
    return [] if found == ["ok"] else found


def _copy_database(source: Path, target: Path) -> None:
    """SQLite online backup of `source` into a new file `target` (one step: a snapshot)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout = 30000")
        dst = sqlite3.connect(target)
        try:
            # pages=-1: the whole database in one step, under one read transaction, so the
            # copy is the state after some commit — never half of one. WAL lets the bot go
            # on writing meanwhile.
            src.backup(dst, pages=-1)
            # A backup file stands alone: no -wal/-shm beside it.
            dst.execute("PRAGMA journal_mode = DELETE")
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def _describe(path: Path) -> tuple[int, set[str], list[str], int]:
    """(user_version, table names, integrity problems, cases) of a database file."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            str(r[0])
            for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        problems = _integrity(connection)
        cases = (
            int(connection.execute("SELECT count(*) FROM cases").fetchone()[0])
            if "cases" in tables
            else 0
        )
    finally:
        connection.close()
    return version, tables, problems, cases


def _backup(db_path: Path, target: Path, force: bool) -> BackupResult:
    if not db_path.is_file():
        raise OpsError(f"database {db_path} does not exist")
    if target.resolve() == db_path.resolve():
        raise OpsError("the backup target is the database itself")
    if target.exists() and not force:
        raise OpsError(f"{target} exists; choose another name or pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _copy_database(db_path, partial)
        version, _, problems, cases = _describe(partial)
        if problems:
            raise OpsError(f"the copy failed its integrity check: {'; '.join(problems[:5])}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, version, cases)


async def backup(db_path: Path | str, target: Path | str, *, force: bool = False) -> BackupResult:
    """Copy the database to `target`, consistent even while the bot writes, and verify it.

    Refuses an existing target unless `force`; the target only ever appears complete
    (written beside it, checked with `PRAGMA integrity_check`, then renamed into place).
    """
    return await asyncio.to_thread(_backup, Path(db_path), Path(target), force)


@dataclass(frozen=True)
class RestoreResult:
    """What `restore` did."""

    path: Path
    schema_version: int
    cases: int
    previous: Path | None  # where the database that was replaced now is, if there was one


def check_wenzheng_file(path: Path) -> tuple[int, int]:
    """(schema version, cases) of a Wenzheng database file; raises `OpsError` otherwise."""
    if not path.is_file():
        raise OpsError(f"{path} does not exist")
    with open(path, "rb") as handle:
        header = handle.read(16)
    if header != b"SQLite format 3\x00":
        raise OpsError(f"{path} is not an SQLite database")
    try:
        version, tables, problems, cases = _describe(path)
    except sqlite3.DatabaseError as error:
        raise OpsError(f"{path} cannot be read as a database: {error}") from None
    latest = len(migrations())
    missing = REQUIRED_TABLES - tables
    if version < 1 or missing:
        detail = f"missing tables {', '.join(sorted(missing))}" if missing else "no schema version"
        raise OpsError(f"{path} is not a Wenzheng database ({detail})")
    if version > latest:
        raise OpsError(
            f"{path} has schema version {version}, newer than this Wenzheng ({latest}); "
            "upgrade Wenzheng first"
        )
    if problems:
        raise OpsError(f"{path} fails its integrity check: {'; '.join(problems[:5])}")
    return version, cases


def _restore(source: Path, db_path: Path) -> RestoreResult:
    if source.resolve() == db_path.resolve():
        raise OpsError("the source is the database itself")
    check_wenzheng_file(source)
    with hold_run_lock(db_path):
        previous: Path | None = None
        partial = db_path.with_name(db_path.name + ".restoring")
        partial.unlink(missing_ok=True)
        try:
            _copy_database(source, partial)
            version, cases = check_wenzheng_file(partial)
            if db_path.is_file():
                # The old database is moved aside, not deleted — with its -wal (which may
                # hold its latest commits) renamed alike, so it still opens whole; even a
                # damaged one is kept for analysis.
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                previous = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
                for suffix in ("-wal", "-shm", "-journal", ""):
                    old = db_path.with_name(db_path.name + suffix)
                    if old.exists():
                        os.replace(old, previous.with_name(previous.name + suffix))
            # No stale journal may stay beside the new file: SQLite would replay it.
            for suffix in ("-wal", "-shm", "-journal"):
                db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
            os.replace(partial, db_path)
        finally:
            partial.unlink(missing_ok=True)
    return RestoreResult(db_path, version, cases, previous)


async def restore(source: Path | str, db_path: Path | str) -> RestoreResult:
    """Replace the database with a backup. Refuses while the bot runs (its run lock is
    held), and refuses a file that is not a Wenzheng database or fails its integrity
    check. The database being replaced is kept beside it (`<db>.before-restore-…`)."""
    return await asyncio.to_thread(_restore, Path(source), Path(db_path))


# -- export --------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "编号 number",
    "登记时间 filed at",
    "类别 category",
    "区域 district",
    "办理类型 track",
    "状态 state",
    "主办单位 lead unit",
    "轮次 round",
    "签收期限 sign due",
    "按时签收 signed on time",
    "答复期限 reply due",
    "按时答复 replied on time",
    "办结期限 resolve due",
    "按时办结 resolved on time",
    "评价 rating",
)
IDENTITY_COLUMNS = ("网民ID citizen id", "姓名 name", "用户名 username", "电话 phone")

_EXPORT_SQL = """
SELECT c.number, c.filed_at, c.category, c.district, c.track, c.state,
       c.lead_unit, u.name, c.round,
       a.sign_due, a.sign_on_time, a.reply_due, a.reply_on_time,
       a.resolve_due, a.resolve_on_time,
       (SELECT r.rating FROM ratings r WHERE r.case_id = c.id ORDER BY r.id DESC LIMIT 1),
       c.citizen_id, p.first_name, p.last_name, p.username, p.phone
FROM cases c
LEFT JOIN assignments a ON a.id = (
    SELECT x.id FROM assignments x
    WHERE x.case_id = c.id AND x.role = 'lead' AND x.round = c.round
    ORDER BY x.state = 'withdrawn', x.id DESC LIMIT 1)
LEFT JOIN units u ON u.code = c.lead_unit
LEFT JOIN users p ON p.id = c.citizen_id
WHERE c.filed_at >= ? AND c.filed_at < ?
ORDER BY c.filed_at, c.id
"""


def _local(value: int | None, tz: ZoneInfo) -> str:
    moment = from_db(value)
    return "" if moment is None else f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"


def _flag(value: int | None) -> str:
    return "" if value is None else ("是" if value else "否")


def _write_csv(out: Path, header: Sequence[str], rows: list[list[Any]]) -> None:
    # utf-8-sig: the byte order mark makes Excel read the Chinese correctly.
    with open(out, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _write_xlsx(out: Path, header: Sequence[str], rows: list[list[Any]]) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "cases"
    sheet.append(list(header))
    for row in rows:
        sheet.append(row)
    sheet.freeze_panes = "A2"
    for index, title in enumerate(header, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = max(12, len(title) + 2)
    workbook.save(out)


async def export_cases(
    db: Database,
    date_from: date,
    date_to: date,
    fmt: str,
    out: Path | str,
    *,
    policy: Policy,
    include_identity: bool = False,
) -> int:
    """Write one row per case filed from `date_from` to `date_to` (inclusive, local dates)
    as CSV or XLSX; returns the number of rows. No citizen identity unless asked for."""
    if fmt not in ("csv", "xlsx"):
        raise OpsError(f"unknown format {fmt!r}: use csv or xlsx")
    if date_to < date_from:
        raise OpsError("--to is before --from")
    tz = policy.calendar.tz
    start = to_db(datetime.combine(date_from, time(), tz))
    end = to_db(datetime.combine(date_to + timedelta(days=1), time(), tz))
    records = await db.fetch_all(_EXPORT_SQL, (start, end))
    rows: list[list[Any]] = []
    for r in records:
        category = policy.categories.get(r[2])
        district = policy.districts.get(r[3])
        row: list[Any] = [
            r[0],
            _local(r[1], tz),
            category.name if category else r[2],
            district.name if district else r[3],
            r[4] or "",
            r[5],
            r[7] or r[6] or "",
            r[8],
            _local(r[9], tz),
            _flag(r[10]),
            _local(r[11], tz),
            _flag(r[12]),
            _local(r[13], tz),
            _flag(r[14]),
            r[15] or "",
        ]
        if include_identity:
            name = " ".join(part for part in (r[17], r[18]) if part)
            row += [r[16], name, r[19] or "", r[20] or ""]
        rows.append(row)
    header = EXPORT_COLUMNS + (IDENTITY_COLUMNS if include_identity else ())
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = _write_csv if fmt == "csv" else _write_xlsx
    await asyncio.to_thread(writer, path, header, rows)
    return len(rows)


# -- admins --------------------------------------------------------------------------------


async def add_admin(settings: Settings, user_id: int, clock: Clock | None = None) -> bool:
    """Make a Telegram user an admin; False if they were one already.

    The database must exist (`wenzheng init` creates it); pending migrations are applied.
    """
    from bot import services

    if not settings.database.is_file():
        raise OpsError(f"database {settings.database} does not exist; run `wenzheng init` first")
    policy = load_policy(settings.policy)
    db = Database(settings.database)
    await db.connect()
    try:
        svc = services.Services(db=db, policy=policy, clock=clock or Clock())
        return await services.grant_role(svc, None, user_id, "admin", system=True)
    finally:
        await db.close()


# -- doctor --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing `wenzheng doctor` found, and how to fix it."""

    check: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.message}\n    fix: {self.fix}"


async def _integrity_problems(db: Database) -> list[Problem]:
    rows = await db.fetch_all("PRAGMA integrity_check")
    found = [str(r[0]) for r in rows]
    if found == ["ok"]:
        return []
    return [
        Problem(
            "integrity",
            f"the database file is damaged: {'; '.join(found[:5])}",
            "stop the bot and restore the latest good backup (`wenzheng restore PATH`); "
            "keep the damaged file for analysis",
        )
    ]


async def _foreign_key_problems(db: Database) -> list[Problem]:
    rows = await db.fetch_all("PRAGMA foreign_key_check")
    counts: dict[tuple[str, str, int], int] = {}
    for r in rows:
        key = (str(r[0]), str(r[2]), int(r[3]))
        counts[key] = counts.get(key, 0) + 1
    problems = []
    for (table, parent, fkid), count in sorted(counts.items()):
        keys = [k for k in await db.fetch_all(f"PRAGMA foreign_key_list({table})") if k[0] == fkid]
        column = str(keys[0][3]) if keys else "?"
        target = str(keys[0][4]) if keys and keys[0][4] else "rowid"
        orphans = (
            f"{table}.{column} NOT IN (SELECT {target} FROM {parent})"
            if keys and len(keys) == 1
            else None
        )
        shown = ""
        if orphans is not None:
            values = await db.fetch_all(
                f"SELECT DISTINCT {column} FROM {table} WHERE {orphans} LIMIT 10"
            )
            shown = f" ({column} = {', '.join(repr(v[0]) for v in values)})"
        where = f"WHERE {orphans}" if orphans else "(see PRAGMA foreign_key_check)"
        problems.append(
            Problem(
                "foreign-keys",
                f"{count} row(s) of {table} point to missing {parent} rows{shown}",
                "the rows were written with foreign keys off (a manual edit or an old "
                f"restore); back up, then add the missing {parent} rows or delete the "
                f"orphans: DELETE FROM {table} {where}",
            )
        )
    return problems


async def _state_problems(db: Database, chunk: int = 2000) -> list[Problem]:
    problems: list[Problem] = []
    last_id = 0
    while True:
        cases = await db.fetch_all(
            "SELECT id, number, state FROM cases WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, chunk),
        )
        if not cases:
            return problems
        first, last_id = int(cases[0][0]), int(cases[-1][0])
        timelines: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        for event in await db.fetch_all(
            "SELECT case_id, kind, details FROM events WHERE case_id BETWEEN ? AND ?"
            " ORDER BY case_id, id",
            (first, last_id),
        ):
            timelines.setdefault(int(event[0]), []).append((event[1], json.loads(event[2])))
        for case_id, number, stored in cases:
            events = timelines.get(int(case_id), [])
            expected = state_after(events)
            if expected is None:
                problems.append(
                    Problem(
                        "states",
                        f"case {number} is '{stored}' but has no events",
                        "the case was written without its timeline (a manual insert or a "
                        "bug); restore from a backup or report it to the developers",
                    )
                )
            elif expected.value != stored:
                problems.append(
                    Problem(
                        "states",
                        f"case {number} is '{stored}' but its events say '{expected.value}'",
                        "its state was changed without an event (a manual edit or a bug); "
                        "back up, then set it back with UPDATE cases SET state = "
                        f"'{expected.value}' WHERE number = '{number}', and report it if no "
                        "one edited the database by hand",
                    )
                )


async def _outbox_problems(db: Database, now: datetime) -> list[Problem]:
    problems: list[Problem] = []
    now_db = to_db(now) or 0
    lag = await db.fetch_one(
        "SELECT count(*), min(created_at) FROM outbox WHERE state = 'pending' AND created_at < ?",
        (now_db - int(OUTBOX_LAG.total_seconds() * 1_000_000),),
    )
    if lag is not None and lag[0]:
        oldest = from_db(lag[1])
        age = now - oldest if oldest else timedelta(0)
        problems.append(
            Problem(
                "outbox",
                f"{lag[0]} message(s) waiting longer than {OUTBOX_LAG.seconds // 60} minutes "
                f"(oldest {age.total_seconds() / 60:.0f} minutes)",
                "check that `wenzheng run` is running and can reach the Bot API (its log "
                "shows 429/5xx/network errors); messages for a group wait until the group "
                "is bound with /bind",
            )
        )
    # No failure time is stored: a row failed at (or soon after) its last due attempt.
    since = now_db - int(FAILED_WINDOW.total_seconds() * 1_000_000)
    failed = await db.fetch_all(
        "SELECT recipient_kind, substr(coalesce(error, ''), 1, 60), count(*) FROM outbox"
        " WHERE state = 'failed' AND max(created_at, next_attempt_at) >= ?"
        " GROUP BY 1, 2 ORDER BY 3 DESC",
        (since,),
    )
    for kind, error, count in failed:
        if kind == "user":
            fix = (
                "the citizen or staff member blocked the bot or never started it; "
                "reach them another way (a failed message is not retried)"
            )
        else:
            fix = (
                f"the bot cannot post to the {kind} group (removed, or lost its rights); "
                "add the bot to the group again and send /bind there"
            )
        problems.append(
            Problem(
                "outbox",
                f"{count} message(s) to {kind} failed in the last day: {error or 'no error'}",
                fix,
            )
        )
    return problems


async def _binding_problems(db: Database) -> list[Problem]:
    problems: list[Problem] = []
    for binding, chat_id, title in await db.fetch_all(
        "SELECT binding, chat_id, title FROM chat_bindings WHERE is_reachable = 0 ORDER BY binding"
    ):
        problems.append(
            Problem(
                "bindings",
                f"the bot can no longer reach the {binding} group "
                f"({title or 'untitled'}, chat {chat_id})",
                "add the bot to the group again (or to its replacement) and send /bind there",
            )
        )
    for code, name, count in await db.fetch_all(
        "SELECT a.unit_code, u.name, count(DISTINCT c.id) FROM assignments a"
        " JOIN cases c ON c.id = a.case_id AND c.round = a.round"
        " JOIN units u ON u.code = a.unit_code"
        " WHERE c.state NOT IN ('closed', 'rejected') AND a.state IN ('assigned', 'signed')"
        " AND NOT EXISTS (SELECT 1 FROM chat_bindings b WHERE b.binding = 'unit:' || a.unit_code)"
        " GROUP BY a.unit_code ORDER BY a.unit_code"
    ):
        problems.append(
            Problem(
                "bindings",
                f"unit {code} ({name}) has {count} open case(s) but no bound group: "
                "its messages wait in the outbox",
                f"add the bot to {name}'s group and send /bind there (unit {code})",
            )
        )
    row = await db.fetch_one(
        "SELECT count(*) FROM cases WHERE state = 'new' AND NOT EXISTS"
        " (SELECT 1 FROM chat_bindings WHERE binding = 'dispatch')"
    )
    if row is not None and row[0]:
        problems.append(
            Problem(
                "bindings",
                f"{row[0]} new case(s) wait for the dispatch desk, but no dispatch group is bound",
                "add the bot to the dispatch group and send /bind there",
            )
        )
    return problems


async def doctor(db: Database, policy: Policy, clock: Clock) -> list[Problem]:
    """Check a connected database; each problem comes with its fix. Empty: all is well.

    Checks: `PRAGMA integrity_check`, foreign keys, every case's state against the replay
    of its events, the outbox backlog (pending over 10 minutes, failed in the last day),
    unreachable bound chats and units or desks with open cases but no bound group.
    """
    problems = await _integrity_problems(db)
    if problems:  # the rest would read a damaged file
        return problems
    problems += await _foreign_key_problems(db)
    problems += await _state_problems(db)
    problems += await _outbox_problems(db, clock.now())
    problems += await _binding_problems(db)
    return problems
