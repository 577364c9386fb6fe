"""Loading and saving the case aggregate, case numbers, and the event log."""

from __future__ import annotations

import json
from typing import Any

from bot.domain import errors
from bot.domain.case import (
    Actor,
    Answer,
    AnswerKind,
    AnswerState,
    Assignment,
    AssignmentRole,
    AssignmentState,
    Case,
    CaseState,
    Decision,
    Event,
    Extension,
    Question,
    Rating,
    RatingRecord,
    RejectReason,
    Role,
)
from bot.domain.policy import Track
from storage.db import Reader, Row, UnitOfWork, from_db, to_db


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


async def next_case_number(uow: UnitOfWork, prefix: str, year: int) -> str:
    """The next public number for a prefix and year, e.g. CZ2026-000123 (no gaps, no races)."""
    row = await uow.fetch_one(
        "INSERT INTO counters(name, value) VALUES (?, 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
        (f"case:{prefix}{year}",),
    )
    assert row is not None
    return f"{prefix}{year}-{row[0]:06d}"


async def mark_update_processed(uow: UnitOfWork, update_id: int | None, now_db: int) -> None:
    """Record a Telegram update id inside the transaction; a repeat raises DuplicateUpdate."""
    if update_id is None:
        return
    row = await uow.fetch_one(
        "INSERT INTO processed_updates(update_id, processed_at) VALUES (?, ?) "
        "ON CONFLICT(update_id) DO NOTHING RETURNING update_id",
        (update_id, now_db),
    )
    if row is None:
        raise errors.DuplicateUpdate(str(update_id), update_id=update_id)


def _assignment(row: Row) -> Assignment:
    return Assignment(
        unit_code=row["unit_code"],
        role=AssignmentRole(row["role"]),
        round=row["round"],
        assigned_at=from_db(row["assigned_at"]),  # type: ignore[arg-type]
        sign_due=from_db(row["sign_due"]),
        reply_due=from_db(row["reply_due"]),  # type: ignore[arg-type]
        resolve_due=from_db(row["resolve_due"]),
        state=AssignmentState(row["state"]),
        id=row["id"],
        signed_at=from_db(row["signed_at"]),
        replied_at=from_db(row["replied_at"]),
        resolved_at=from_db(row["resolved_at"]),
        sign_on_time=_bool(row["sign_on_time"]),
        reply_on_time=_bool(row["reply_on_time"]),
        resolve_on_time=_bool(row["resolve_on_time"]),
        may_return=bool(row["may_return"]),
        returns=row["returns"],
        paused_at=from_db(row["paused_at"]),
        next_check_at=from_db(row["next_check_at"]),
        chase_fired=json.loads(row["chase_fired"]),
    )


