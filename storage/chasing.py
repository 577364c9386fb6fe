"""Queries of the deadline sweep: what is due now, found through an index, never a scan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.db import Database, from_db, to_db

DUE_NOW_SQL = """
SELECT a.id, a.case_id, c.number, a.unit_code, a.next_check_at
FROM assignments a INDEXED BY assignments_due
JOIN cases c ON c.id = a.case_id
WHERE a.next_check_at IS NOT NULL AND a.next_check_at <= ?
ORDER BY a.next_check_at
LIMIT ?
"""


@dataclass(frozen=True)
class DueAssignment:
    """An assignment whose next chase check has come."""

    assignment_id: int
    case_id: int
    number: str
    unit_code: str
    check_at: datetime


async def due_assignments(db: Database, now: datetime, limit: int = 1000) -> list[DueAssignment]:
    """Assignments whose next check is due, oldest first (at most `limit`)."""
    rows = await db.fetch_all(DUE_NOW_SQL, (to_db(now), limit))
    return [
        DueAssignment(r[0], r[1], r[2], r[3], from_db(r[4]))  # type: ignore[arg-type]
        for r in rows
    ]
