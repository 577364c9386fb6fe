"""The dispatch desk's buttons: track, assign, co-units, reject, duplicates, returns,
extensions, review; and the supervision group's appeal rulings."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler

from bot import services
from bot.app import Context
from bot.domain import errors
from bot.domain.policy import Track
from handlers.common import answer_quietly, error_text, t_for
from handlers.prompts import ask_for_text
from handlers.render import TRACK_CODES, TRACK_NAMES
from storage import directory

logger = logging.getLogger(__name__)

TRACK_BY_CODE = {code: track for track, code in TRACK_CODES.items()}
PAGE = 8


async def _number(context: Context, case_id: int) -> str | None:
    row = await context.services.db.fetch_one("SELECT number FROM cases WHERE id = ?", (case_id,))
    return str(row[0]) if row else None


async def unit_picker(
    context: Context,
    language: str,
    select: str,
    pages: str,
    page: int,
    exclude: tuple[str, ...] = (),
) -> InlineKeyboardMarkup:
    """A page of unit buttons (data `select:CODE`), with ◀ ▶ (data `pages:N`).

    The units a case can go to now: the policy's in its order, then those an admin added
    at run time; disabled ones are left out."""
    policy = context.services.policy
    active = dict(await directory.active_units(context.services.db))
    named = [(code, unit.name_in(language)) for code, unit in policy.units.items()
             if code in active]
    named += [(code, name) for code, name in active.items() if code not in policy.units]
    units = [(code, name) for code, name in named if code not in exclude]
    chunk = units[page * PAGE : (page + 1) * PAGE]
    rows = [[InlineKeyboardButton(name, callback_data=f"{select}:{code}")]
            for code, name in chunk]
    nav: list[InlineKeyboardButton] = []
    if page > 0:
        nav.append(InlineKeyboardButton("◀", callback_data=f"{pages}:{page - 1}"))
    if (page + 1) * PAGE < len(units):
        nav.append(InlineKeyboardButton("▶", callback_data=f"{pages}:{page + 1}"))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


async def set_track(update: Update, context: Context, m: re.Match[str], number: str) -> str:
    """Put the case on a track."""
    track = TRACK_BY_CODE[m["arg"]]
    user = update.effective_user
    assert user is not None
    await services.set_track(
        context.services, user.id, number, track.value, update_id=update.update_id
    )
    return t_for(update, context).gettext(TRACK_NAMES[track])


async def assign(update: Update, context: Context, m: re.Match[str], number: str) -> str:
    """Assign the lead unit."""
    user = update.effective_user
    assert user is not None
    await services.reassign_case(
        context.services, user.id, number, m["arg"], update_id=update.update_id
    )
    return t_for(update, context).gettext("Assigned.")


async def add_co_unit(update: Update, context: Context, m: re.Match[str], number: str) -> str:
    """Add a co-unit."""
    user = update.effective_user
    assert user is not None
    await services.add_co_unit(
        context.services, user.id, number, m["arg"], update_id=update.update_id
    )
    return t_for(update, context).gettext("Co-unit added.")


async def rule_reassign(update: Update, context: Context, m: re.Match[str], number: str) -> str:
    """A return ruled founded: the case goes to another unit."""
    user = update.effective_user
    assert user is not None
    old, new = m["arg"].split(":", 1)
    await services.rule_return(
        context.services, user.id, number, old, reassign_to=new, update_id=update.update_id
    )
    return t_for(update, context).gettext("Reassigned.")


async def rule_unfounded(update: Update, context: Context, m: re.Match[str], number: str) -> str:
    """A return ruled unfounded (审定): back to the same unit."""
    user = update.effective_user
    assert user is not None
    await services.rule_return(
        context.services, user.id, number, m["arg"], update_id=update.update_id
    )
    return t_for(update, context).gettext("Sent back to the unit; it cannot return it again.")


async def waive(update: Update, context: Context, m: re.Match[str], number: str) -> str:
    """Allow the lead's final answer before every co-unit reported."""
    user = update.effective_user
    assert user is not None
    await services.waive_co_unit_input(
        context.services, user.id, number, update_id=update.update_id
    )
    return t_for(update, context).gettext("The lead unit may answer now.")


