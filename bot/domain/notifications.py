"""Who is told what when something happens to a case (pure: events in, messages out).

Messages carry a key and parameters, never rendered text: the outbox sender renders
them in each recipient's language at send time. Cards (the desk's and each unit's view
of a case) are refreshed by a `card.*` message with the card's key; the sender edits
the card in place from the case's current state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.domain.case import Case, Event


class CaseRef(Protocol):
    """What addressing a message needs of a case: a whole `Case`, or the deadline sweep's
    lean view of one."""

    @property
    def id(self) -> int | None: ...  # pragma: no cover - protocol

    @property
    def number(self) -> str: ...  # pragma: no cover - protocol


@dataclass(frozen=True)
class OutboxMessage:
    """A message to send: 'user' (ref = user id), 'unit' (ref = unit code), or a staff group."""

    recipient_kind: str
    recipient_ref: str | None
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    card_key: str | None = None


def to_citizen(case: Case, key: str, **params: Any) -> OutboxMessage:
    """A message to the citizen who filed the case."""
    return OutboxMessage("user", str(case.citizen_id), key, {"number": case.number, **params})


def to_unit(case: CaseRef, unit: str, key: str, **params: Any) -> OutboxMessage:
    """A message to a unit's group."""
    return OutboxMessage("unit", unit, key, {"number": case.number, **params})


def to_group(case: CaseRef, group: str, key: str, **params: Any) -> OutboxMessage:
    """A message to the dispatch, supervision or leaders' group."""
    return OutboxMessage(group, None, key, {"number": case.number, **params})


def desk_card(case: CaseRef) -> OutboxMessage:
    """Refresh (or first post) the desk's card of the case."""
    return OutboxMessage(
        "dispatch", None, "card.desk", {"case_id": case.id}, card_key=f"desk:{case.id}"
    )


def unit_card(case: CaseRef, unit: str) -> OutboxMessage:
    """Refresh (or first post) a unit's card of the case."""
    return OutboxMessage(
        "unit",
        unit,
        "card.unit",
        {"case_id": case.id, "unit": unit},
        card_key=f"unit:{unit}:{case.id}",
    )


def _unit_cards(case: Case) -> list[OutboxMessage]:
    units = {a.unit_code for a in case.assignments if a.round == case.round}
    return [unit_card(case, unit) for unit in sorted(units)]


CHASING_EVENTS = frozenset({"CaseEscalated", "ReminderSent", "OverdueNoticeSent"})


def chasing_messages(case: CaseRef, event: Event, handling_units: list[str]) -> list[OutboxMessage]:
    """The messages of a chasing step or an escalation (by the sweep or by staff).

    The deadline sweep calls this with its lean view of the case, so `handling_units`
    (the case's active units, lead first) is passed in rather than read off a `Case`.
    """
    d = event.details
    unit = event.unit_code
    kind = event.kind
    if kind == "CaseEscalated":
        group = "supervision" if d["level"] == "supervision" else "leaders"
        messages = [
            desk_card(case),
            to_group(
                case,
                group,
                f"{group}.escalation",
                reason=d["reason"],
                case_id=case.id,
                units=handling_units,
                unit=unit,
                stage=d.get("stage"),
                due=d.get("due"),
                issued_at=event.at.isoformat(),
            ),
        ]
        if unit and d["reason"] == "overdue":
            messages.append(
                to_unit(
                    case,
                    unit,
                    "unit.escalated",
                    level=d["level"],
                    stage=d.get("stage"),
                    due=d.get("due"),
                )
            )
        return messages
    if kind == "ReminderSent":
        return [to_unit(case, unit or "", "unit.reminder", stage=d["stage"], due=d["due"])]
    if kind == "OverdueNoticeSent":
        # The notice alone: the unit's card shows nothing an overdue notice changes, and
        # refreshing it each morning cost the group an edit per overdue case.
        more = [
            {"stage": m["stage"], "due": m["due"], "days": m["days_overdue"]}
            for m in d.get("more", ())
        ]
        return [
            to_unit(
                case,
                unit or "",
                "unit.overdue",
                stage=d["stage"],
                due=d["due"],
                days=d["days_overdue"],
                **({"more": more} if more else {}),
            )
        ]
    raise ValueError(f"not a chasing event: {kind}")


