"""Shared handler plumbing: the reader's language, the gatekeeper, errors, stale buttons."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import ApplicationHandlerStop

from bot import quiet, services
from bot.app import Context, update_label
from bot.domain import errors
from bot.i18n import Translator, language_for, translator
from storage.db import UnitOfWork, to_db
from storage.directory import Profile, upsert_user

logger = logging.getLogger(__name__)


def t_for(update: Update, context: Context) -> Translator:
    """The translator for whoever sent this update."""
    language = context.user_data.get("lang") if context.user_data is not None else None
    if language is None and update.effective_user is not None:
        language = language_for(update.effective_user.language_code)
    return translator(language)


async def throttle(update: Update, context: Context) -> None:
    """Gatekeeper (group -2): a person sending faster than the policy allows in a private
    chat is ignored for a while, told so once; everyone else goes on as usual.

    Groups are left alone: the bound ones are the city's own staff at work (a liaison may
    sign a pile of cases in a minute), and privacy mode keeps other groups' chatter away.
    """
    user = update.effective_user
    chat = update.effective_chat
    if user is None or user.is_bot or chat is None or chat.type != ChatType.PRIVATE:
        return
    limits = context.services.policy.limits
    gate = context.bot_data.throttle
    if gate.admit(user.id, burst=limits.updates_burst, per_minute=limits.updates_per_minute):
        return
    if gate.first_refusal(user.id):
        logger.info("update %s: user %s throttled", update.update_id, user.id)
        t = t_for(update, context)
        notice = t.gettext(
            "You are sending messages faster than I can take them. I will ignore new ones "
            "for a minute or two; what you sent before is safe."
        )
        try:
            if update.callback_query is not None:
                await answer_quietly(update.callback_query, notice, show_alert=True)
            elif update.effective_message is not None:
                await update.effective_message.reply_text(notice)
        except TelegramError:
            logger.info("update %s: could not tell user %s about the throttle",
                        update.update_id, user.id)
    raise ApplicationHandlerStop


async def send_text(
    context: Context, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> int:
    """Send an HTML message whose answer is not needed beyond its id; returns the id."""
    return await quiet.send_html(context.bot, chat_id, text, keyboard)


async def edit_text(
    context: Context, query: CallbackQuery, text: str,
    keyboard: InlineKeyboardMarkup | None = None,
) -> None:
    """Replace the text (and buttons) of the message a button was pressed on."""
    message = query.message
    assert message is not None, "our buttons are never on inline messages"
    await quiet.edit_html(context.bot, message.chat.id, message.message_id, text, keyboard)


async def drop_keyboard(context: Context, query: CallbackQuery) -> None:
    """Take the buttons off the message a button was pressed on."""
    message = query.message
    assert message is not None, "our buttons are never on inline messages"
    await quiet.drop_keyboard(context.bot, message.chat.id, message.message_id)


class FixedKeyboard(InlineKeyboardMarkup):
    """An inline keyboard built once and sent many times: its JSON form is kept.

    PTB turns a keyboard into a dict on every call, button by button: in a burst of
    filings, rebuilding and serialising the same category keyboard was ~7 % of the bot's
    CPU (docs/performance.md)."""

    __slots__ = ("_as_dict",)

    def __init__(self, rows: Sequence[Sequence[InlineKeyboardButton]]) -> None:
        super().__init__(rows)
        with self._unfrozen():
            self._as_dict = super().to_dict()

    def to_dict(self, recursive: bool = True) -> dict[str, Any]:
        """The keyboard as the Bot API takes it (a fresh outer dict: callers may add keys)."""
        return dict(self._as_dict)


def fixed_keyboard(
    context: Context, kind: str, language: str, build: Callable[[], FixedKeyboard]
) -> InlineKeyboardMarkup:
    """The application's keyboard of this kind in this language, built on first use."""
    keyboards = context.bot_data.keyboards
    keyboard = keyboards.get((kind, language))
    if keyboard is None:
        keyboard = keyboards[(kind, language)] = build()
    return keyboard