async def load_case(uow: Reader, *, number: str | None = None, case_id: int | None = None) -> Case:
    """Load a whole case by public number or id; CaseNotFound if there is none."""
    if number is not None:
        row = await uow.fetch_one("SELECT * FROM cases WHERE number = ?", (number.strip().upper(),))
    else:
        row = await uow.fetch_one("SELECT * FROM cases WHERE id = ?", (case_id,))
    if row is None:
        raise errors.CaseNotFound(str(number or case_id), case=str(number or case_id))
    cid = row["id"]
    case = Case(
        number=row["number"],
        citizen_id=row["citizen_id"],
        category=row["category"],
        district=row["district"],
        text=row["text"],
        filed_at=from_db(row["filed_at"]),  # type: ignore[arg-type]
        state=CaseState(row["state"]),
        id=cid,
        track=Track(row["track"]) if row["track"] else None,
        round=row["round"],
        location=(row["latitude"], row["longitude"]) if row["latitude"] is not None else None,
        contact_shared=bool(row["contact_shared"]),
        reject_reason=RejectReason(row["reject_reason"]) if row["reject_reason"] else None,
        reject_note=row["reject_note"],
        duplicate_of=row["duplicate_of"],
        returns_count=row["returns_count"],
        co_input_waived=bool(row["co_input_waived"]),
        published_at=from_db(row["published_at"]),
        callback_due=from_db(row["callback_due"]),
        callback_reminded=bool(row["callback_reminded"]),
        closed_at=from_db(row["closed_at"]),
        close_reason=row["close_reason"],
        escalation_level=row["escalation_level"],
    )
    case.assignments = [
        _assignment(r)
        for r in await uow.fetch_all(
            "SELECT * FROM assignments WHERE case_id = ? ORDER BY id", (cid,)
        )
    ]
    case.answers = [
        Answer(
            kind=AnswerKind(r["kind"]),
            unit_code=r["unit_code"],
            author_id=r["author_id"],
            text=r["text"],
            at=from_db(r["at"]),  # type: ignore[arg-type]
            state=AnswerState(r["state"]),
            round=r["round"],
            attachments=json.loads(r["attachments"]),
            review_comment=r["review_comment"],
            id=r["id"],
        )
        for r in await uow.fetch_all("SELECT * FROM answers WHERE case_id = ? ORDER BY id", (cid,))
    ]
    case.questions = [
        Question(
            asked_by=r["asked_by"],
            unit_code=r["unit_code"],
            text=r["text"],
            asked_at=from_db(r["asked_at"]),  # type: ignore[arg-type]
            answer=r["answer"],
            answered_at=from_db(r["answered_at"]),
            pauses_clock=bool(r["pauses_clock"]),
            id=r["id"],
        )
        for r in await uow.fetch_all(
            "SELECT * FROM questions WHERE case_id = ? ORDER BY id", (cid,)
        )
    ]
    case.extensions = [
        Extension(
            unit_code=r["unit_code"],
            requested_by=r["requested_by"],
            new_due=from_db(r["new_due"]),  # type: ignore[arg-type]
            reason=r["reason"],
            requested_at=from_db(r["requested_at"]),  # type: ignore[arg-type]
            decision=Decision(r["decision"]),
            decided_by=r["decided_by"],
            decided_at=from_db(r["decided_at"]),
            id=r["id"],
        )
        for r in await uow.fetch_all(
            "SELECT * FROM extensions WHERE case_id = ? ORDER BY id", (cid,)
        )
    ]
    case.ratings = [
        RatingRecord(
            round=r["round"],
            rating=Rating(r["rating"]),
            at=from_db(r["at"]),  # type: ignore[arg-type]
            unit_code=r["unit_code"],
            comment=r["comment"],
            appeal=Decision(r["appeal"]) if r["appeal"] else None,
            appeal_reason=r["appeal_reason"],
            id=r["id"],
        )
        for r in await uow.fetch_all("SELECT * FROM ratings WHERE case_id = ? ORDER BY id", (cid,))
    ]
    return case


def _case_columns(case: Case, now_db: int) -> dict[str, Any]:
    lead = case.lead
    return {
        "number": case.number,
        "citizen_id": case.citizen_id,
        "category": case.category,
        "district": case.district,
        "text": case.text,
        "latitude": case.location[0] if case.location else None,
        "longitude": case.location[1] if case.location else None,
        "contact_shared": int(case.contact_shared),
        "track": case.track.value if case.track else None,
        "state": case.state.value,
        "round": case.round,
        "lead_unit": lead.unit_code if lead else None,
        "filed_at": to_db(case.filed_at),
        "reject_reason": case.reject_reason.value if case.reject_reason else None,
        "reject_note": case.reject_note,
        "duplicate_of": case.duplicate_of,
        "returns_count": case.returns_count,
        "co_input_waived": int(case.co_input_waived),
        "published_at": to_db(case.published_at),
        "callback_due": to_db(case.callback_due),
        "callback_reminded": int(case.callback_reminded),
        "closed_at": to_db(case.closed_at),
        "close_reason": case.close_reason,
        "escalation_level": case.escalation_level,
        "updated_at": now_db,
    }


def _assignment_columns(case_id: int, a: Assignment) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "unit_code": a.unit_code,
        "role": a.role.value,
        "round": a.round,
        "state": a.state.value,
        "assigned_at": to_db(a.assigned_at),
        "sign_due": to_db(a.sign_due),
        "reply_due": to_db(a.reply_due),
        "resolve_due": to_db(a.resolve_due),
        "signed_at": to_db(a.signed_at),
        "replied_at": to_db(a.replied_at),
        "resolved_at": to_db(a.resolved_at),
        "sign_on_time": _flag(a.sign_on_time),
        "reply_on_time": _flag(a.reply_on_time),
        "resolve_on_time": _flag(a.resolve_on_time),
        "may_return": int(a.may_return),
        "returns": a.returns,
        "paused_at": to_db(a.paused_at),
        "next_check_at": to_db(a.next_check_at),
        "chase_fired": json.dumps(a.chase_fired),
    }


