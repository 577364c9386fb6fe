"""Rendering outbox messages and cards in the reader's language.

Every message the bot sends because something happened to a case is rendered here,
at send time, from its key and parameters (and, for cards, the case's current state).
User text is always escaped, and clipped so a message stays within Telegram's limits.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain import errors
from bot.domain.case import Case, CaseState
from bot.domain.policy import Policy, Track
from bot.i18n import N_, Translator
from bot.letters import LetterFacts, assignment_letter
from storage.cases import load_case
from storage.db import Database

MESSAGE_LIMIT = 4096
USER_TEXT_LIMIT = 3500  # leaves room for the template around it

STATE_NAMES = {
    CaseState.NEW: N_("waiting for the dispatch desk"),
    CaseState.ASSIGNED: N_("assigned, waiting for the unit to sign for it"),
    CaseState.IN_PROGRESS: N_("being handled"),
    CaseState.ANSWERED: N_("answer under review"),
    CaseState.REPLIED: N_("answered, waiting for your rating"),
    CaseState.CLOSED: N_("closed"),
    CaseState.REJECTED: N_("not accepted"),
}
TRACK_NAMES = {
    Track.SPECIAL: N_("Special (urgent)"),
    Track.ROUTINE: N_("Routine"),
    Track.COORDINATED: N_("Coordinated"),
    Track.HIGH_LEVEL: N_("High-level"),
}
REJECT_REASONS = {
    "invalid": N_(
        "the message could not be handled as it stands (for example, it lacks the "
        "facts needed to act on it)"
    ),
    "duplicate": N_("it repeats a message that is already being handled"),
    "out_of_scope": N_("it is outside what the city's units can handle through this channel"),
}
CLOSE_REASONS = {
    "rated": N_("Thank you for your rating. The case is now closed."),
    "not_rated": N_("We did not receive a rating, so the case has been closed. Thank you."),
    "by_staff": N_("The case has been closed by the dispatch desk."),
}
RETURN_REASONS = {
    "district": N_("not our district (属地不符)"),
    "ownership": N_("unclear ownership (权属不清)"),
    "duty": N_("not our duty (职能交叉)"),
}
RATINGS = {
    "satisfied": N_("Satisfied"),
    "basically_satisfied": N_("Basically satisfied"),
    "unsatisfied": N_("Unsatisfied"),
    "not_rated": N_("Not rated"),
}


def escape(text: str | None, limit: int = USER_TEXT_LIMIT) -> str:
    """User text made safe for HTML, clipped to `limit` characters first."""
    value = text or ""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return html.escape(value, quote=False)


@dataclass
class Rendered:
    """A message ready to send: HTML text, optional buttons, files to send after it."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    documents: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, content)
    photos: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, PNG)


@dataclass
class RenderContext:
    """What rendering needs: the reader's language, the policy, and read access to cases."""

    t: Translator
    policy: Policy
    db: Database
    unit_names: dict[str, str] = field(default_factory=dict)  # units added by admins

    def _(self, message: str) -> str:
        return self.t.gettext(message)

    def when(self, value: str | datetime | None) -> str:
        """A stored ISO time or datetime in the city's time zone and the reader's style."""
        if value is None:
            return "—"
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return self.t.datetime(moment, self.policy.calendar.tz)

    def unit(self, code: str | None) -> str:
        """A unit's name in the reader's language."""
        if not code:
            return "—"
        unit = self.policy.units.get(code)
        if unit is not None:
            return html.escape(unit.name_in(self.t.language))
        return html.escape(self.unit_names.get(code, code))

    def category(self, code: str) -> str:
        """A category's name in the reader's language."""
        item = self.policy.categories.get(code)
        return html.escape(item.name_in(self.t.language) if item else code)

    def district(self, code: str) -> str:
        """A district's name in the reader's language."""
        item = self.policy.districts.get(code)
        return html.escape(item.name_in(self.t.language) if item else code)


def rating_keyboard(ctx: RenderContext, case_id: int) -> InlineKeyboardMarkup:
    """The three rating buttons of a published answer."""
    _ = ctx._
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("😊 " + _("Satisfied"), callback_data=f"r:{case_id}:s")],
            [
                InlineKeyboardButton(
                    "🙂 " + _("Basically satisfied"), callback_data=f"r:{case_id}:b"
                )
            ],
            [InlineKeyboardButton("☹️ " + _("Unsatisfied"), callback_data=f"r:{case_id}:u")],
        ]
    )


