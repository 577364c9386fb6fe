"""Unit group chats: sign for, return, answer, ask the citizen, extend, appeal; /todo.

Also routes every typed reply in a group to the action waiting for it (the desk's too).
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot import services
from bot.app import Context
from bot.domain import errors
from handlers import desk
from handlers.common import answer_quietly, error_text, t_for
from handlers.prompts import ask_for_text, pending_for, text_and_files
from handlers.render import STAGE_NAMES, RenderContext

logger = logging.getLogger(__name__)

GROUPS = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE
PATTERN = re.compile(r"^u:(?P<verb>[a-z]{1,2}):(?P<id>\d{1,12})(?::(?P<arg>[a-z_]{1,12}))?$")
RETURN_REASONS = (
    ("district", "Not our district (属地不符)"),
    ("ownership", "Unclear ownership (权属不清)"),
    ("duty", "Not our duty (职能交叉)"),
)
DATE = re.compile(r"^\s*(\d{4}-\d{1,2}-\d{1,2})\s+(.+)$", re.DOTALL)


async def _unit_of_chat(context: Context, chat_id: int) -> str | None:
    binding = await services.binding_of(context.services, chat_id)
    return binding[1] if binding and binding[0] == "unit" else None


async def unit_button(update: Update, context: Context) -> None:
    """Every unit-card button: sign at once; the others ask for a reason or a text."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    t = t_for(update, context)
    g = t.gettext
    user_id = update.effective_user.id
    unit = await _unit_of_chat(context, query.message.chat.id) if query.message else None
    # Only liaisons of a unit holding the case get prompts; anyone else is told at once,
    # before the case is looked up, so the answer says nothing about whether it exists.
    mine = await services.liaison_units(context.services, user_id)
    if not mine or (unit is not None and unit not in mine):
        await answer_quietly(query, g("You are not allowed to do this."), show_alert=True)
        return
    match = PATTERN.match(query.data or "")
    row = None
    if match:
        row = await context.services.db.fetch_one(
            "SELECT number FROM cases WHERE id = ?", (int(match["id"]),)
        )
    if match is None or row is None:
        await answer_quietly(query, g("This button is no longer valid."))
        return
    number, verb = str(row[0]), match["verb"]
    try:
        if verb == "s":
            await services.sign_assignment(
                context.services, user_id, number, unit_code=unit, update_id=update.update_id
            )
            await answer_quietly(query, "✓ " + g("Signed for. The clock runs from assignment."))
            return
    except errors.DuplicateUpdate:
        return
    except errors.DomainError as error:
        await answer_quietly(query, error_text(t, error), show_alert=True)
        return
    await answer_quietly(query)
    if verb == "r":
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(g(label), callback_data=f"u:rr:{match['id']}:{code}")]
                for code, label in RETURN_REASONS
            ]
        )
        await query.edit_message_reply_markup(keyboard)
        return
    prompts = {
        "rr": ("return", g("Why should the desk take it back? (a short note)")),
        "i": ("interim", g("Interim answer to the citizen (you may attach a photo):")),
        "f": ("final", g("Final answer to the citizen (you may attach a photo):")),
        "n": ("input", g("Your unit's input for the lead unit:")),
        "q": ("ask", g("Your question to the citizen (they will not see who you are):")),
        "e": ("extend", g("New deadline and reason, e.g. 2026-12-20 需要协调施工单位")),
        "ap": ("appeal", g("Why was the unsatisfied rating due to objective limits (核减)?")),
    }
    if verb not in prompts:
        return
    action, prompt = prompts[verb]
    await ask_for_text(update, context, action, number, prompt, unit=unit, reason=match["arg"])


def _end_of_day(context: Context, day: date) -> datetime:
    calendar = context.services.policy.calendar
    return datetime.combine(day, calendar.day_end, tzinfo=calendar.tz)