async def _upsert(uow: UnitOfWork, table: str, row_id: int | None, columns: dict[str, Any]) -> int:
    names = list(columns)
    if row_id is None:
        placeholders = ", ".join("?" for _ in names)
        return await uow.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})",
            [columns[n] for n in names],
        )
    assignments = ", ".join(f"{n} = ?" for n in names)
    await uow.execute(
        f"UPDATE {table} SET {assignments} WHERE id = ?", [*(columns[n] for n in names), row_id]
    )
    return row_id


async def save_case(uow: UnitOfWork, case: Case, now_db: int) -> list[tuple[int, Event]]:
    """Write the case and its parts, append its new events; returns (event id, event) pairs."""
    case.id = await _upsert(uow, "cases", case.id, _case_columns(case, now_db))
    cid = case.id
    for assignment in case.assignments:
        assignment.id = await _upsert(
            uow, "assignments", assignment.id, _assignment_columns(cid, assignment)
        )
    for answer in case.answers:
        answer.id = await _upsert(
            uow,
            "answers",
            answer.id,
            {
                "case_id": cid,
                "round": answer.round,
                "kind": answer.kind.value,
                "unit_code": answer.unit_code,
                "author_id": answer.author_id,
                "text": answer.text,
                "at": to_db(answer.at),
                "state": answer.state.value,
                "review_comment": answer.review_comment,
                "attachments": json.dumps(answer.attachments, ensure_ascii=False),
            },
        )
    for question in case.questions:
        question.id = await _upsert(
            uow,
            "questions",
            question.id,
            {
                "case_id": cid,
                "asked_by": question.asked_by,
                "unit_code": question.unit_code,
                "text": question.text,
                "asked_at": to_db(question.asked_at),
                "answer": question.answer,
                "answered_at": to_db(question.answered_at),
                "pauses_clock": int(question.pauses_clock),
            },
        )
    for extension in case.extensions:
        extension.id = await _upsert(
            uow,
            "extensions",
            extension.id,
            {
                "case_id": cid,
                "unit_code": extension.unit_code,
                "requested_by": extension.requested_by,
                "new_due": to_db(extension.new_due),
                "reason": extension.reason,
                "requested_at": to_db(extension.requested_at),
                "decision": extension.decision.value,
                "decided_by": extension.decided_by,
                "decided_at": to_db(extension.decided_at),
            },
        )
    for rating in case.ratings:
        rating.id = await _upsert(
            uow,
            "ratings",
            rating.id,
            {
                "case_id": cid,
                "round": rating.round,
                "rating": rating.rating.value,
                "unit_code": rating.unit_code,
                "comment": rating.comment,
                "at": to_db(rating.at),
                "appeal": rating.appeal.value if rating.appeal else None,
                "appeal_reason": rating.appeal_reason,
            },
        )
    written: list[tuple[int, Event]] = []
    for event in case.new_events:
        event_id = await uow.execute(
            "INSERT INTO events(case_id, at, kind, actor_id, actor_role, unit_code, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                cid,
                to_db(event.at),
                event.kind,
                event.actor.user_id,
                event.actor.role.value,
                event.unit_code,
                json.dumps(event.details, ensure_ascii=False, default=str),
            ),
        )
        written.append((event_id, event))
    case.new_events = []
    return written


async def load_events(uow: Reader, case_id: int) -> list[Event]:
    """The whole timeline of a case, oldest first."""
    rows = await uow.fetch_all("SELECT * FROM events WHERE case_id = ? ORDER BY id", (case_id,))
    return [
        Event(
            kind=r["kind"],
            at=from_db(r["at"]),  # type: ignore[arg-type]
            actor=Actor(r["actor_id"], Role(r["actor_role"])),
            unit_code=r["unit_code"],
            details=json.loads(r["details"]),
        )
        for r in rows
    ]