def reply_keyboard(ctx: RenderContext, case_id: int) -> InlineKeyboardMarkup:
    """The button under a relayed question."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton("✍️ " + ctx._("Reply"), callback_data=f"q:{case_id}")]]
    )


def case_summary(ctx: RenderContext, case: Case, *, with_text: bool = True) -> str:
    """Number, category, district and (optionally) the citizen's text."""
    _ = ctx._
    lines = [
        f"<b>{case.number}</b>",
        _("Category") + f": {ctx.category(case.category)}",
        _("District") + f": {ctx.district(case.district)}",
    ]
    if case.location:
        lines.append(_("Location") + f": {case.location[0]:.5f}, {case.location[1]:.5f}")
    if with_text:
        lines += ["", escape(case.text)]
    return "\n".join(lines)


def next_deadline(case: Case) -> tuple[str, datetime] | None:
    """The nearest open stage deadline of the lead unit: what the citizen waits for next."""
    lead = case.lead
    if lead is None or not case.is_open:
        return None
    stages = lead.open_stage_deadlines()
    if not stages:
        return None
    stage = min(stages, key=lambda s: stages[s])
    return stage, stages[stage]


STAGE_NAMES = {
    "sign": N_("sign-for by the unit"),
    "reply": N_("first reply"),
    "resolve": N_("final answer"),
}


async def _case(ctx: RenderContext, params: dict[str, Any]) -> Case:
    if "case_id" in params:
        return await load_case(ctx.db, case_id=int(params["case_id"]))
    return await load_case(ctx.db, number=str(params["number"]))


# -- the citizen's messages ----------------------------------------------------------------


