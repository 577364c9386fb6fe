"""Administration in any chat: units, staff roles, chat bindings, liaisons and join codes.

Handlers parse and render only: every permission check is in the services, which refuse
whoever may not act; these coroutines turn the refusal into words.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from typing import Any

from telegram import Message, Update, User
from telegram.constants import ChatType, ParseMode
from telegram.ext import CommandHandler, filters

from bot import services
from bot.app import Context
from bot.domain import errors
from bot.i18n import N_, Translator
from handlers.common import error_text, t_for
from storage.directory import Profile

logger = logging.getLogger(__name__)

# New messages only: an edited "/bind …" must not bind twice or answer again.
NEW = filters.UpdateType.MESSAGE
GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)
MESSAGE_LIMIT = 4000  # below Telegram's 4096, for the markup around each line
ROLE_NAMES = {
    "admin": N_("admin"),
    "dispatcher": N_("dispatcher"),
    "supervisor": N_("supervisor"),
    "leader": N_("leader"),
}
PARTS = {
    "dispatch": N_("the dispatch desk"),
    "supervision": N_("the supervision group"),
    "leaders": N_("the leaders' group"),
}


@dataclass(frozen=True)
class Person:
    """Whom a command is about: their id and how to name them (HTML-safe)."""

    user_id: int
    label: str


# -- small helpers -------------------------------------------------------------------------


async def say(update: Update, context: Context, text: str) -> Message | None:
    """Reply in the chat the command came from, with HTML."""
    chat = update.effective_chat
    if chat is None:
        return None
    return await context.bot.send_message(chat.id, text, parse_mode=ParseMode.HTML)


def sender_id(update: Update) -> int:
    """The id of whoever sent the command."""
    assert update.effective_user is not None
    return update.effective_user.id


def args_of(context: Context) -> list[str]:
    """The command's words after the command itself."""
    return list(context.args or [])


def replied_user(update: Update) -> User | None:
    """The author of the message this command replies to, unless that is a bot."""
    message = update.effective_message
    replied = message.reply_to_message if message is not None else None
    if replied is None or replied.from_user is None or replied.from_user.is_bot:
        return None
    return replied.from_user


async def find_person(update: Update, context: Context, reference: str | None) -> Person | None:
    """The person named by id or @username, or else the replied-to author.

    Returns None after telling the sender that nobody by that name is known.
    """
    if reference is None:
        user = replied_user(update)
        assert user is not None, "callers check for a reply before"
        return Person(user.id, f"{html.escape(user.full_name)} ({user.id})")
    user_id = await services.find_user(context.services, reference)
    if user_id is None:
        t = t_for(update, context)
        await say(
            update,
            context,
            t.gettext(
                "I don't know {person}. Use their numeric Telegram id, or reply to one of "
                "their messages; a @username works only once they have written to the bot."
            ).format(person=html.escape(reference)),
        )
        return None
    return Person(user_id, html.escape(reference))


async def unit_label(context: Context, user_id: int, code: str) -> str:
    """'Name (CODE)' of a unit as far as the reader may see it, else the bare code; HTML-safe."""
    try:
        units = await services.list_units(context.services, user_id)
    except errors.DomainError:
        units = []
    name = next((unit.name for unit in units if unit.code == code), None)
    if name is None and code in context.services.policy.units:
        name = context.services.policy.units[code].name
    return f"{html.escape(name)} ({html.escape(code)})" if name else html.escape(code)


async def part_name(context: Context, t: Translator, user_id: int, binding: str) -> str:
    """What a binding makes a group: 'the dispatch desk', 'the group of 市住建局 (ZJJ)'."""
    if binding.startswith("unit:"):
        unit = await unit_label(context, user_id, binding.removeprefix("unit:"))
        return t.gettext("the group of {unit}").format(unit=unit)
    return t.gettext(PARTS.get(binding, binding))


