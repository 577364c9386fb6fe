"""Staff commands, in staff groups or a staff member's private chat.

/case also serves citizens: staff get the full view, a citizen their own case.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import CommandHandler

from bot import services
from bot.app import Context
from bot.domain import errors
from bot.domain.case import Case
from bot.domain.policy import Track
from bot.i18n import N_
from handlers import citizen
from handlers.common import error_text, t_for
from handlers.render import STATE_NAMES, TRACK_NAMES, RenderContext, case_summary, escape

NUMBER = re.compile(r"^[A-Z]{1,6}\d{4}-\d{6}$")


async def _reply(update: Update, text: str) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, parse_mode=ParseMode.HTML)


def _number(args: list[str]) -> str | None:
    number = args[0].strip().upper() if args else ""
    return number if NUMBER.match(number) else None


async def staff_view(t: Any, context: Context, case: Case) -> str:
    """The full view of a case for staff: facts, identity, units, deadlines, timeline."""
    from storage.cases import load_events

    svc = context.services
    ctx = RenderContext(t, svc.policy, svc.db)
    g = t.gettext
    row = await svc.db.fetch_one(
        "SELECT first_name, last_name, username, phone FROM users WHERE id = ?", (case.citizen_id,)
    )
    who = " ".join(p for p in (row[0], row[1]) if p) if row else ""
    username = f" @{row[2]}" if row and row[2] else ""
    phone = f" ☎ {row[3]}" if row and row[3] else ""
    state_label, citizen_label = g("State"), g("Citizen")
    lines = [
        case_summary(ctx, case),
        f"{citizen_label}: {escape(who, 80)}{escape(username, 70)} (id {case.citizen_id})"
        f"{escape(phone, 40)}",
        f"{state_label}: {g(STATE_NAMES[case.state])}",
    ]
    if case.track:
        track_label = g("Track")
        lines.append(f"{track_label}: {g(TRACK_NAMES[case.track])}")
    for assignment in case.assignments:
        lines.append(
            f"· {ctx.unit(assignment.unit_code)} ({assignment.role.value}, "
            f"{g('round')} {assignment.round}): {assignment.state.value}"
        )
    lines += ["", "<b>" + g("Timeline") + "</b>"]
    assert case.id is not None
    for event in (await load_events(svc.db, case.id))[-25:]:
        detail = event.details.get("text") or event.details.get("note") or ""
        unit = f" {ctx.unit(event.unit_code)}" if event.unit_code else ""
        lines.append(f"{ctx.when(event.at)} {event.kind}{unit} {escape(str(detail), 120)}")
    return "\n".join(lines)


async def case_command(update: Update, context: Context) -> None:
    """/case NUMBER: staff see everything; citizens see their own case only."""
    user = update.effective_user
    assert user is not None
    t = t_for(update, context)
    roles = await services.staff_roles(context.services, user.id)
    chat = update.effective_chat
    if not roles:
        if chat is not None and chat.type == "private":
            await citizen.case_command(update, context)
        return
    number = _number(context.args or [])
    if number is None:
        await _reply(update, t.gettext("Usage: /case NUMBER"))
        return
    try:
        case = await services.view_case(context.services, user.id, number)
    except errors.DomainError as error:
        await _reply(update, error_text(t, error))
        return
    await _reply(update, await staff_view(t, context, case))


async def search(update: Update, context: Context) -> None:
    """/search [words] [category:X] [district:X] [unit:X] [state:X] [overdue]."""
    user = update.effective_user
    assert user is not None
    t = t_for(update, context)
    g = t.gettext
    if not await services.staff_roles(context.services, user.id):
        await _reply(update, error_text(t, errors.NotAllowed("search")))
        return
    where, params, words = [], [], []
    for arg in context.args or []:
        key, _, value = arg.partition(":")
        if NUMBER.match(arg.upper()):
            where.append("c.number = ?")
            params.append(arg.upper())
        elif key in ("category", "district", "state") and value:
            where.append(f"c.{key} = ?")
            params.append(value)
        elif key == "unit" and value:
            where.append(
                "EXISTS (SELECT 1 FROM assignments a WHERE a.case_id = c.id AND a.unit_code = ?)"
            )
            params.append(value.upper())
        elif arg == "overdue":
            where.append(
                "EXISTS (SELECT 1 FROM assignments a WHERE a.case_id = c.id AND"
                " a.state IN ('assigned', 'signed') AND ((a.signed_at IS NULL AND"
                " a.sign_due < ?) OR (a.replied_at IS NULL AND a.reply_due < ?) OR"
                " (a.resolved_at IS NULL AND a.resolve_due < ?)))"
            )
            now = int(context.services.clock.now().timestamp() * 1_000_000)
            params += [now, now, now]
        else:
            words.append(arg)
    if words:
        where.append("c.text LIKE ? ESCAPE '\\'")
        needle = " ".join(words).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%{needle}%")
    if not where:
        await _reply(
            update,
            g("Usage: /search words category:water district:langya unit:ZJJ state:new overdue"),
        )
        return
    rows = await context.services.db.fetch_all(
        "SELECT c.number, c.state, c.text FROM cases c WHERE "
        + " AND ".join(where)
        + " ORDER BY c.id DESC LIMIT 20",
        params,
    )
    if not rows:
        await _reply(update, g("Nothing found."))
        return
    lines = [f"<b>{r[0]}</b> · {g(STATE_NAMES[r[1]])} · {escape(r[2], 40)}" for r in rows]
    await _reply(update, "\n".join(lines))


def _date(value: str, context: Context) -> datetime | None:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    calendar = context.services.policy.calendar
    return datetime.combine(day, calendar.day_end, tzinfo=calendar.tz)


async def _staff_command(
    update: Update, context: Context, usage: str, minimum: int, act: Any, done: str
) -> None:
    """Parse NUMBER + arguments, call one service, confirm or explain."""
    user = update.effective_user
    assert user is not None
    t = t_for(update, context)
    args = context.args or []
    number = _number(args)
    if number is None or len(args) < minimum:
        await _reply(update, t.gettext("Usage: {usage}").format(usage=html.escape(usage)))
        return
    text = update.effective_message.text if update.effective_message else None
    try:
        await act(user.id, number, Args(args[1:], _after_words(text or "", 2)), update.update_id)
    except errors.DuplicateUpdate:
        return
    except errors.DomainError as error:
        await _reply(update, error_text(t, error))
        return
    await _reply(update, "✓ " + t.gettext(done).format(number=number))


class Args(list[str]):
    """A command's arguments after the case number, and the text they came from.

    PTB splits `context.args` on whitespace, so joining them again would fold a note's
    line breaks and spacing; free text is cut from the message itself instead.
    """

    def __init__(self, words: list[str], raw: str) -> None:
        super().__init__(words)
        self.raw = raw

    def tail(self, skip: int = 0) -> str:
        """The free text after the first `skip` arguments, as typed."""
        return _after_words(self.raw, skip)


def _after_words(text: str, count: int) -> str:
    for _ in range(count):
        text = re.sub(r"^\s*\S+", "", text, count=1)
    return text.strip()


def staff_commands(app: Any) -> None:
    """/assign /reassign /track /extend /escalate /close /reopen /note /contact /instruct."""

    def command(name: str, usage: str, minimum: int, done: str, act: Any) -> None:
        async def handler(update: Update, context: Context) -> None:
            async def run(uid: int, number: str, rest: Args, update_id: int) -> None:
                await act(context, uid, number, rest, update_id)

            await _staff_command(update, context, usage, minimum, run, done)

        handler.__doc__ = f"/{name}: {usage}"
        app.add_handler(CommandHandler(name, handler))

    svc = services

    async def assign(c: Context, uid: int, n: str, rest: Args, u: int) -> None:
        track = next((r.split("=", 1)[1] for r in rest if r.startswith("track=")), None)
        units = [r.upper() for r in rest if "=" not in r]
        if not units:
            raise errors.InvalidInput("unit", field="unit")
        await svc.assign_case(
            c.services, uid, n, units[0], tuple(units[1:]), track=track, update_id=u
        )

    async def extend(c: Context, uid: int, n: str, rest: Args, u: int) -> None:
        new_due = _date(rest[0], c)
        if new_due is None or len(rest) < 2:
            raise errors.InvalidInput("new_due", field="new_due")
        await svc.extend_deadline(c.services, uid, n, new_due, rest.tail(1), update_id=u)

    async def track(c: Context, uid: int, n: str, rest: Args, u: int) -> None:
        value = rest[0].lower().replace("-", "_")
        if value not in {t.value for t in Track}:
            raise errors.UnknownCode(value, kind="track", code=value)
        await svc.set_track(c.services, uid, n, value, update_id=u)

    command(
        "assign",
        "/assign NUMBER UNIT [CO_UNIT ...] [track=routine]",
        2,
        N_("{number} assigned."),
        assign,
    )
    command(
        "reassign",
        "/reassign NUMBER UNIT",
        2,
        N_("{number} reassigned."),
        lambda c, uid, n, rest, u: svc.reassign_case(
            c.services, uid, n, rest[0].upper(), update_id=u
        ),
    )
    command(
        "track",
        "/track NUMBER special|routine|coordinated|high_level",
        2,
        N_("Track of {number} set."),
        track,
    )
    command(
        "extend", "/extend NUMBER YYYY-MM-DD REASON", 3, N_("Deadline of {number} moved."), extend
    )
    command(
        "escalate",
        "/escalate NUMBER [supervision|leaders]",
        1,
        N_("{number} escalated."),
        lambda c, uid, n, rest, u: svc.escalate_case(
            c.services, uid, n, rest[0] if rest else "supervision", update_id=u
        ),
    )
    command(
        "close",
        "/close NUMBER REASON",
        2,
        N_("{number} closed."),
        lambda c, uid, n, rest, u: svc.close_case(c.services, uid, n, rest.tail(), update_id=u),
    )
    command(
        "reopen",
        "/reopen NUMBER REASON",
        2,
        N_("{number} reopened."),
        lambda c, uid, n, rest, u: svc.reopen_case(c.services, uid, n, rest.tail(), update_id=u),
    )
    command(
        "note",
        "/note NUMBER TEXT",
        2,
        N_("Note added to {number}."),
        lambda c, uid, n, rest, u: svc.add_note(c.services, uid, n, rest.tail(), update_id=u),
    )
    command(
        "contact",
        "/contact NUMBER TEXT",
        2,
        N_("Message relayed to the citizen of {number}."),
        lambda c, uid, n, rest, u: svc.contact_citizen(
            c.services, uid, n, rest.tail(), update_id=u
        ),
    )
    command(
        "instruct",
        "/instruct NUMBER TEXT",
        2,
        N_("Instruction on {number} sent to the units."),
        lambda c, uid, n, rest, u: svc.instruct_case(c.services, uid, n, rest.tail(), update_id=u),
    )


def register(app: Any) -> None:
    """Staff commands (before the citizen's, so /case serves both)."""
    app.add_handler(CommandHandler("case", case_command))
    app.add_handler(CommandHandler("search", search))
    staff_commands(app)