async def citizen_case_filed(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    case = await _case(ctx, p)
    _ = ctx._
    routine = ctx.policy.track(Track.ROUTINE)
    calendar = ctx.policy.calendar
    # The desk assigns within a working day; the unit's reply clock runs from there.
    expected = routine.reply.after(calendar.add_working_days(case.filed_at, 1), calendar)
    text = "\n".join(
        [
            "✅ " + _("Your message has been filed as <b>{number}</b>.").format(number=case.number),
            "",
            _(
                "What happens next: the dispatch desk passes it to the responsible unit. The unit "
                "signs for it within 1 working day, replies within 3 and resolves it within 7."
            ),
            _("Expected first reply: by {date}.").format(date=ctx.when(expected)),
            "",
            _("Every answer will reach you here. Use /my to follow your cases."),
        ]
    )
    return Rendered(text)


async def citizen_repeat_linked(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """The citizen sent the same message again: it joined the first case, nothing new filed."""
    case = await _case(ctx, p)
    _ = ctx._
    return Rendered(
        "🔁 "
        + _(
            "This is the same as <b>{number}</b>, which you filed on {date}; we added it there "
            "instead of filing it again. Use /case {number} to follow it."
        ).format(number=case.number, date=ctx.when(case.filed_at))
    )


async def citizen_case_assigned(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    case = await _case(ctx, p)
    _ = ctx._
    lead = case.lead
    lines = [
        _("Your case <b>{number}</b> has been passed to {unit}.").format(
            number=case.number, unit=ctx.unit(p.get("unit"))
        )
    ]
    if lead is not None:
        lines.append(_("First reply due by {date}.").format(date=ctx.when(lead.reply_due)))
    return Rendered("\n".join(lines))


async def citizen_case_signed(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    return Rendered(
        ctx._("{unit} has signed for your case <b>{number}</b> and is handling it.").format(
            unit=ctx.unit(p.get("unit")), number=p["number"]
        )
    )


async def citizen_case_rejected(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    _ = ctx._
    reason = REJECT_REASONS.get(str(p.get("reason")), N_("it could not be accepted"))
    lines = [
        _("Your message <b>{number}</b> was not accepted as a case, because {reason}.").format(
            number=p["number"], reason=_(reason)
        ),
    ]
    if p.get("duplicate_of"):
        lines.append(
            _("It is being handled together with case <b>{original}</b>.").format(
                original=html.escape(str(p["duplicate_of"]))
            )
        )
    if p.get("note"):
        lines.append(_("Note from the desk: {note}").format(note=escape(p["note"])))
    lines.append(_("You are welcome to send a new message with more details."))
    return Rendered("\n".join(lines))


async def citizen_extension(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    return Rendered(
        ctx._(
            "The deadline for the final answer to your case <b>{number}</b> has been extended "
            "to {date}. Reason: {reason}"
        ).format(number=p["number"], date=ctx.when(p["new_due"]), reason=escape(p.get("reason")))
    )


async def citizen_interim_answer(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    return Rendered(
        ctx._("💬 Progress on your case <b>{number}</b> from {unit}:").format(
            number=p["number"], unit=ctx.unit(p.get("unit"))
        )
        + "\n\n"
        + escape(p.get("text"))
    )


async def citizen_final_answer(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    case = await _case(ctx, p)
    _ = ctx._
    text = "\n".join(
        [
            "📮 "
            + _("Answer to your case <b>{number}</b> from {unit}:").format(
                number=case.number, unit=ctx.unit(p.get("unit"))
            ),
            "",
            escape(p.get("text")),
            "",
            _("Are you satisfied with this answer? Please tap one of the buttons below."),
        ]
    )
    keyboard = rating_keyboard(ctx, case.id or 0) if case.state == CaseState.REPLIED else None
    return Rendered(text, keyboard, list(p.get("attachments") or []))


async def citizen_rating_reminder(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    case = await _case(ctx, p)
    keyboard = rating_keyboard(ctx, case.id or 0) if case.state == CaseState.REPLIED else None
    return Rendered(
        ctx._(
            "A reminder: how satisfied are you with the answer to your case "
            "<b>{number}</b>? Your rating helps us improve."
        ).format(number=case.number),
        keyboard,
    )


async def citizen_case_reopened(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    return Rendered(
        ctx._(
            "Your case <b>{number}</b> has been reopened and will be handled "
            "again. We will keep you informed."
        ).format(number=p["number"])
    )


async def citizen_case_closed(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    reason = CLOSE_REASONS.get(str(p.get("reason")), CLOSE_REASONS["by_staff"])
    return Rendered(f"<b>{p['number']}</b>: " + ctx._(reason))


async def citizen_question(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    case = await _case(ctx, p)
    return Rendered(
        ctx._("❓ The unit handling your case <b>{number}</b> asks:").format(number=case.number)
        + "\n\n"
        + escape(p.get("text"))
        + "\n\n"
        + ctx._("Tap Reply (or reply to this message) to answer."),
        reply_keyboard(ctx, case.id or 0),
    )


async def citizen_contact(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    case = await _case(ctx, p)
    return Rendered(
        ctx._("📞 A message from the dispatch desk about your case <b>{number}</b>:").format(
            number=case.number
        )
        + "\n\n"
        + escape(p.get("text"))
        + "\n\n"
        + ctx._("Tap Reply (or reply to this message) to answer."),
        reply_keyboard(ctx, case.id or 0),
    )


# -- staff and units (buttons come with the desk and unit handlers) -----------------------


def _deadlines(ctx: RenderContext, case: Case, unit: str | None = None) -> list[str]:
    _ = ctx._
    lines: list[str] = []
    for assignment in case.assignments:
        if assignment.round != case.round or not assignment.is_active:
            continue
        if unit is not None and assignment.unit_code != unit:
            continue
        for stage, due in assignment.open_stage_deadlines().items():
            lines.append(
                f"⏰ {ctx.unit(assignment.unit_code)} · {_(STAGE_NAMES[stage])}: {ctx.when(due)}"
            )
    return lines


TRACK_CODES = {
    Track.SPECIAL: "s",
    Track.ROUTINE: "r",
    Track.COORDINATED: "c",
    Track.HIGH_LEVEL: "h",
}


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


async def _identity(ctx: RenderContext, case: Case) -> str:
    """The citizen as staff see them: name, @username, Telegram id, phone if shared."""
    row = await ctx.db.fetch_one(
        "SELECT first_name, last_name, username, phone FROM users WHERE id = ?",
        (case.citizen_id,),
    )
    if row is None:
        return str(case.citizen_id)
    name = " ".join(part for part in (row[0], row[1]) if part) or "—"
    parts = [escape(name, 100)]
    if row[2]:
        parts.append("@" + escape(row[2], 64))
    parts.append(f"id {case.citizen_id}")
    if row[3] and case.contact_shared:
        parts.append("☎ " + escape(row[3], 32))
    return " · ".join(parts)


async def _shared_contact(ctx: RenderContext, case: Case) -> str | None:
    """What a unit may see of the citizen: only with the citizen's consent (DESIGN §7)."""
    if not case.contact_shared:
        return None
    row = await ctx.db.fetch_one(
        "SELECT first_name, last_name, phone FROM users WHERE id = ?", (case.citizen_id,)
    )
    if row is None:
        return None
    name = " ".join(part for part in (row[0], row[1]) if part)
    return " · ".join(escape(v, 100) for v in (name, row[2]) if v)


async def case_attachments(ctx: RenderContext, case: Case) -> list[dict[str, Any]]:
    """The files the citizen sent with the case."""
    rows = await ctx.db.fetch_all(
        "SELECT kind, file_id FROM attachments WHERE case_id = ? ORDER BY id", (case.id,)
    )
    return [{"kind": r[0], "file_id": r[1]} for r in rows]


async def _instructions(ctx: RenderContext, case: Case) -> list[str]:
    rows = await ctx.db.fetch_all(
        "SELECT details FROM events WHERE case_id = ? AND kind = 'LeaderInstructed' ORDER BY id",
        (case.id,),
    )
    return [
        "📌 " + ctx._("Leader's instruction") + ": " + escape(json.loads(r[0])["text"], 500)
        for r in rows
    ]


def desk_keyboard(ctx: RenderContext, case: Case) -> InlineKeyboardMarkup | None:
    """What the desk can do with the case now."""
    _ = ctx._
    cid = case.id
    rows: list[list[InlineKeyboardButton]] = []
    if case.state == CaseState.NEW:
        if case.track is None:
            rows.append(
                [_button(_(TRACK_NAMES[t]), f"d:t:{cid}:{TRACK_CODES[t]}") for t in Track][:2]
            )
            rows.append(
                [_button(_(TRACK_NAMES[t]), f"d:t:{cid}:{TRACK_CODES[t]}") for t in Track][2:]
            )
        else:
            returned = [
                a
                for a in case.assignments
                if a.round == case.round and a.state == "returned" and a.role == "lead"
            ]
            for code in ctx.policy.suggest_units(case.category, case.district)[:3]:
                rows.append([_button("→ " + html.unescape(ctx.unit(code)), f"d:a:{cid}:{code}")])
            rows.append(
                [
                    _button(_("Other unit…"), f"d:u:{cid}:0"),
                    _button(_("Change track"), f"d:tt:{cid}"),
                ]
            )
            if returned:
                rows.append(
                    [_button(_("Return unfounded (审定)"), f"d:uf:{cid}:{returned[0].unit_code}")]
                )
        rows.append(
            [_button(_("Reject"), f"d:rj:{cid}"), _button(_("Duplicate of…"), f"d:dp:{cid}")]
        )
    elif case.state in (CaseState.ASSIGNED, CaseState.IN_PROGRESS):
        if case.track == Track.COORDINATED:
            row = [_button(_("＋ Co-unit"), f"d:cp:{cid}:0")]
            waiting = [a for a in case.co_units if a.state != "reported"]
            if waiting and not case.co_input_waived:
                row.append(_button(_("Allow final answer now"), f"d:w:{cid}"))
            rows.append(row)
        rows.append([_button(_("Change track"), f"d:tt:{cid}")])
    elif case.state == CaseState.ANSWERED:
        rows.append(
            [
                _button("✅ " + _("Publish"), f"d:pub:{cid}"),
                _button("↩️ " + _("Send back"), f"d:sb:{cid}"),
            ]
        )
    return InlineKeyboardMarkup(rows) if rows else None


async def card_desk(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """The desk's live card of a case, with identities (staff see them) and actions."""
    case = await _case(ctx, p)
    _ = ctx._
    lines = ["🗂 " + case_summary(ctx, case), ""]
    lines.append(_("Citizen") + f": {await _identity(ctx, case)}")
    lines.append(_("State") + f": {_(STATE_NAMES[case.state])}")
    if case.track:
        lines.append(_("Track") + f": {_(TRACK_NAMES[case.track])}")
    if case.handling_units:
        lines.append(_("Units") + ": " + "、".join(ctx.unit(u) for u in case.handling_units))
    elif case.state == CaseState.NEW:
        suggested = ctx.policy.suggest_units(case.category, case.district)
        if suggested:
            lines.append(_("Suggested") + ": " + "、".join(ctx.unit(u) for u in suggested))
    if case.state == CaseState.NEW and case.is_open:
        duplicates = await ctx.db.fetch_all(
            "SELECT number, text FROM cases WHERE state NOT IN ('closed', 'rejected')"
            " AND category = ? AND district = ? AND id != ? ORDER BY id DESC LIMIT 20",
            (case.category, case.district, case.id),
        )
        similar = [r[0] for r in duplicates if similarity(case.text, r[1]) >= 0.5][:3]
        if similar:
            lines.append(_("Possible duplicates") + ": " + ", ".join(similar))
    if case.returns_count:
        lines.append(
            ctx.t.ngettext("Returned once", "Returned {n} times", case.returns_count).format(
                n=case.returns_count
            )
        )
    if case.reject_reason:
        lines.append(_("Rejected") + f": {_(REJECT_REASONS[case.reject_reason.value])}")
    if case.latest_rating:
        lines.append(_("Rating") + f": {_(RATINGS[case.latest_rating.rating.value])}")
    lines += _deadlines(ctx, case)
    lines += await _instructions(ctx, case)
    attachments = await case_attachments(ctx, case)
    if attachments:
        lines.append(_("Attachments: {n}").format(n=len(attachments)))
    return Rendered("\n".join(lines), desk_keyboard(ctx, case), attachments)


def unit_keyboard(ctx: RenderContext, case: Case, unit: str) -> InlineKeyboardMarkup | None:
    """What a unit can do with its assignment now."""
    _ = ctx._
    cid = case.id
    try:
        assignment = case.assignment_of(unit)
    except errors.NotYourCase:  # the unit no longer holds the case
        assignment = None
    rows: list[list[InlineKeyboardButton]] = []
    if assignment is not None and case.is_open:
        if assignment.state == "assigned":
            row = [_button("✅ " + _("Sign"), f"u:s:{cid}")]
            if assignment.may_return:
                row.append(_button("↩️ " + _("Return"), f"u:r:{cid}"))
            rows.append(row)
        elif assignment.state == "signed" and assignment.role == "lead":
            rows.append(
                [
                    _button(_("Interim answer"), f"u:i:{cid}"),
                    _button(_("Final answer"), f"u:f:{cid}"),
                ]
            )
            rows.append(
                [
                    _button(_("Ask the citizen"), f"u:q:{cid}"),
                    _button(_("Request extension"), f"u:e:{cid}"),
                ]
            )
        elif assignment.state == "signed":
            rows.append(
                [
                    _button(_("Send input to the lead"), f"u:n:{cid}"),
                    _button(_("Ask the citizen"), f"u:q:{cid}"),
                ]
            )
    appealable = [
        r
        for r in case.ratings
        if r.rating == "unsatisfied" and r.unit_code == unit and r.appeal is None
    ]
    if appealable:
        rows.append([_button(_("Appeal the rating (核减)"), f"u:ap:{cid}")])
    return InlineKeyboardMarkup(rows) if rows else None


async def card_unit(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """A unit's live card: what it needs to act, never the citizen's identity unless shared."""
    case = await _case(ctx, p)
    _ = ctx._
    unit = str(p.get("unit"))
    lines = ["📋 " + case_summary(ctx, case), ""]
    contact = await _shared_contact(ctx, case)
    if contact:
        lines.append(_("Contact (shared by the citizen)") + f": {contact}")
    lines.append(_("State") + f": {_(STATE_NAMES[case.state])}")
    if case.track:
        lines.append(_("Track") + f": {_(TRACK_NAMES[case.track])}")
    try:
        mine = case.assignment_of(unit)
        role = _("lead unit") if mine.role == "lead" else _("co-unit")
        lines.append(_("Your role") + f": {role}")
    except errors.NotYourCase:  # withdrawn or reassigned
        lines.append(_("This case is no longer assigned to your unit."))
    lines += _deadlines(ctx, case, unit)
    lines += await _instructions(ctx, case)
    attachments = await case_attachments(ctx, case)
    if attachments:
        lines.append(_("Attachments: {n}").format(n=len(attachments)))
    return Rendered("\n".join(lines), unit_keyboard(ctx, case, unit), attachments)


def similarity(a: str, b: str) -> float:
    """Character-bigram Jaccard similarity: cheap and good enough for Chinese text."""

    def grams(text: str) -> set[str]:
        cleaned = "".join(text.split())
        return {cleaned[i : i + 2] for i in range(len(cleaned) - 1)} or {cleaned}

    first, second = grams(a), grams(b)
    return len(first & second) / len(first | second) if first | second else 0.0


def _with_buttons(
    base: Callable[[RenderContext, dict[str, Any]], Awaitable[Rendered]],
    buttons: Callable[[RenderContext, dict[str, Any]], list[list[InlineKeyboardButton]]],
) -> Callable[[RenderContext, dict[str, Any]], Awaitable[Rendered]]:
    async def render(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
        rendered = await base(ctx, p)
        rendered.keyboard = InlineKeyboardMarkup(buttons(ctx, p))
        return rendered

    return render


def _simple(
    message: str, *fields: str
) -> Callable[[RenderContext, dict[str, Any]], Awaitable[Rendered]]:
    """A message whose template takes the case number plus escaped text fields."""

    async def render(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
        values: dict[str, str] = {"number": html.escape(str(p.get("number", "")))}
        for name in fields:
            value = p.get(name)
            if name in ("unit", "from_unit"):
                values[name] = ctx.unit(value)
            elif name in ("new_due",):
                values[name] = ctx.when(value)
            elif name == "reason" and value in RETURN_REASONS:
                values[name] = ctx._(RETURN_REASONS[str(value)])
            elif name == "rating":
                values[name] = ctx._(RATINGS.get(str(value), str(value)))
            else:
                values[name] = escape(None if value is None else str(value))
        return Rendered(ctx._(message).format(**values))

    return render


ESCALATION_REASONS = {
    "overdue": N_("overdue"),
    "too_many_returns": N_("returned too often"),
    "manual": N_("by staff"),
}


async def supervision_escalation(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """An escalation to the supervision group; an overdue one carries the 交办函 PDF."""
    case = await _case(ctx, p)
    _ = ctx._
    reason = _(ESCALATION_REASONS.get(str(p.get("reason")), str(p.get("reason"))))
    lines = [
        "🚨 "
        + _("<b>{number}</b> is escalated to supervision ({reason}).").format(
            number=case.number, reason=reason
        )
    ]
    units = p.get("units") or []
    if units:
        lines.append(_("Units") + ": " + "、".join(ctx.unit(u) for u in units))
    documents: list[tuple[str, bytes]] = []
    if p.get("reason") == "overdue" and p.get("due") and p.get("unit"):
        due = datetime.fromisoformat(str(p["due"]))
        lines.append(
            _("Missed: {stage}, due {date}").format(
                stage=_(STAGE_NAMES.get(str(p.get("stage")), "")), date=ctx.when(due)
            )
        )
        documents.append((f"交办函-{case.number}.pdf", letter_for(ctx, case, p, due)))
    return Rendered("\n".join(lines), None, [], documents)


def letter_for(ctx: RenderContext, case: Case, p: dict[str, Any], due: datetime) -> bytes:
    """The assignment letter for an overdue escalation."""
    calendar = ctx.policy.calendar
    tz = calendar.tz
    unit = str(p["unit"])
    assignment = next((a for a in case.assignments if a.unit_code == unit), None)
    issued = datetime.fromisoformat(str(p["issued_at"])) if p.get("issued_at") else due
    facts = LetterFacts(
        number=case.number,
        city=ctx.policy.city,
        unit_name=html.unescape(translator_free_unit(ctx, unit)),
        category=ctx.policy.categories[case.category].name
        if case.category in ctx.policy.categories
        else case.category,
        district=ctx.policy.districts[case.district].name
        if case.district in ctx.policy.districts
        else case.district,
        text=case.text,
        filed_at=case.filed_at.astimezone(tz),
        assigned_at=(assignment.assigned_at if assignment else case.filed_at).astimezone(tz),
        stage=str(p.get("stage")),
        due=due.astimezone(tz),
        days_overdue=round(calendar.working_days_between(due, issued), 1),
        issued_at=issued.astimezone(tz),
    )
    return assignment_letter(facts)


def translator_free_unit(ctx: RenderContext, code: str) -> str:
    """A unit's official (Simplified Chinese) name, for documents."""
    unit = ctx.policy.units.get(code)
    return unit.name if unit else ctx.unit_names.get(code, code)


async def leaders_escalation(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """An escalation to the leaders' group."""
    _ = ctx._
    reason = _(ESCALATION_REASONS.get(str(p.get("reason")), str(p.get("reason"))))
    lines = [
        "🚨 "
        + _("<b>{number}</b> is escalated to the leaders ({reason}).").format(
            number=html.escape(str(p.get("number"))), reason=reason
        )
    ]
    if p.get("unit"):
        lines.append(_("Units") + ": " + ctx.unit(str(p["unit"])))
    return Rendered("\n".join(lines))


async def unit_reminder(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """A reminder before a deadline."""
    _ = ctx._
    return Rendered(
        "⏰ "
        + _("Reminder: <b>{number}</b> — {stage} is due by {date}.").format(
            number=html.escape(str(p.get("number"))),
            stage=_(STAGE_NAMES.get(str(p.get("stage")), "")),
            date=ctx.when(p.get("due")),
        )
    )


async def unit_overdue(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """An overdue notice (催办), repeated each working morning: one a case in the unit's
    group, naming every deadline the unit has missed on it."""
    _ = ctx._
    more = p.get("more")
    if more:
        missed = [p, *more]
        return Rendered(
            "\n".join(
                [
                    "❗ "
                    + _("Overdue (催办): <b>{number}</b> — these deadlines have passed."
                         " Please act today.").format(number=html.escape(str(p.get("number"))))
                ]
                + [
                    "· "
                    + _("{stage}: due {date}").format(
                        stage=_(STAGE_NAMES.get(str(m.get("stage")), "")),
                        date=ctx.when(m.get("due")),
                    )
                    for m in missed
                ]
            )
        )
    return Rendered(
        "❗ "
        + _("Overdue (催办): <b>{number}</b> — {stage} was due {date}. Please act today.").format(
            number=html.escape(str(p.get("number"))),
            stage=_(STAGE_NAMES.get(str(p.get("stage")), "")),
            date=ctx.when(p.get("due")),
        )
    )


async def unit_escalated(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """The unit is told its overdue case went to supervision or the leaders."""
    _ = ctx._
    message = (
        _("🚨 <b>{number}</b> is overdue and has been escalated to the supervision group (督办).")
        if p.get("level") == "supervision"
        else _("🚨 <b>{number}</b> is overdue and has been escalated to the leaders.")
    )
    return Rendered(message.format(number=html.escape(str(p.get("number")))))


async def desk_calendar_missing(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """The desk is warned that next year's official working calendar is missing."""
    return Rendered(
        "📅 "
        + ctx._(
            "The official holiday schedule for {year} is not in the policy yet. Deadlines in "
            "{year} would use an approximation without adjusted working weekends. Please add "
            "[calendar.years.{year}] to the policy file as soon as the State Council publishes "
            "it."
        ).format(year=int(p["year"]))
    )


async def desk_error(ctx: RenderContext, p: dict[str, Any]) -> Rendered:
    """An update the bot could not handle: for the desk to know, with no user data."""
    return Rendered(
        "⚠️ "
        + ctx._(
            "An update could not be handled (update {update_id}, {error}). Nothing that was "
            "committed is lost; the details are in the bot's log."
        ).format(
            update_id=html.escape(str(p.get("update_id"))), error=html.escape(str(p.get("error")))
        )
    )


RENDERERS: dict[str, Callable[[RenderContext, dict[str, Any]], Awaitable[Rendered]]] = {
    "citizen.case_filed": citizen_case_filed,
    "citizen.repeat_linked": citizen_repeat_linked,
    "citizen.case_assigned": citizen_case_assigned,
    "citizen.case_signed": citizen_case_signed,
    "citizen.case_rejected": citizen_case_rejected,
    "citizen.extension": citizen_extension,
    "citizen.interim_answer": citizen_interim_answer,
    "citizen.final_answer": citizen_final_answer,
    "citizen.rating_reminder": citizen_rating_reminder,
    "citizen.case_reopened": citizen_case_reopened,
    "citizen.case_closed": citizen_case_closed,
    "citizen.question": citizen_question,
    "citizen.contact": citizen_contact,
    "card.desk": card_desk,
    "desk.calendar_missing": desk_calendar_missing,
    "desk.error": desk_error,
    "card.unit": card_unit,
    "desk.case_returned": _with_buttons(
        _simple(
            N_(
                "↩️ <b>{number}</b> was returned by {unit} ({reason}): {note}\n"
                "Returned {returns} time(s) so far."
            ),
            "unit",
            "reason",
            "note",
            "returns",
        ),
        lambda ctx, p: [
            [
                _button(ctx._("Reassign…"), f"d:ru:{p['case_id']}:{p['unit']}:0"),
                _button(ctx._("Unfounded (审定)"), f"d:uf:{p['case_id']}:{p['unit']}"),
            ]
        ],
    ),
    "desk.extension_request": _with_buttons(
        _simple(
            N_("⏳ {unit} asks to extend <b>{number}</b> to {new_due}: {reason}"),
            "unit",
            "new_due",
            "reason",
        ),
        lambda ctx, p: [
            [
                _button("✅ " + ctx._("Approve"), f"d:ea:{p['case_id']}"),
                _button("❌ " + ctx._("Deny"), f"d:ed:{p['case_id']}"),
            ]
        ],
    ),
    "desk.review_request": _with_buttons(
        _simple(
            N_("📝 Final answer to <b>{number}</b> from {unit}, waiting for review:\n\n{text}"),
            "unit",
            "text",
        ),
        lambda ctx, p: [
            [
                _button("✅ " + ctx._("Publish"), f"d:pub:{p['case_id']}"),
                _button("↩️ " + ctx._("Send back"), f"d:sb:{p['case_id']}"),
            ]
        ],
    ),
    "desk.reopened_to_desk": _simple(
        N_("🔁 <b>{number}</b> was rated unsatisfied again and is back at the desk: {comment}"),
        "comment",
    ),
    "desk.citizen_answer": _simple(
        N_("💬 The citizen answered about <b>{number}</b>:\n\n{text}"), "text"
    ),
    "unit.return_unfounded": _simple(
        N_(
            "The desk ruled the return of <b>{number}</b> unfounded; the case is yours again "
            "and cannot be returned a second time. {note}"
        ),
        "note",
    ),
    "unit.extension_approved": _simple(
        N_("✅ Extension of <b>{number}</b> approved: new deadline {new_due}."), "new_due"
    ),
    "unit.extension_denied": _simple(
        N_("❌ Extension of <b>{number}</b> denied; the deadline stays."), "new_due"
    ),
    "unit.co_unit_input": _simple(
        N_("🤝 Input from {from_unit} on <b>{number}</b>:\n\n{text}"), "from_unit", "text"
    ),
    "unit.co_input_waived": _simple(
        N_("The desk allows the final answer to <b>{number}</b> without waiting for every co-unit.")
    ),
    "unit.answer_sent_back": _simple(
        N_("↩️ The final answer to <b>{number}</b> was sent back by the desk: {comment}"), "comment"
    ),
    "unit.case_rated": _simple(
        N_("⭐ The citizen rated <b>{number}</b>: {rating}. {comment}"), "rating", "comment"
    ),
    "unit.case_reopened": _simple(
        N_("🔁 <b>{number}</b> was reopened (round {round}): {comment}"), "round", "comment"
    ),
    "unit.appeal_accepted": _simple(
        N_("✅ Your appeal on <b>{number}</b> was accepted: the rating no longer counts.")
    ),
    "unit.appeal_rejected": _simple(N_("❌ Your appeal on <b>{number}</b> was rejected.")),
    "unit.leader_instruction": _simple(
        N_("📌 Leader's instruction on <b>{number}</b>:\n\n{text}"), "text"
    ),
    "unit.citizen_answer": _simple(
        N_("💬 The citizen answered your question on <b>{number}</b>:\n\n{text}"), "text"
    ),
    "supervision.escalation": supervision_escalation,
    "supervision.appeal_request": _with_buttons(
        _simple(
            N_("⚖️ {unit} appeals the unsatisfied rating of <b>{number}</b>: {reason}"),
            "unit",
            "reason",
        ),
        lambda ctx, p: [
            [
                _button("✅ " + ctx._("Accept appeal"), f"s:aa:{p['case_id']}"),
                _button("❌ " + ctx._("Reject appeal"), f"s:ar:{p['case_id']}"),
            ]
        ],
    ),
    "leaders.escalation": leaders_escalation,
    "unit.reminder": unit_reminder,
    "unit.overdue": unit_overdue,
    "unit.escalated": unit_escalated,
    "leaders.special_report": _simple(
        N_("📣 Special report: <b>{number}</b> is now on the high-level track.")
    ),
}


async def render(ctx: RenderContext, key: str, params: dict[str, Any]) -> Rendered:
    """Render an outbox message; KeyError for a key nobody knows (a programming error)."""
    rendered = await RENDERERS[key](ctx, params)
    if len(rendered.text) > MESSAGE_LIMIT:
        rendered.text = rendered.text[: MESSAGE_LIMIT - 1] + "…"
    return rendered