def messages_for(case: Case, event: Event) -> list[OutboxMessage]:
    """The messages one event causes."""
    d = event.details
    unit = event.unit_code
    kind = event.kind
    lead = case.lead
    if kind == "CaseFiled":
        return [to_citizen(case, "citizen.case_filed"), desk_card(case)]
    if kind == "RepeatFiled":
        return [to_citizen(case, "citizen.repeat_linked")]
    if kind == "TrackSet":
        messages = [desk_card(case), *_unit_cards(case)]
        if d["track"] == "high_level":
            messages.append(to_group(case, "leaders", "leaders.special_report", case_id=case.id))
        return messages
    if kind == "CaseAssigned":
        units = [d["lead"], *d["co_units"]]
        return [
            desk_card(case),
            *(unit_card(case, u) for u in units),
            to_citizen(case, "citizen.case_assigned", unit=d["lead"]),
        ]
    if kind == "CaseReassigned":
        return [
            desk_card(case),
            unit_card(case, d["previous"]),
            unit_card(case, d["lead"]),
            to_citizen(case, "citizen.case_assigned", unit=d["lead"]),
        ]
    if kind == "CaseRejected":
        return [
            desk_card(case),
            to_citizen(
                case,
                "citizen.case_rejected",
                reason=d["reason"],
                note=d["note"],
                duplicate_of=d["duplicate_of"],
            ),
        ]
    if kind == "AssignmentSigned":
        messages = [desk_card(case), unit_card(case, unit or "")]
        if d["role"] == "lead":
            messages.append(to_citizen(case, "citizen.case_signed", unit=unit))
        return messages
    if kind == "AssignmentReturned":
        return [
            desk_card(case),
            unit_card(case, unit or ""),
            to_group(
                case,
                "dispatch",
                "desk.case_returned",
                unit=unit,
                reason=d["reason"],
                note=d["note"],
                returns=d["returns"],
                case_id=case.id,
            ),
        ]
    if kind == "ReturnRuledUnfounded":
        return [
            desk_card(case),
            unit_card(case, unit or ""),
            to_unit(case, unit or "", "unit.return_unfounded", note=d.get("note")),
        ]
    if kind in ("CoUnitReassigned", "CoUnitAdded"):
        return [desk_card(case), unit_card(case, unit or "")]
    if kind in CHASING_EVENTS:
        return chasing_messages(case, event, case.handling_units if kind == "CaseEscalated" else [])
    if kind == "ExtensionRequested":
        return [
            to_group(
                case,
                "dispatch",
                "desk.extension_request",
                unit=unit,
                new_due=d["new_due"],
                reason=d["reason"],
                case_id=case.id,
            ),
            unit_card(case, unit or ""),
        ]
    if kind in ("ExtensionApproved", "ExtensionDenied"):
        approved = kind == "ExtensionApproved"
        messages = [
            unit_card(case, unit or ""),
            to_unit(
                case,
                unit or "",
                "unit.extension_approved" if approved else "unit.extension_denied",
                new_due=d["new_due"],
            ),
        ]
        if approved:
            messages.append(
                to_citizen(case, "citizen.extension", new_due=d["new_due"], reason=d["reason"])
            )
        return messages
    if kind == "InterimAnswerPosted":
        return [
            to_citizen(case, "citizen.interim_answer", text=d["text"], unit=unit),
            unit_card(case, unit or ""),
            desk_card(case),
        ]
    if kind == "CoUnitInputPosted":
        messages = [unit_card(case, unit or ""), desk_card(case)]
        if lead is not None:
            messages.append(
                to_unit(case, lead.unit_code, "unit.co_unit_input", from_unit=unit, text=d["text"])
            )
        return messages
    if kind == "CoUnitInputWaived":
        return [desk_card(case)] + (
            [to_unit(case, lead.unit_code, "unit.co_input_waived")] if lead else []
        )
    if kind == "FinalAnswerPosted":
        messages = [unit_card(case, unit or ""), desk_card(case)]
        if d["needs_review"]:
            messages.append(
                to_group(
                    case,
                    "dispatch",
                    "desk.review_request",
                    unit=unit,
                    text=d["text"],
                    case_id=case.id,
                )
            )
        return messages
    if kind == "AnswerPublished":
        answer = next((a for a in reversed(case.answers) if a.kind.value == "final"), None)
        return [
            to_citizen(
                case,
                "citizen.final_answer",
                text=answer.text if answer else "",
                unit=unit,
                attachments=answer.attachments if answer else [],
            ),
            unit_card(case, unit or ""),
            desk_card(case),
        ]
    if kind == "AnswerSentBack":
        return [
            to_unit(case, unit or "", "unit.answer_sent_back", comment=d["comment"]),
            unit_card(case, unit or ""),
            desk_card(case),
        ]
    if kind == "CaseRated":
        messages = [desk_card(case)]
        if unit:
            messages += [
                to_unit(case, unit, "unit.case_rated", rating=d["rating"], comment=d["comment"]),
                unit_card(case, unit),
            ]
        return messages
    if kind == "CaseReopened":
        return [
            to_unit(
                case,
                unit or "",
                "unit.case_reopened",
                round=d["round"],
                comment=d["comment"],
                reason=d["reason"],
            ),
            unit_card(case, unit or ""),
            desk_card(case),
            to_citizen(case, "citizen.case_reopened", round=d["round"]),
        ]
    if kind == "ReopenedToDesk":
        return [
            desk_card(case),
            to_group(
                case, "dispatch", "desk.reopened_to_desk", comment=d["comment"], case_id=case.id
            ),
            to_citizen(case, "citizen.case_reopened", round=d["round"]),
        ]
    if kind == "CallbackReminded":
        return [to_citizen(case, "citizen.rating_reminder")]
    if kind == "CaseClosed":
        return [
            desk_card(case),
            *_unit_cards(case),
            to_citizen(case, "citizen.case_closed", reason=d["reason"]),
        ]
    if kind == "AppealFiled":
        return [
            to_group(
                case,
                "supervision",
                "supervision.appeal_request",
                unit=unit,
                reason=d["reason"],
                case_id=case.id,
            ),
            unit_card(case, unit or ""),
        ]
    if kind in ("AppealAccepted", "AppealRejected"):
        return [
            to_unit(
                case,
                unit or "",
                "unit.appeal_accepted" if kind == "AppealAccepted" else "unit.appeal_rejected",
            ),
            unit_card(case, unit or ""),
        ]
    if kind == "LeaderInstructed":
        return [
            *(to_unit(case, u, "unit.leader_instruction", text=d["text"]) for u in d["units"]),
            desk_card(case),
            *_unit_cards(case),
        ]
    if kind == "QuestionAsked":
        return [to_citizen(case, "citizen.question", text=d["text"]), unit_card(case, unit or "")]
    if kind == "ContactRelayed":
        return [to_citizen(case, "citizen.contact", text=d["text"])]
    if kind == "QuestionAnswered":
        if unit:
            return [
                to_unit(case, unit, "unit.citizen_answer", text=d["text"]),
                unit_card(case, unit),
            ]
        return [to_group(case, "dispatch", "desk.citizen_answer", text=d["text"], case_id=case.id)]
    # NoteAdded and chase bookkeeping stay on the timeline only.
    return []
