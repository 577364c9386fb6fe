"""Reads on the shared reader connection see every commit made before they began."""

from __future__ import annotations

import asyncio

from storage.db import Database


async def test_a_read_after_a_commit_sees_it_while_other_reads_are_in_flight(db: Database):
    async with db.unit_of_work() as uow:
        await uow.execute_many("INSERT INTO counters(name, value) VALUES (?, 0)",
                               [(f"row-{k}",) for k in range(2000)])
        await uow.commit()

    async def long_read() -> int:
        return len(await db.fetch_all("SELECT name, value FROM counters"))

    async def commit_then_read(k: int) -> int:
        async with db.unit_of_work() as uow:
            await uow.execute("UPDATE counters SET value = ? WHERE name = 'row-7'", (k,))
            await uow.commit()
        row = await db.fetch_one("SELECT value FROM counters WHERE name = 'row-7'")
        assert row is not None
        return int(row[0])

    for k in range(1, 30):
        results = await asyncio.gather(*(long_read() for _ in range(5)), commit_then_read(k),
                                       long_read())
        assert results[5] == k, f"round {k}: read {results[5]} after committing {k}"