async def decide_extension(update: Update, context: Context, m: re.Match[str], number: str) -> str:
    """Approve or deny a unit's extension request."""
    user = update.effective_user
    assert user is not None
    approve = m["verb"] == "ea"
    await services.decide_extension(
        context.services, user.id, number, approve, update_id=update.update_id
    )
    await _clear_buttons(update)
    g = t_for(update, context).gettext
    return g("Extension approved.") if approve else g("Extension denied.")


async def publish(update: Update, context: Context, m: re.Match[str], number: str) -> str:
    """Publish the reviewed final answer to the citizen."""
    user = update.effective_user
    assert user is not None
    await services.publish_answer(context.services, user.id, number, update_id=update.update_id)
    await _clear_buttons(update)
    return t_for(update, context).gettext("Published to the citizen.")


async def rule_appeal(update: Update, context: Context, m: re.Match[str], number: str) -> str:
    """Accept or reject a unit's appeal (核减)."""
    user = update.effective_user
    assert user is not None
    accept = m["verb"] == "aa"
    await services.rule_appeal(
        context.services, user.id, number, accept, update_id=update.update_id
    )
    await _clear_buttons(update)
    g = t_for(update, context).gettext
    return g("Appeal accepted.") if accept else g("Appeal rejected.")


async def _clear_buttons(update: Update) -> None:
    query = update.callback_query
    if query is not None:
        with contextlib.suppress(BadRequest):  # already without buttons
            await query.edit_message_reply_markup(None)


async def _staff_only(update: Update, context: Context) -> bool:
    """Pickers and prompts reveal nothing, but only staff get them."""
    user = update.effective_user
    roles = await services.staff_roles(context.services, user.id if user else None)
    return bool(roles & {"dispatcher", "admin", "supervisor"})


async def show_picker(update: Update, context: Context, m: re.Match[str], number: str) -> None:
    """Open a unit picker (assign, reassign after a return, co-unit) or the track picker."""
    query = update.callback_query
    assert query is not None
    t = t_for(update, context)
    if not await _staff_only(update, context):
        await answer_quietly(query, t.gettext("You are not allowed to do this."), True)
        return
    verb, cid = m["verb"], m["id"]
    if verb == "tt":
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        t.gettext(TRACK_NAMES[track]),
                        callback_data=f"d:t:{cid}:{TRACK_CODES[track]}",
                    )
                ]
                for track in Track
            ]
        )
    elif verb == "u":
        keyboard = await unit_picker(
            context, t.language, f"d:a:{cid}", f"d:u:{cid}", _page(m["arg"])
        )
    elif verb == "cp":
        keyboard = await unit_picker(
            context, t.language, f"d:ca:{cid}", f"d:cp:{cid}", _page(m["arg"])
        )
    else:  # "ru": reassign after a return, excluding the unit that returned it
        old, _, page = (m["arg"] or "").partition(":")
        keyboard = await unit_picker(
            context,
            t.language,
            f"d:ra:{cid}:{old}",
            f"d:ru:{cid}:{old}",
            _page(page),
            exclude=(old,),
        )
    await answer_quietly(query)
    await query.edit_message_reply_markup(keyboard)


def _page(value: str | None) -> int:
    return int(value) if value and value.isdigit() and int(value) < 100 else 0