async def complete_unit(update: Update, context: Context, pending: dict[str, Any]) -> str:
    """Finish a unit action with the typed reply; returns the confirmation."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    g = t_for(update, context).gettext
    svc, number, unit = context.services, pending["number"], pending.get("unit")
    text, files = text_and_files(message)
    action = pending["action"]
    uid = update.update_id
    if action == "return":
        await services.return_assignment(
            svc, user.id, number, pending["reason"], text, unit_code=unit, update_id=uid
        )
        return g("Returned to the dispatch desk.")
    if action in ("interim", "final", "input"):
        await services.post_answer(
            svc, user.id, number, action, text, attachments=files, unit_code=unit, update_id=uid
        )
        return {
            "interim": g("Interim answer sent to the citizen."),
            "final": g("Final answer posted."),
            "input": g("Input sent to the lead unit."),
        }[action]
    if action == "ask":
        await services.ask_citizen(svc, user.id, number, text, unit_code=unit, update_id=uid)
        return g("Question sent to the citizen; the resolve clock pauses until they answer.")
    if action == "extend":
        match = DATE.match(text)
        try:
            day = date.fromisoformat(match.group(1)) if match else None
        except ValueError:
            day = None
        if match is None or day is None:
            raise errors.InvalidInput("new_due", field="new_due")
        await services.request_extension(
            svc,
            user.id,
            number,
            _end_of_day(context, day),
            match.group(2),
            unit_code=unit,
            update_id=uid,
        )
        return g("Extension requested; the desk will decide.")
    await services.appeal_rating(svc, user.id, number, text, unit_code=unit, update_id=uid)
    return g("Appeal sent to the supervisors.")


async def on_group_reply(update: Update, context: Context) -> None:
    """A reply in a group: complete the pending action it answers, or offer to post it."""
    message = update.effective_message
    assert message is not None and context.user_data is not None
    t = t_for(update, context)
    pending = pending_for(update, context)
    if pending is None:
        await offer_reply_to_card(update, context)
        return
    text, _ = text_and_files(message)
    try:
        if pending["action"] in desk.DESK_ACTIONS:
            done = await desk.complete(update, context, pending, text)
        else:
            done = await complete_unit(update, context, pending)
    except errors.DuplicateUpdate:
        return
    except errors.DomainError as error:
        await message.reply_text(error_text(t, error))
        if not isinstance(error, errors.InvalidInput):
            context.user_data.pop("pending", None)
        return
    context.user_data.pop("pending", None)
    await message.reply_text("✓ " + done)


async def offer_reply_to_card(update: Update, context: Context) -> None:
    """A reply to a unit's card: ask whether it is an interim or a final answer."""
    message = update.effective_message
    assert message is not None and message.reply_to_message is not None
    row = await context.services.db.fetch_one(
        "SELECT card_key FROM cards WHERE chat_id = ? AND message_id = ?",
        (message.chat_id, message.reply_to_message.message_id),
    )
    if row is None or not str(row[0]).startswith("unit:"):
        return
    _, unit, case_id = str(row[0]).split(":")
    number = await context.services.db.fetch_one(
        "SELECT number FROM cases WHERE id = ?", (int(case_id),)
    )
    if number is None:
        return
    g = t_for(update, context).gettext
    text, _files = text_and_files(message)
    assert context.user_data is not None
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(g("Interim answer"), callback_data=f"u:pi:{case_id}"),
                InlineKeyboardButton(g("Final answer"), callback_data=f"u:pf:{case_id}"),
            ]
        ]
    )
    context.user_data["reply_draft"] = {
        "number": str(number[0]),
        "unit": unit,
        "message_id": message.message_id,
        "text": text,
    }
    await message.reply_text(
        g("Post this as the unit's answer to {number}?").format(number=number[0]),
        reply_markup=keyboard,
    )


async def post_reply_draft(update: Update, context: Context) -> None:
    """'Interim' or 'Final' under a reply to a card: post the kept text."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    assert context.user_data is not None
    t = t_for(update, context)
    draft = context.user_data.get("reply_draft")
    match = re.fullmatch(r"u:p([if]):(\d+)", query.data or "")
    if not draft or match is None:
        await answer_quietly(query, t.gettext("This button is no longer valid."))
        return
    kind = "interim" if match.group(1) == "i" else "final"
    try:
        await services.post_answer(
            context.services,
            update.effective_user.id,
            draft["number"],
            kind,
            draft["text"],
            unit_code=draft["unit"],
            update_id=update.update_id,
        )
    except errors.DuplicateUpdate:
        return
    except errors.DomainError as error:
        await answer_quietly(query, error_text(t, error), show_alert=True)
        return
    context.user_data.pop("reply_draft", None)
    await answer_quietly(query, "✓")
    await query.edit_message_text(
        "✓ "
        + (
            t.gettext("Interim answer sent to the citizen.")
            if kind == "interim"
            else t.gettext("Final answer posted.")
        )
    )


async def todo(update: Update, context: Context) -> None:
    """/todo in a unit's group: its open cases, nearest deadline first."""
    chat = update.effective_chat
    message = update.effective_message
    assert chat is not None and message is not None
    t = t_for(update, context)
    unit = await _unit_of_chat(context, chat.id)
    if unit is None:
        await message.reply_text(t.gettext("/todo works in a unit's group."))
        return
    svc = context.services
    rows = await svc.db.fetch_all(
        "SELECT c.number, a.state, a.signed_at, a.sign_due, a.reply_due, a.replied_at,"
        " a.resolve_due FROM assignments a JOIN cases c ON c.id = a.case_id"
        " WHERE a.unit_code = ? AND a.state IN ('assigned', 'signed', 'returned')"
        " AND a.round = c.round ORDER BY min(coalesce(CASE WHEN a.signed_at IS NULL"
        " THEN a.sign_due END, 9e18), coalesce(CASE WHEN a.replied_at IS NULL THEN a.reply_due"
        " END, 9e18), coalesce(a.resolve_due, 9e18)) LIMIT 30",
        (unit,),
    )
    if not rows:
        await message.reply_text(t.gettext("No open cases. Well done."))
        return
    from storage.db import from_db

    ctx = RenderContext(t, svc.policy, svc.db)
    lines = ["<b>" + t.gettext("Open cases of {unit}").format(unit=ctx.unit(unit)) + "</b>"]
    now = svc.clock.now()
    for r in rows:
        stages = []
        if r[2] is None and r[3] is not None:
            stages.append(("sign", from_db(r[3])))
        if r[5] is None:
            stages.append(("reply", from_db(r[4])))
        if r[6] is not None:
            stages.append(("resolve", from_db(r[6])))
        stage, due = min(stages, key=lambda s: s[1])  # type: ignore[arg-type,return-value]
        late = " ⚠️" if due is not None and due < now else ""
        lines.append(f"{r[0]} · {t.gettext(STAGE_NAMES[stage])}: {ctx.when(due)}{late}")
    await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


def register(app: Any) -> None:
    """The unit groups' handlers."""
    app.add_handler(CallbackQueryHandler(post_reply_draft, pattern=r"^u:p[if]:"))
    app.add_handler(CallbackQueryHandler(unit_button, pattern=r"^u:"))
    app.add_handler(CommandHandler("todo", todo, filters=GROUPS))
    app.add_handler(
        MessageHandler(
            GROUPS
            & filters.REPLY
            & (filters.TEXT | filters.PHOTO | filters.Document.ALL)
            & ~filters.COMMAND,
            on_group_reply,
        )
    )