async def explain(update: Update, context: Context, error: errors.DomainError) -> str:
    """A domain error in the reader's words, more specific than `error_text` where we can be."""
    t = t_for(update, context)
    p = error.params
    if isinstance(error, errors.ChatAlreadyBound):
        part = await part_name(context, t, sender_id(update), str(p.get("binding", "")))
        return t.gettext(
            "This group is already {part}. A group plays one part only; bind another group."
        ).format(part=part)
    if isinstance(error, errors.UnknownCode) and p.get("kind") == "unit":
        return t.gettext("There is no unit with the code {code}. /units lists them.").format(
            code=html.escape(str(p.get("code", "")))
        )
    if type(error) is errors.InvalidInput and p.get("field") == "code":
        if "code" in p:
            return t.gettext("A unit with the code {code} already exists.").format(
                code=html.escape(str(p["code"]))
            )
        return t.gettext(
            "A unit code starts with a letter, followed by up to 31 letters, digits, - or _."
        )
    return error_text(t, error)


def chunks(lines: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Lines joined into messages that each stay within Telegram's limit."""
    messages: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + 1 + len(line) > limit:
            messages.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    return [*messages, current] if current else messages


# -- /units and /unit ----------------------------------------------------------------------


def unit_line(t: Translator, unit: services.UnitRow) -> str:
    """One unit in the /units list."""
    state = t.gettext("active") if unit.is_active else "⛔ " + t.gettext("disabled")
    liaisons = t.ngettext("{n} liaison", "{n} liaisons", unit.liaisons).format(n=unit.liaisons)
    group = t.gettext("group bound") if unit.bound else t.gettext("no group bound")
    under = (
        " " + t.gettext("(under {parent})").format(parent=html.escape(unit.parent))
        if unit.parent
        else ""
    )
    return (
        f"<code>{html.escape(unit.code)}</code> {html.escape(unit.name)}{under}"
        f" — {state} · {liaisons} · {group}"
    )


async def units_command(update: Update, context: Context) -> None:
    """/units: every unit with its state, liaison count and group (staff only)."""
    t = t_for(update, context)
    try:
        units = await services.list_units(context.services, sender_id(update))
    except errors.DomainError as error:
        await say(update, context, await explain(update, context, error))
        return
    if not units:
        await say(update, context, t.gettext("There are no units yet. Add one with /unit add."))
        return
    header = "<b>" + t.gettext("Units ({count})").format(count=len(units)) + "</b>"
    for text in chunks([header, *(unit_line(t, unit) for unit in units)]):
        await say(update, context, text)


def unit_usage(t: Translator) -> str:
    """How /unit is used."""
    return t.gettext(
        "Usage: /unit add CODE NAME [PARENT], /unit edit CODE NAME, /unit disable CODE, "
        "/unit enable CODE"
    )


async def unit_command(update: Update, context: Context) -> None:
    """/unit add|edit|disable|enable: change the units (admins only)."""
    t = t_for(update, context)
    args = args_of(context)
    sub = args[0].lower() if args else ""
    svc, user_id = context.services, sender_id(update)
    try:
        if sub == "add" and len(args) in (3, 4):
            parent = args[3] if len(args) == 4 else None
            await services.save_unit(svc, user_id, args[1], args[2], parent, create=True)
            text = t.gettext("Unit {unit} added.")
        elif sub == "edit" and len(args) >= 3:
            await services.save_unit(svc, user_id, args[1], " ".join(args[2:]), create=False)
            text = t.gettext("Unit {unit} renamed.")
        elif sub in ("disable", "enable") and len(args) == 2:
            await services.set_unit_active(svc, user_id, args[1], sub == "enable")
            text = (
                t.gettext("Unit {unit} is enabled again.")
                if sub == "enable"
                else t.gettext("Unit {unit} is disabled: it receives no new cases.")
            )
        else:
            await say(update, context, unit_usage(t))
            return
    except errors.DomainError as error:
        await say(update, context, await explain(update, context, error))
        return
    logger.info("update %s: unit %s %s", update.update_id, sub, args[1])
    await say(update, context, text.format(unit=await unit_label(context, user_id, args[1])))


# -- /staff ----------------------------------------------------------------------------------


def staff_usage(t: Translator) -> str:
    """How /staff is used."""
    return t.gettext(
        "Usage: /staff add USER ROLE or /staff remove USER ROLE. USER is a numeric Telegram id "
        "or @username, or leave it out and reply to one of their messages. ROLE is admin, "
        "dispatcher, supervisor or leader."
    )


async def staff_command(update: Update, context: Context) -> None:
    """/staff add|remove USER ROLE: give or take a staff role (admins only)."""
    t = t_for(update, context)
    args = args_of(context)
    sub = args[0].lower() if args else ""
    role = args[-1].lower() if len(args) >= 2 else ""
    reference = args[1] if len(args) == 3 else None
    if (
        sub not in ("add", "remove")
        or role not in ROLE_NAMES
        or len(args) not in (2, 3)
        or (reference is None and replied_user(update) is None)
    ):
        await say(update, context, staff_usage(t))
        return
    person = await find_person(update, context, reference)
    if person is None:
        return
    change = services.grant_role if sub == "add" else services.revoke_role
    try:
        changed = await change(context.services, sender_id(update), person.user_id, role)
    except errors.DomainError as error:
        await say(update, context, await explain(update, context, error))
        return
    logger.info("update %s: staff %s %s %s", update.update_id, sub, person.user_id, role)
    texts = {
        ("add", True): t.gettext("{person} now has the role {role}."),
        ("add", False): t.gettext("{person} already has the role {role}."),
        ("remove", True): t.gettext("{person} no longer has the role {role}."),
        ("remove", False): t.gettext("{person} did not have the role {role}."),
    }
    role_name = t.gettext(ROLE_NAMES[role])
    await say(update, context, texts[sub, changed].format(person=person.label, role=role_name))


# -- /bind -----------------------------------------------------------------------------------


async def bind_command(update: Update, context: Context) -> None:
    """/bind dispatch|supervision|leaders|UNIT_CODE: give this group its part (admins only)."""
    t = t_for(update, context)
    chat = update.effective_chat
    assert chat is not None
    args = args_of(context)
    if chat.type not in GROUPS:
        await say(
            update,
            context,
            t.gettext(
                "Groups are bound from inside: add me to the group, then send /bind there. "
                "A private chat cannot be bound."
            ),
        )
        return
    if len(args) != 1:
        await say(
            update,
            context,
            t.gettext(
                "Usage: /bind dispatch, /bind supervision, /bind leaders or /bind UNIT_CODE, "
                "sent in the group to bind."
            ),
        )
        return
    purpose = args[0].lower() if args[0].lower() in PARTS else "unit"
    unit_code = args[0] if purpose == "unit" else None
    try:
        binding = await services.bind_chat(
            context.services,
            sender_id(update),
            chat.id,
            purpose,
            unit_code=unit_code,
            title=chat.title,
        )
    except errors.DomainError as error:
        await say(update, context, await explain(update, context, error))
        return
    part = await part_name(context, t, sender_id(update), binding)
    await say(update, context, t.gettext("This group is now {part}.").format(part=part))


# -- /liaison --------------------------------------------------------------------------------


def liaison_usage(t: Translator) -> str:
    """How /liaison is used."""
    return t.gettext(
        "Usage: /liaison add UNIT_CODE USER or /liaison remove UNIT_CODE USER. USER is a "
        "numeric Telegram id or @username, or leave it out and reply to one of their messages."
    )


async def liaison_command(update: Update, context: Context) -> None:
    """/liaison add|remove UNIT_CODE USER: change a unit's liaisons (admins only)."""
    t = t_for(update, context)
    args = args_of(context)
    sub = args[0].lower() if args else ""
    reference = args[2] if len(args) == 3 else None
    if (
        sub not in ("add", "remove")
        or len(args) not in (2, 3)
        or (reference is None and replied_user(update) is None)
    ):
        await say(update, context, liaison_usage(t))
        return
    person = await find_person(update, context, reference)
    if person is None:
        return
    change = services.add_liaison if sub == "add" else services.remove_liaison
    try:
        changed = await change(context.services, sender_id(update), args[1], person.user_id)
    except errors.DomainError as error:
        await say(update, context, await explain(update, context, error))
        return
    logger.info("update %s: liaison %s %s %s", update.update_id, sub, args[1], person.user_id)
    texts = {
        ("add", True): t.gettext("{person} is now a liaison of {unit}."),
        ("add", False): t.gettext("{person} is already a liaison of {unit}."),
        ("remove", True): t.gettext("{person} is no longer a liaison of {unit}."),
        ("remove", False): t.gettext("{person} was not a liaison of {unit}."),
    }
    unit = await unit_label(context, sender_id(update), args[1])
    await say(update, context, texts[sub, changed].format(person=person.label, unit=unit))


# -- /joincode and /join -----------------------------------------------------------------------


async def joincode_command(update: Update, context: Context) -> None:
    """/joincode UNIT_CODE: a one-time code that makes its sender a liaison (the desk only)."""
    t = t_for(update, context)
    args = args_of(context)
    if len(args) != 1:
        await say(update, context, t.gettext("Usage: /joincode UNIT_CODE"))
        return
    try:
        code = await services.issue_join_code(context.services, sender_id(update), args[0])
    except errors.DomainError as error:
        await say(update, context, await explain(update, context, error))
        return
    unit = await unit_label(context, sender_id(update), args[0])
    text = "\n".join(
        [
            t.gettext("One-time join code for {unit}: <code>{code}</code>").format(
                unit=unit, code=code
            ),
            t.gettext(
                "In the unit's group, send /join {code} — whoever sends it becomes a liaison "
                "of the unit. The code works once and expires in {days} days."
            ).format(code=code, days=services.JOIN_CODE_LIFETIME.days),
        ]
    )
    await say(update, context, text)


async def join_command(update: Update, context: Context) -> None:
    """/join CODE: become a liaison of the unit whose bound group this is."""
    t = t_for(update, context)
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None
    args = args_of(context)
    if len(args) != 1 or chat.type not in GROUPS:
        await say(update, context, t.gettext("Usage: /join CODE, sent in your unit's group."))
        return
    profile = Profile(user.id, user.first_name, user.last_name, user.username, t.language)
    try:
        unit_code = await services.redeem_join_code(context.services, profile, args[0], chat.id)
    except errors.InvalidInput:
        await say(
            update,
            context,
            t.gettext("This join code is not valid: it may be mistyped, expired or already used."),
        )
        return
    except errors.NotAllowed:
        await say(
            update,
            context,
            t.gettext("This join code works only in the group of the unit it was issued for."),
        )
        return
    logger.info("update %s: user %s joined %s", update.update_id, user.id, unit_code)
    unit = await unit_label(context, user.id, unit_code)
    person = html.escape(user.full_name)
    await say(
        update,
        context,
        t.gettext("{person} is now a liaison of {unit}.").format(person=person, unit=unit),
    )


# -- wiring ------------------------------------------------------------------------------------


def register(app: Any) -> None:
    """The administration commands; they work in private chats and groups alike."""
    app.add_handler(CommandHandler("units", units_command, filters=NEW))
    app.add_handler(CommandHandler("unit", unit_command, filters=NEW))
    app.add_handler(CommandHandler("staff", staff_command, filters=NEW))
    app.add_handler(CommandHandler("bind", bind_command, filters=NEW))
    app.add_handler(CommandHandler("liaison", liaison_command, filters=NEW))
    app.add_handler(CommandHandler("joincode", joincode_command, filters=NEW))
    app.add_handler(CommandHandler("join", join_command, filters=NEW))