async def ask_text(update: Update, context: Context, m: re.Match[str], number: str) -> None:
    """Reject, duplicate, send back: the reason is typed as a reply to a prompt."""
    query = update.callback_query
    assert query is not None
    t = t_for(update, context)
    g = t.gettext
    if not await _staff_only(update, context):
        await answer_quietly(query, g("You are not allowed to do this."), True)
        return
    verb = m["verb"]
    await answer_quietly(query)
    if verb == "rj":
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(g("Invalid"), callback_data=f"d:rr:{m['id']}:invalid")],
                [
                    InlineKeyboardButton(
                        g("Out of scope"), callback_data=f"d:rr:{m['id']}:out_of_scope"
                    )
                ],
            ]
        )
        await query.edit_message_reply_markup(keyboard)
    elif verb == "rr":
        await ask_for_text(
            update,
            context,
            "reject",
            number,
            g("Reason for not accepting it (the citizen will read this):"),
            reason=m["arg"],
        )
    elif verb == "dp":
        await ask_for_text(
            update, context, "duplicate", number, g("Number of the case this one duplicates:")
        )
    elif verb == "sb":
        await ask_for_text(
            update, context, "send_back", number, g("What should the unit change in its answer?")
        )


ACTIONS: dict[str, Callable[..., Awaitable[Any]]] = {
    "t": set_track,
    "a": assign,
    "ca": add_co_unit,
    "ra": rule_reassign,
    "uf": rule_unfounded,
    "w": waive,
    "ea": decide_extension,
    "ed": decide_extension,
    "pub": publish,
    "aa": rule_appeal,
    "ar": rule_appeal,
    "tt": show_picker,
    "u": show_picker,
    "cp": show_picker,
    "ru": show_picker,
    "rj": ask_text,
    "rr": ask_text,
    "dp": ask_text,
    "sb": ask_text,
}
PATTERN = re.compile(
    r"^(?P<who>[ds]):(?P<verb>[a-z]{1,3}):(?P<id>\d{1,12})(?::(?P<arg>[A-Za-z0-9_:-]{0,40}))?$"
)


async def staff_button(update: Update, context: Context) -> None:
    """Every desk and supervision button: parse, call one service, confirm or explain."""
    query = update.callback_query
    assert query is not None
    t = t_for(update, context)
    user = update.effective_user
    if not await services.staff_roles(context.services, user.id if user else None):
        # Refused before the case is looked up: no hint whether it exists.
        await answer_quietly(query, t.gettext("You are not allowed to do this."), True)
        return
    match = PATTERN.match(query.data or "")
    action = ACTIONS.get(match["verb"]) if match else None
    if match is None or action is None:
        await answer_quietly(query, t.gettext("This button is no longer valid."))
        return
    number = await _number(context, int(match["id"]))
    if number is None:
        await answer_quietly(query, t.gettext("This button is no longer valid."))
        return
    try:
        done = await action(update, context, match, number)
    except errors.DuplicateUpdate:
        return
    except errors.DomainError as error:
        await answer_quietly(query, error_text(t, error), show_alert=True)
        return
    if done is not None:
        await answer_quietly(query, "✓ " + done)


async def complete(update: Update, context: Context, pending: dict[str, Any], text: str) -> str:
    """Finish a desk action whose text was typed as a reply; returns the confirmation."""
    user = update.effective_user
    assert user is not None
    svc, number, g = context.services, pending["number"], t_for(update, context).gettext
    action = pending["action"]
    if action == "reject":
        await services.reject_case(
            svc, user.id, number, pending["reason"], text, update_id=update.update_id
        )
        return g("Not accepted; the citizen was told why.")
    if action == "duplicate":
        original = text.strip().upper()
        await services.reject_case(
            svc,
            user.id,
            number,
            "duplicate",
            None,
            duplicate_of=original,
            update_id=update.update_id,
        )
        return g("Marked as a duplicate of {original}.").format(original=original)
    await services.send_back_answer(svc, user.id, number, text, update_id=update.update_id)
    return g("Sent back to the unit.")


DESK_ACTIONS = frozenset({"reject", "duplicate", "send_back"})


def register(app: Any) -> None:
    """The desk's and supervision's buttons."""
    app.add_handler(CallbackQueryHandler(staff_button, pattern=r"^[ds]:"))
