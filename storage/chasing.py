"""Queries of the deadline sweep: what is due now, found through an index, never a scan;
and the sweep's writes, in bulk.

The sweep reads only what planning needs (`due_for_chasing`: the due assignments with
their case's track, state and round) and writes only what changed (`record_chase`: the
assignments' fired keys and next checks, the escalated cases' level, the events and their
outbox rows), a statement per table for the whole sweep.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.case import AssignmentRole, AssignmentState, CaseState, Event
from bot.domain.chasing import ChasedAssignment, ChasedCase
from bot.domain.notifications import OutboxMessage
from bot.domain.policy import Track
from storage.db import Reader, UnitOfWork, to_db, to_json
from storage.outbox import enqueue_rows

logger = logging.getLogger(__name__)

# The due assignments (oldest check first, through the partial index: never a scan) with
# what planning needs and nothing else: the assignment's columns in `ChasedAssignment`'s
# order, then its case's.
DUE_FOR_CHASING_SQL = """
SELECT a.id, a.unit_code, a.role, a.round, a.state, a.assigned_at,
       a.sign_due, a.reply_due, a.resolve_due, a.signed_at, a.replied_at, a.resolved_at,
       a.paused_at, a.chase_fired,
       a.case_id, c.number, c.track, c.state, c.round
FROM assignments a INDEXED BY assignments_due
JOIN cases c ON c.id = a.case_id
WHERE a.next_check_at IS NOT NULL AND a.next_check_at <= ?
ORDER BY a.next_check_at
LIMIT ?
"""

_CLOSED = (CaseState.CLOSED.value, CaseState.REJECTED.value)
_TRACKS = {track.value: track for track in Track}
# A dict lookup is several times cheaper than calling the enum, row after row.
_ROLES = {role.value: role for role in AssignmentRole}
_STATES = {state.value: state for state in AssignmentState}


async def due_for_chasing(
    uow: Reader, now: datetime, limit: int
) -> list[tuple[ChasedCase, list[ChasedAssignment]]]:
    """The due assignments (at most `limit`, oldest check first) grouped by case, each
    case in the order its first assignment came due and its assignments in id order.

    Times stay as stored (integer microseconds): planning works on them as they are.
    """
    cases: dict[int, tuple[ChasedCase, list[ChasedAssignment]]] = {}
    for r in await uow.fetch_all(DUE_FOR_CHASING_SQL, (to_db(now), limit)):
        try:
            assignment = ChasedAssignment(
                *r[:2], _ROLES[r[2]], r[3], _STATES[r[4]], *r[5:13], json.loads(r[13])
            )
        except (KeyError, ValueError):
            # A damaged row (a hand edit): skipped and left due, the sweep goes on.
            logger.exception("deadline sweep: assignment %s of case %s skipped", r[0], r[15])
            continue
        entry = cases.get(r[14])
        if entry is None:
            case = ChasedCase(r[14], r[15], _TRACKS.get(r[16] or ""), r[18], r[17] not in _CLOSED)
            entry = cases[r[14]] = (case, [])
        entry[1].append(assignment)
    for _, assignments in cases.values():
        if len(assignments) > 1:
            assignments.sort(key=lambda a: a.id)
    return list(cases.values())


@dataclass(frozen=True)
class ChaseRecord:
    """What one sweep writes."""

    # Every assignment looked at: (its id, its next check, its new fired keys or None
    # when they did not change).
    checked: Sequence[tuple[int, int | None, list[str] | None]]
    # Case id -> its new escalation level.
    escalated: dict[int, str]
    # (case id, event, the messages it causes), in the order the steps were taken.
    events: Sequence[tuple[int, Event, list[OutboxMessage]]]


async def record_chase(uow: UnitOfWork, record: ChaseRecord, now: datetime) -> None:
    """Write one sweep's outcome inside the caller's transaction, a statement per table."""
    now_db = to_db(now)
    await uow.execute_many(
        "UPDATE assignments SET next_check_at = ?, chase_fired = coalesce(?, chase_fired)"
        " WHERE id = ?",
        [
            (next_check, None if fired is None else to_json(fired), assignment_id)
            for assignment_id, next_check, fired in record.checked
        ],
    )
    if record.escalated:
        await uow.execute_many(
            "UPDATE cases SET escalation_level = ?, updated_at = ? WHERE id = ?",
            [(level, now_db, case_id) for case_id, level in record.escalated.items()],
        )
    if not record.events:
        return
    # The writer holds the database, so the next ids are known: the events go in with
    # one statement and their outbox rows can name them.
    row = await uow.fetch_one("SELECT coalesce(max(id), 0) FROM events")
    first_id = int(row[0]) + 1 if row else 1
    await uow.execute_many(
        "INSERT INTO events(id, case_id, at, kind, actor_id, actor_role, unit_code, details)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                first_id + index,
                case_id,
                to_db(event.at),
                event.kind,
                event.actor.user_id,
                event.actor.role.value,
                event.unit_code,
                to_json(event.details),
            )
            for index, (case_id, event, _) in enumerate(record.events)
        ],
    )
    await enqueue_rows(
        uow,
        [
            (case_id, first_id + index, message)
            for index, (case_id, _, messages) in enumerate(record.events)
            for message in messages
        ],
        now_db or 0,
    )