async def remember_user(update: Update, context: Context) -> None:
    """Gatekeeper (group -1): keep the user's profile and language; note they can be reached."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or user.is_bot or chat is None or chat.type != ChatType.PRIVATE:
        return
    known = context.bot_data.known_users
    if user.id in known:
        return
    svc = context.services
    chosen = context.user_data.get("lang") if context.user_data is not None else None
    profile = Profile(
        user.id,
        user.first_name,
        user.last_name,
        user.username,
        chosen or language_for(user.language_code),
    )
    now_db = to_db(svc.clock.now()) or 0

    async def body(uow: UnitOfWork) -> None:
        await upsert_user(uow, profile, now_db)
        # Writing to us means the bot is no longer blocked.
        await uow.execute("UPDATE users SET is_blocked = 0 WHERE id = ?", (profile.user_id,))
        await uow.commit()

    await svc.db.run(body)
    known.add(user.id)


def error_text(t: Translator, error: errors.DomainError) -> str:
    """A domain error in the reader's language."""
    _ = t.gettext
    p = error.params
    messages: dict[type[errors.DomainError], str] = {
        errors.TextEmpty: _("Please write a few words (at least {minimum} characters)."),
        errors.TextTooLong: _(
            "That is too long ({length} characters; the limit is {limit}). Please shorten it."
        ),
        errors.UnknownCode: _("That choice is not available. Please use the buttons."),
        errors.UnitDisabled: _("That unit is disabled and cannot receive cases."),
        errors.CaseNotFound: _("No case with that number was found among yours."),
        errors.NotYourCase: _("This case is not yours to act on."),
        errors.NotAllowed: _("You are not allowed to do this."),
        errors.AlreadySigned: _("This case was already signed for."),
        errors.ReturnNotAllowed: _("This case cannot be returned again."),
        errors.ExtensionPastCap: _("That is past the longest extension allowed."),
        errors.ExtensionPending: _("An extension request is already waiting for a decision."),
        errors.CoUnitsNotReported: _("Every co-unit must report before the final answer."),
        errors.QuestionOpen: _("A question to the citizen is still open."),
        errors.NoOpenQuestion: _("There is no open question on this case any more."),
        errors.TrackNotSet: _("Please choose a track first."),
        errors.CoUnitsNeedCoordinatedTrack: _("Co-units need the coordinated track."),
        errors.RateLimited: _(
            "You have filed {limit} messages in the last hour, the most we "
            "accept. Please try again later, or add to an existing case."
        ),
        errors.IllegalTransition: _("That is not possible in the case's current state."),
        errors.InvalidInput: _("That input is not valid. Please try again."),
    }
    for kind in type(error).__mro__:
        if kind in messages:
            try:
                return messages[kind].format(**p)
            except (KeyError, IndexError):
                return messages[kind].format_map(_Blank())
    return _("That is not possible right now.")


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "…"


async def answer_quietly(
    query: CallbackQuery, text: str | None = None, show_alert: bool = False
) -> None:
    """Answer a button press; an expired query (e.g. a redelivered update) is not an error.

    Nor is a press Telegram failed to take the answer for (a 5xx, a timeout): the answer
    only stops the button's spinner, and what the press asked for must still happen — the
    prompt after it, or the person is told "went wrong" about a step that was taken."""
    try:
        await query.answer(text, show_alert=show_alert)
    except BadRequest as error:
        logger.info("callback %s not answered: %s", query.id, error.message)
    except TelegramError as error:
        logger.warning("callback %s not answered: %s", query.id, error)


async def stale_button(update: Update, context: Context) -> None:
    """A button nobody handles: an old message, or forged data. Say so; change nothing."""
    query = update.callback_query
    if query is None:
        return
    t = t_for(update, context)
    await answer_quietly(query, t.gettext("This button is no longer valid."))


async def unknown_command(update: Update, context: Context) -> None:
    """A command the bot does not know (private chats only; groups stay quiet)."""
    if update.effective_message is None:
        return
    t = t_for(update, context)
    await update.effective_message.reply_text(
        t.gettext("I don't know that command. /help lists what I can do.")
    )


# What Telegram answers when an update is handled a second time — delivered again after
# a crash, or a double tap: the press was already answered, the message already edited.
ALREADY_DONE = ("message is not modified", "query is too old")


async def on_error(update: object, context: Context) -> None:
    """Anything the handlers did not expect: logged once with the update id, never swallowed."""
    error = context.error
    if isinstance(error, BadRequest) and any(s in error.message.lower() for s in ALREADY_DONE):
        logger.info("update %s: already done (%s)", update_label(update), error.message)
        return
    logger.error("update %s failed", update_label(update), exc_info=context.error)
    if context.error is not None and context.bot_data.services is not None:
        try:
            await services.report_error(
                context.services,
                update.update_id if isinstance(update, Update) else None,
                context.error,
            )
        except Exception:
            logger.exception("could not report update %s to the desk", update_label(update))
    if isinstance(update, Update) and update.effective_chat is not None:
        t = t_for(update, context)
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(
                    t.gettext("Sorry, something went wrong. Nothing was lost; please try again."),
                    show_alert=True,
                )
            elif update.effective_chat.type == ChatType.PRIVATE and update.effective_message:
                await update.effective_message.reply_text(
                    t.gettext("Sorry, something went wrong. Nothing was lost; please try again.")
                )
        except TelegramError:
            logger.warning("could not tell update %s about the error", update_label(update))
