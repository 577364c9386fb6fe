"""The SQLite database: connections, migrations and the unit of work.

One writer connection serialised by a lock (SQLite has one writer anyway; queueing in
Python keeps `BEGIN IMMEDIATE` from ever waiting on the busy timeout) and one reader
connection for queries, which WAL lets run beside the writer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite

logger = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GROUP_LIMIT = 64  # use cases per commit at most, so a steady stream still commits often

Row = aiosqlite.Row
T = TypeVar("T")


def to_db(moment: datetime | None) -> int | None:
    """A datetime as stored: integer microseconds since the epoch (UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are never stored")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _json_writer() -> Callable[[Any], str]:
    """`json.dumps(value, ensure_ascii=False, default=str)`, with its encoder built once.

    `JSONEncoder.encode` builds a new C encoder for every value; the deadline sweep
    encodes thousands of small dicts at once, and building the encoder was most of each
    call. Without the C accelerator (other Pythons), the plain encoder.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return json.JSONEncoder(ensure_ascii=False, default=str).encode
    # The arguments JSONEncoder passes for these options (no circular-reference check:
    # what is stored is plain data).
    encode = make(None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)

    def to_json(value: Any) -> str:
        return "".join(encode(value, 0))

    return to_json


to_json = _json_writer()


def from_db(value: int | None) -> datetime | None:
    """A stored time back as an aware UTC datetime."""
    if value is None:
        return None
    # Twice as fast as fromtimestamp + replace; reports convert a few hundred thousand.
    return _EPOCH + timedelta(microseconds=int(value))


def migrations() -> list[tuple[int, str, str]]:
    """The shipped migrations as (version, file name, SQL), in order."""
    found: list[tuple[int, str, str]] = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


class Reader(Protocol):
    """Anything that answers queries: the database's reader, or a unit of work."""

    async def fetch_one(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> Row | None: ...  # pragma: no cover - protocol

    async def fetch_all(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[Row]: ...  # pragma: no cover - protocol


class UnitOfWork:
    """One use case's writes: a savepoint in the current write group.

    It rolls back unless `commit()` is called; the block's exit returns only once the
    group's COMMIT is durable. Every call is one hop to the writer thread.
    """

    def __init__(self, connection: aiosqlite.Connection, savepoint: bool) -> None:
        self._connection = connection
        # The first use case of a group needs no savepoint: nothing else is in the
        # transaction yet, so a rollback can undo the whole of it.
        self.savepoint = savepoint
        self.committed = False

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one statement; returns the last inserted row id."""
        row = await self._connection.execute_insert(sql, params)
        return int(row[0]) if row and row[0] is not None else 0

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        await self._connection.executemany(sql, rows)

    async def fetch_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        """The first row of a query inside the transaction."""
        rows = await self._connection.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def fetch_all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        """All rows of a query inside the transaction."""
        return list(await self._connection.execute_fetchall(sql, params))

    async def commit(self) -> None:
        """Keep this use case's writes; durable when the unit of work's block exits."""
        if self.savepoint:
            await self._connection.execute("RELEASE SAVEPOINT uow")
        self.committed = True


class ImmediateUnitOfWork(UnitOfWork):
    """The same interface, run on the writer thread itself: each call completes at once.

    A use case's whole transaction body — storage calls and the pure domain between
    them — then costs one hop to the writer thread instead of one per statement.
    """

    def __init__(self, raw: sqlite3.Connection, savepoint: bool) -> None:
        self._raw = raw
        self.savepoint = savepoint
        self.committed = False

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one statement; returns the last inserted row id."""
        return self._raw.execute(sql, params).lastrowid or 0

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        self._raw.executemany(sql, rows)

    async def fetch_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        """The first row of a query inside the transaction."""
        return self._raw.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    async def fetch_all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        """All rows of a query inside the transaction."""
        return list(self._raw.execute(sql, params).fetchall())

    async def commit(self) -> None:
        """Keep this use case's writes; durable once the group commits."""
        if self.savepoint:
            self._raw.execute("RELEASE SAVEPOINT uow")
        self.committed = True


def _undo_raw(raw: sqlite3.Connection, savepoint: bool) -> None:
    if savepoint:
        raw.execute("ROLLBACK TO SAVEPOINT uow")
        raw.execute("RELEASE SAVEPOINT uow")
    else:
        raw.execute("ROLLBACK")


def _complete(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (it only awaits immediate storage calls)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a transaction body awaited something other than the database")


class Database:
    """The SQLite database file (WAL, foreign keys on), migrated on `connect()`."""

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        # FULL: a commit survives a power cut, not only a crash; a citizen was told
        # "filed" only after it.
        self._synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        # Called after every commit: the outbox sender wakes up instead of polling.
        self.commit_listeners: list[Callable[[], None]] = []
        self._waiting = 0
        self._group: asyncio.Future[None] | None = None
        self._group_size = 0

    async def _open(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(self.path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        await connection.execute("PRAGMA journal_mode = WAL")
        await connection.execute("PRAGMA foreign_keys = ON")
        await connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        await connection.execute("PRAGMA busy_timeout = 10000")
        return connection

    async def connect(self, *, migrate: bool = True) -> list[int]:
        """Open the connections and apply pending migrations; returns the versions applied."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._open()
        applied = await self.migrate() if migrate else []
        self._reader = await self._open()
        return applied

    async def close(self) -> None:
        """Close both connections (waiting for a transaction in flight to finish)."""
        async with self._lock:
            await self._close_connections()

    async def _close_connections(self) -> None:
        for connection in (self._reader, self._writer):
            if connection is not None:
                await connection.close()
        self._reader = self._writer = None

    @property
    def writer(self) -> aiosqlite.Connection:
        """The writer connection (raises if not connected)."""
        if self._writer is None:
            raise RuntimeError("database is not connected")
        return self._writer

    async def schema_version(self) -> int:
        """The schema version recorded in the file (`PRAGMA user_version`)."""
        async with self.writer.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> list[int]:
        """Apply the migrations the file does not have yet, each in its own transaction."""
        current = await self.schema_version()
        applied: list[int] = []
        for version, name, sql in migrations():
            if version <= current:
                continue
            logger.info("applying migration %s", name)
            try:
                await self.writer.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"
                )
            except Exception:
                if self.writer.in_transaction:
                    await self.writer.execute("ROLLBACK")
                raise
            applied.append(version)
        return applied

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A use case's writes; rolled back unless the block calls `commit()`.

        Group commit: use cases that queue for the writer while another runs join one
        transaction, each in its own savepoint, and the last of them commits for all —
        one fsync for the group instead of one each. Every block still exits only after
        its writes are durable, so "filed as …" is never said before the commit.
        """
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        group: asyncio.Future[None] | None = None
        uow = UnitOfWork(self.writer, savepoint=self._group is not None)
        try:
            if self._group is None:
                await self.writer.execute("BEGIN IMMEDIATE")
                self._group = asyncio.get_running_loop().create_future()
                self._group_size = 0
            else:
                await self.writer.execute("SAVEPOINT uow")
            group = self._group
            self._group_size += 1
            try:
                yield uow
            finally:
                if not uow.committed:
                    await self._undo(uow)
            if self._group is not None and (self._waiting == 0 or self._group_size >= GROUP_LIMIT):
                await self._commit_group()
        except BaseException:
            if self._group is not None and self._waiting == 0:
                await self._commit_group()
            raise
        finally:
            self._lock.release()
        if group is not None and uow.committed:
            await group  # the COMMIT of this use case's group: durable from here on

    async def run(self, body: Callable[[UnitOfWork], Coroutine[Any, Any, T]]) -> T:
        """Run a use case's transaction body on the writer thread, in one hop.

        `body` gets a unit of work and may only await its calls (they complete at once);
        it must call `commit()` to keep its writes. Group commit as in `unit_of_work`:
        this returns only after the writes are durable.
        """
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        try:
            first = self._group is None
            # aiosqlite runs `_execute(fn)` on its own thread; the only way to hand it a
            # whole transaction rather than one statement at a time.
            raw: sqlite3.Connection = self.writer._conn

            def transaction() -> tuple[T, bool]:
                raw.execute("BEGIN IMMEDIATE" if first else "SAVEPOINT uow")
                uow = ImmediateUnitOfWork(raw, savepoint=not first)
                try:
                    result = _complete(body(uow))
                except BaseException:
                    _undo_raw(raw, uow.savepoint)
                    raise
                if not uow.committed:
                    _undo_raw(raw, uow.savepoint)
                return result, uow.committed

            if first:
                self._group = asyncio.get_running_loop().create_future()
                self._group_size = 0
            group = self._group
            try:
                result, committed = await self.writer._execute(transaction)
            except BaseException:
                if first:  # the transaction was rolled back whole
                    self._group = None
                    assert group is not None
                    group.set_result(None)
                elif self._waiting == 0:
                    await self._commit_group()
                raise
            if first and not committed:
                self._group = None
                assert group is not None
                group.set_result(None)
            else:
                self._group_size += 1
                if self._waiting == 0 or self._group_size >= GROUP_LIMIT:
                    await self._commit_group()
        finally:
            self._lock.release()
        if committed:
            await group
        return result

    async def _undo(self, uow: UnitOfWork) -> None:
        """Roll back one use case: its savepoint, or the whole group if it was alone."""
        if uow.savepoint:
            await self.writer.execute("ROLLBACK TO SAVEPOINT uow")
            await self.writer.execute("RELEASE SAVEPOINT uow")
            return
        await self.writer.execute("ROLLBACK")
        group, self._group = self._group, None
        if group is not None:
            group.set_result(None)

    async def _commit_group(self) -> None:
        """COMMIT the open group and tell every member (with the lock held)."""
        group, self._group = self._group, None
        assert group is not None
        try:
            await self.writer.execute("COMMIT")
        except Exception as error:
            if self.writer.in_transaction:
                await self.writer.execute("ROLLBACK")
            group.set_exception(error)
            group.exception()  # marked retrieved: each member re-raises it on await
            return
        group.set_result(None)
        for listener in self.commit_listeners:
            listener()

    async def fetch_all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        """All rows of a read-only query, on the reader connection."""
        if self._reader is None:
            raise RuntimeError("database is not connected")
        # One hop on the reader's thread: the statement runs to its end before another
        # coroutine's query starts. Between an execute and its fetch the statement would
        # hold its read snapshot open, and the other query would read that old snapshot
        # (rows committed meanwhile would look pending still).
        return list(await self._reader.execute_fetchall(sql, params))

    async def fetch_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        """The first row of a read-only query, on the reader connection."""
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None
