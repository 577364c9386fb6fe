"""The citizen's side: /start, filing (guided and quick), following cases, answering
questions, rating answers, choosing the language."""

from __future__ import annotations

import html
import logging
import re
import warnings
from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot import services
from bot.app import Context
from bot.domain import errors
from bot.domain.case import Case
from bot.domain.policy import Named
from bot.i18n import LANGUAGE_NAMES, LANGUAGES, N_, Translator, translator
from handlers.common import (
    FixedKeyboard,
    answer_quietly,
    drop_keyboard,
    edit_text,
    error_text,
    fixed_keyboard,
    send_text,
    t_for,
)
from handlers.render import STAGE_NAMES, STATE_NAMES, RenderContext, escape, next_deadline
from storage import delivery
from storage.db import UnitOfWork, to_db

logger = logging.getLogger(__name__)

# New messages in private chats; edits are answered separately and never re-handled.
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
ATTACHMENT = filters.PHOTO | filters.Document.ALL | filters.VOICE
UNSUPPORTED = (
    filters.Sticker.ALL
    | filters.VIDEO
    | filters.ANIMATION
    | filters.VIDEO_NOTE
    | filters.AUDIO
    | filters.Dice.ALL
    | filters.POLL
    | filters.GAME
    | filters.VENUE
    | filters.STORY
    | filters.CONTACT  # outside the contact step (which takes it first)
)
NUMBER = re.compile(r"^[A-Z]{1,6}\d{4}-\d{6}$")


class Filing(IntEnum):
    """Steps of filing a message."""

    CATEGORY = 1
    DISTRICT = 2
    DESCRIPTION = 3
    ATTACHMENTS = 4
    CONTACT = 5
    CONFIRM = 6


# -- small helpers -------------------------------------------------------------------------


def draft_of(context: Context) -> dict[str, Any]:
    """The filing in progress (kept in persisted user data, so it survives a restart)."""
    assert context.user_data is not None
    return context.user_data.setdefault("draft", {"attachments": []})


def _(update: Update, context: Context) -> Translator:
    return t_for(update, context)


async def say(update: Update, context: Context, text: str, **kwargs: Any) -> Message | None:
    """Reply in the chat the update came from, with HTML."""
    chat = update.effective_chat
    if chat is None:
        return None
    return await context.bot.send_message(chat.id, text, parse_mode=ParseMode.HTML, **kwargs)


def _grid(
    buttons: list[InlineKeyboardButton], columns: int = 2
) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + columns] for i in range(0, len(buttons), columns)]


def _choices(
    context: Context, t: Translator, kind: str, prefix: str, items: Iterable[Named]
) -> InlineKeyboardMarkup:
    """One button per item (data `prefix` + code), two a row, then Cancel; built once per
    language."""

    def build() -> FixedKeyboard:
        buttons = [
            InlineKeyboardButton(item.name_in(t.language), callback_data=f"{prefix}{item.code}")
            for item in items
        ]
        return FixedKeyboard(
            [*_grid(buttons), [InlineKeyboardButton(t.gettext("Cancel"), callback_data="f:x")]]
        )

    return fixed_keyboard(context, kind, t.language, build)


def category_keyboard(context: Context, t: Translator) -> InlineKeyboardMarkup:
    """One button per category of the policy."""
    return _choices(context, t, "categories", "f:c:", context.services.policy.categories.values())


def district_keyboard(context: Context, t: Translator) -> InlineKeyboardMarkup:
    """One button per district of the policy."""
    return _choices(context, t, "districts", "f:d:", context.services.policy.districts.values())


def attachment_of(message: Message) -> services.Attachment | None:
    """The file a message carries, if it is one we accept."""
    if message.photo:
        photo = message.photo[-1]
        return services.Attachment(
            "photo", photo.file_id, photo.file_unique_id, None, "image/jpeg", photo.file_size
        )
    if message.document:
        doc = message.document
        return services.Attachment(
            "document", doc.file_id, doc.file_unique_id, doc.file_name, doc.mime_type, doc.file_size
        )
    if message.voice:
        voice = message.voice
        return services.Attachment(
            "voice", voice.file_id, voice.file_unique_id, None, voice.mime_type, voice.file_size
        )
    return None


async def add_attachment(update: Update, context: Context) -> bool:
    """Keep a photo, document or voice message in the draft, within the policy's limits."""
    message = update.effective_message
    assert message is not None
    t = _(update, context)
    limits = context.services.policy.limits
    attachment = attachment_of(message)
    if attachment is None:
        return False
    draft = draft_of(context)
    if len(draft["attachments"]) >= limits.attachments_max:
        await say(
            update,
            context,
            t.gettext("You can attach at most {limit} files; this one was not added.").format(
                limit=limits.attachments_max
            ),
        )
        return False
    if attachment.size and attachment.size > limits.attachment_max_bytes:
        await say(
            update,
            context,
            t.gettext("This file is too large (the limit is {limit} MB); it was not added.").format(
                limit=limits.attachment_max_bytes // (1024 * 1024)
            ),
        )
        return False
    draft["attachments"].append(attachment.as_dict())
    return True


async def keep_media(update: Update, context: Context) -> str | None:
    """Keep a shared location or an accepted file in the draft: 'location', 'file' or None."""
    message = update.effective_message
    assert message is not None
    if message.location:
        draft_of(context)["location"] = [message.location.latitude, message.location.longitude]
        return "location"
    return "file" if await add_attachment(update, context) else None


def check_description(context: Context, text: str) -> errors.DomainError | None:
    """Length limits of a citizen's description, before anything is stored."""
    limits = context.services.policy.limits
    cleaned = text.strip()
    if len(cleaned) < limits.text_min:
        return errors.TextEmpty("text", minimum=limits.text_min)
    if len(cleaned) > limits.text_max:
        return errors.TextTooLong("text", limit=limits.text_max, length=len(cleaned))
    return None


# -- /start, /help, /language --------------------------------------------------------------


async def start(update: Update, context: Context) -> int:
    """Welcome: what the bot does, how cases are handled, and what stays private."""
    t = _(update, context)
    g = t.gettext
    text = "\n".join(
        [
            "👋 " + g("Welcome to the city's citizen message service (问政)."),
            "",
            g(
                "Tell us about a problem or make a suggestion, and the responsible government unit "
                "will answer you here."
            ),
            "",
            "<b>" + g("How it works") + "</b>",
            g("• The dispatch desk passes your message to the responsible unit."),
            g(
                "• The unit signs for it within 1 working day, replies within 3 working days and "
                'resolves it within 7 (the "1-3-7" rule).'
            ),
            g(
                "• When the answer is published you can rate it; if you are not satisfied, "
                "the case is handled again."
            ),
            "",
            "<b>" + g("Your privacy") + "</b>",
            g(
                "The unit sees your message, but not your name, username or phone number "
                "unless you agree to share your contact. Questions and answers go through "
                "this bot."
            ),
            "",
            g("Send /new to file a message, or simply write it down here."),
        ]
    )
    await say(update, context, text, reply_markup=ReplyKeyboardRemove())
    return ConversationHandler.END


async def help_command(update: Update, context: Context) -> None:
    """The commands a citizen can use."""
    g = _(update, context).gettext
    await say(
        update,
        context,
        "\n".join(
            [
                g("/new — file a new message"),
                g("/my — your cases and what happens next"),
                g("/case NUMBER — one of your cases with its history"),
                g("/language — choose the language"),
                g("/cancel — stop what you are doing"),
                "",
                g("You can also just write your message here, or send a photo with a caption."),
            ]
        ),
    )


async def language_command(update: Update, context: Context) -> None:
    """Offer the three languages."""
    t = _(update, context)
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(LANGUAGE_NAMES[code], callback_data=f"lang:{code}")]
            for code in LANGUAGES
        ]
    )
    await say(update, context, t.gettext("Please choose your language:"), reply_markup=keyboard)


async def choose_language(update: Update, context: Context) -> None:
    """Remember the chosen language, here and in the database."""
    query = update.callback_query
    assert query is not None and query.data is not None and update.effective_user is not None
    code = query.data.removeprefix("lang:")
    if code not in LANGUAGES:
        await answer_quietly(query, _(update, context).gettext("This button is no longer valid."))
        return
    assert context.user_data is not None
    context.user_data["lang"] = code
    svc = context.services
    params = (code, to_db(svc.clock.now()), update.effective_user.id)

    async def body(uow: UnitOfWork) -> None:
        await uow.execute(
            "UPDATE users SET language = ?, language_chosen = 1, updated_at = ? WHERE id = ?",
            params,
        )
        await uow.commit()

    await svc.db.run(body)
    t = translator(code)
    await answer_quietly(query)
    await query.edit_message_text(
        t.gettext("Language set to English.")
        if code == "en"
        else t.gettext("The language is now {name}.").format(name=LANGUAGE_NAMES[code])
    )


# -- filing ----------------------------------------------------------------------------------


async def new_filing(update: Update, context: Context) -> int:
    """/new: start a guided filing with the category."""
    assert context.user_data is not None
    context.user_data["draft"] = {"attachments": []}
    t = _(update, context)
    await say(
        update,
        context,
        t.gettext("What is your message about? Please choose a category."),
        reply_markup=category_keyboard(context, t),
    )
    return Filing.CATEGORY


async def on_private_text(update: Update, context: Context) -> int:
    """Plain text outside a filing: a pending comment or answer, or else a quick filing."""
    message = update.effective_message
    assert message is not None and context.user_data is not None
    text = message.text or ""
    if context.user_data.get("rating") is not None:
        await finish_rating(update, context, text)
        return ConversationHandler.END
    if await answer_if_question(update, context, text):
        return ConversationHandler.END
    t = _(update, context)
    problem = check_description(context, text)
    if isinstance(problem, errors.TextEmpty):
        await say(
            update,
            context,
            t.gettext(
                "To file a message, describe the problem in a sentence or two (at least {minimum} "
                "characters), or send /new."
            ).format(minimum=problem.params["minimum"]),
        )
        return ConversationHandler.END
    if problem is not None:
        await say(update, context, error_text(t, problem))
        return ConversationHandler.END
    context.user_data["draft"] = {"attachments": [], "text": text.strip(), "quick": True}
    await send_text(
        context,
        message.chat_id,
        t.gettext(
            "I can file this as a message to the city. What is it about? Please choose a category."
        ),
        category_keyboard(context, t),
    )
    return Filing.CATEGORY


async def on_private_media(update: Update, context: Context) -> int:
    """A photo, document, voice or location outside a filing starts a quick filing."""
    message = update.effective_message
    assert message is not None and context.user_data is not None
    t = _(update, context)
    context.user_data["draft"] = {"attachments": [], "quick": True}
    draft = draft_of(context)
    await keep_media(update, context)
    caption = (message.caption or "").strip()
    if caption and check_description(context, caption) is None:
        draft["text"] = caption
    await say(
        update,
        context,
        t.gettext(
            "Received. I can file this as a message to the city. What is it about? "
            "Please choose a category."
        ),
        reply_markup=category_keyboard(context, t),
    )
    return Filing.CATEGORY


async def _take_choice(
    update: Update,
    context: Context,
    field: str,
    prefix: str,
    choices: dict[str, Named],
    confirmation: str,
    then: tuple[str, InlineKeyboardMarkup] | None = None,
    *,
    edit: bool = True,
) -> bool:
    """Keep a category or district from its button; False for a stale or forged one.

    With `then` (a question and its buttons), the same message shows the choice and asks
    the next question: one Bot API call instead of an edit and a new message, which in a
    burst of filings is a fifth of the bot's calls. `edit=False` leaves the message to the
    caller (the summary takes its place)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    t = _(update, context)
    code = query.data.removeprefix(prefix)
    if code not in choices:
        await answer_quietly(query, t.gettext("This button is no longer valid."))
        return False
    draft_of(context)[field] = code
    await answer_quietly(query)
    if not edit:
        return True
    text = confirmation.format(name=html.escape(choices[code].name_in(t.language)))
    question, keyboard = then if then is not None else ("", None)
    await edit_text(context, query, f"{text}\n\n{question}" if question else text, keyboard)
    return True


async def choose_category(update: Update, context: Context) -> int:
    """Category chosen: ask the district."""
    t = _(update, context)
    policy = context.services.policy
    editing = bool(draft_of(context).get("editing"))
    ask_district = (t.gettext("Where is it? Please choose the district."),
                    district_keyboard(context, t))
    if not await _take_choice(
        update, context, "category", "f:c:", policy.categories, t.gettext("Category: {name}"),
        then=None if editing else ask_district,
    ):
        return Filing.CATEGORY
    if editing:
        return await show_summary(update, context)
    return Filing.DISTRICT


async def choose_district(update: Update, context: Context) -> int:
    """District chosen: ask the description (or, for a quick filing, go to the summary)."""
    t = _(update, context)
    policy = context.services.policy
    draft = draft_of(context)
    summary_next = bool(draft.get("editing") or (draft.get("quick") and draft.get("text")))
    if not await _take_choice(
        update, context, "district", "f:d:", policy.districts, t.gettext("District: {name}"),
        edit=not summary_next,
    ):
        return Filing.DISTRICT
    if summary_next:
        return await show_summary(update, context, in_place=True)
    await say(
        update,
        context,
        t.gettext(
            "Please describe the problem: what, where exactly, since when. "
            "The more precise, the faster it can be handled."
        ),
    )
    return Filing.DESCRIPTION


async def take_description(update: Update, context: Context) -> int:
    """The description: checked for length, then optional attachments."""
    message = update.effective_message
    assert message is not None
    t = _(update, context)
    text = message.text or ""
    problem = check_description(context, text)
    if problem is not None:
        await say(update, context, error_text(t, problem))
        return Filing.DESCRIPTION
    draft = draft_of(context)
    draft["text"] = text.strip()
    if draft.get("editing"):
        return await show_summary(update, context)
    return await ask_attachments(update, context)


async def media_before_description(update: Update, context: Context) -> int:
    """A file sent while we wait for the description: keep it, ask for the words."""
    message = update.effective_message
    assert message is not None
    t = _(update, context)
    await keep_media(update, context)
    caption = (message.caption or "").strip()
    if caption and check_description(context, caption) is None:
        draft_of(context)["text"] = caption
        return await ask_attachments(update, context)
    await say(
        update,
        context,
        t.gettext("Thank you, I kept it. Now please describe the problem in words."),
    )
    return Filing.DESCRIPTION


async def ask_attachments(update: Update, context: Context) -> int:
    """Offer to add photos, documents, voice messages or a location."""
    t = _(update, context)
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton(t.gettext("Done"), callback_data="f:done")]]
    )
    await say(
        update,
        context,
        t.gettext(
            "You may now send photos, documents, a voice message or your location (📎). "
            "Tap Done when finished, or if you have nothing to add."
        ),
        reply_markup=keyboard,
    )
    return Filing.ATTACHMENTS


async def take_attachment(update: Update, context: Context) -> int:
    """A file or location for the draft."""
    message = update.effective_message
    assert message is not None
    t = _(update, context)
    draft = draft_of(context)
    kept = await keep_media(update, context)
    if kept == "location":
        note = t.gettext("Location received.")
    elif kept == "file":
        note = t.ngettext(
            "{n} file received.", "{n} files received.", len(draft["attachments"])
        ).format(n=len(draft["attachments"]))
    else:
        return Filing.ATTACHMENTS
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton(t.gettext("Done"), callback_data="f:done")]]
    )
    await say(
        update, context, note + " " + t.gettext("Send more, or tap Done."), reply_markup=keyboard
    )
    return Filing.ATTACHMENTS


async def attachments_done(update: Update, context: Context) -> int:
    """Attachments finished: ask about sharing contact details."""
    query = update.callback_query
    assert query is not None
    await answer_quietly(query)
    await query.edit_message_reply_markup(None)
    if draft_of(context).get("editing"):
        return await show_summary(update, context)
    return await ask_contact(update, context)


async def ask_contact(update: Update, context: Context) -> int:
    """Ask for explicit consent before any contact detail reaches the unit."""
    t = _(update, context)
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t.gettext("Yes, share my phone number"), callback_data="f:p:yes"
                )
            ],
            [InlineKeyboardButton(t.gettext("No, stay anonymous"), callback_data="f:p:no")],
        ]
    )
    await say(
        update,
        context,
        t.gettext(
            "May the handling unit see your name and phone number, so it can call you? "
            "If you say no, it sees only your message; you still get every answer here."
        ),
        reply_markup=keyboard,
    )
    return Filing.CONTACT


async def contact_choice(update: Update, context: Context) -> int:
    """Consent given or refused."""
    query = update.callback_query
    assert query is not None and query.data is not None
    t = _(update, context)
    await answer_quietly(query)
    draft = draft_of(context)
    if query.data == "f:p:yes":
        await query.edit_message_text(
            t.gettext("Please tap the button below to share your phone number.")
        )
        keyboard = ReplyKeyboardMarkup(
            [[KeyboardButton("📱 " + t.gettext("Share my phone number"), request_contact=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
        await say(
            update, context, t.gettext("Or send /skip to stay anonymous."), reply_markup=keyboard
        )
        return Filing.CONTACT
    draft["contact"] = False
    draft.pop("phone", None)
    await query.edit_message_text(t.gettext("You stay anonymous to the unit."))
    return await show_summary(update, context)


async def take_contact(update: Update, context: Context) -> int:
    """The shared contact: only the citizen's own number is accepted."""
    message = update.effective_message
    assert message is not None and message.contact is not None
    user = update.effective_user
    t = _(update, context)
    if user is None or message.contact.user_id != user.id:
        await say(update, context, t.gettext("Please share your own number with the button."))
        return Filing.CONTACT
    draft = draft_of(context)
    draft["contact"] = True
    draft["phone"] = message.contact.phone_number
    await say(update, context, t.gettext("Thank you."), reply_markup=ReplyKeyboardRemove())
    return await show_summary(update, context)


async def skip_contact(update: Update, context: Context) -> int:
    """/skip while asked for the phone: stay anonymous."""
    draft = draft_of(context)
    draft["contact"] = False
    draft.pop("phone", None)
    t = _(update, context)
    await say(
        update,
        context,
        t.gettext("You stay anonymous to the unit."),
        reply_markup=ReplyKeyboardRemove(),
    )
    return await show_summary(update, context)


async def show_summary(update: Update, context: Context, *, in_place: bool = False) -> int:
    """The summary with confirm / edit / cancel (`in_place`: in the pressed message)."""
    t = _(update, context)
    g = t.gettext
    draft = draft_of(context)
    draft.pop("editing", None)
    policy = context.services.policy
    lines = ["<b>" + g("Please check your message") + "</b>", ""]
    category = policy.categories.get(draft.get("category", ""))
    district = policy.districts.get(draft.get("district", ""))
    lines.append(
        g("Category") + f": {html.escape(category.name_in(t.language)) if category else '—'}"
    )
    lines.append(
        g("District") + f": {html.escape(district.name_in(t.language)) if district else '—'}"
    )
    if draft.get("location"):
        lines.append(g("Location: attached"))
    if draft["attachments"]:
        lines.append(g("Attachments: {n}").format(n=len(draft["attachments"])))
    lines.append(
        g("Contact shared with the unit: {answer}").format(
            answer=g("yes") if draft.get("contact") else g("no")
        )
    )
    lines += ["", escape(draft.get("text"), 2000)]
    keyboard = fixed_keyboard(context, "summary", t.language, lambda: FixedKeyboard(
        [
            [InlineKeyboardButton("✅ " + g("Submit"), callback_data="f:ok")],
            [
                InlineKeyboardButton("✏️ " + g("Edit"), callback_data="f:e"),
                InlineKeyboardButton("✖️ " + g("Cancel"), callback_data="f:x"),
            ],
        ]
    ))
    if in_place and update.callback_query is not None:
        await edit_text(context, update.callback_query, "\n".join(lines), keyboard)
    elif update.effective_chat is not None:
        await send_text(context, update.effective_chat.id, "\n".join(lines), keyboard)
    return Filing.CONFIRM


async def edit_menu(update: Update, context: Context) -> int:
    """What to change."""
    query = update.callback_query
    assert query is not None
    g = _(update, context).gettext
    await answer_quietly(query)
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(g("Category"), callback_data="f:e:c"),
                InlineKeyboardButton(g("District"), callback_data="f:e:d"),
            ],
            [
                InlineKeyboardButton(g("Description"), callback_data="f:e:t"),
                InlineKeyboardButton(g("Attachments"), callback_data="f:e:a"),
            ],
            [InlineKeyboardButton(g("Contact"), callback_data="f:e:p")],
        ]
    )
    await query.edit_message_reply_markup(keyboard)
    return Filing.CONFIRM


async def edit_part(update: Update, context: Context) -> int:
    """Go back to one step; afterwards the summary is shown again."""
    query = update.callback_query
    assert query is not None and query.data is not None
    t = _(update, context)
    await answer_quietly(query)
    await query.edit_message_reply_markup(None)
    part = query.data.removeprefix("f:e:")
    draft = draft_of(context)
    draft["editing"] = True
    if part == "c":
        await say(
            update,
            context,
            t.gettext("Please choose a category."),
            reply_markup=category_keyboard(context, t),
        )
        return Filing.CATEGORY
    if part == "d":
        await say(
            update,
            context,
            t.gettext("Please choose the district."),
            reply_markup=district_keyboard(context, t),
        )
        return Filing.DISTRICT
    if part == "t":
        await say(update, context, t.gettext("Please send the new description."))
        return Filing.DESCRIPTION
    if part == "a":
        return await ask_attachments(update, context)
    draft.pop("editing", None)
    return await ask_contact(update, context)


async def submit(update: Update, context: Context) -> int:
    """File the case. "Filed as …" comes from the outbox, after the commit."""
    query = update.callback_query
    assert query is not None and context.user_data is not None
    user = update.effective_user
    assert user is not None
    t = _(update, context)
    draft = draft_of(context)
    if not draft.get("category") or not draft.get("district") or not draft.get("text"):
        await answer_quietly(
            query, t.gettext("Something is missing; please start again with /new.")
        )
        return ConversationHandler.END
    location = tuple(draft["location"]) if draft.get("location") else None
    try:
        await services.file_case(
            context.services,
            services.Profile(user.id, user.first_name, user.last_name, user.username, t.language),
            category=draft["category"],
            district=draft["district"],
            text=draft["text"],
            location=location,  # type: ignore[arg-type]
            contact_shared=bool(draft.get("contact")),
            phone=draft.get("phone"),
            attachments=tuple(services.Attachment(**a) for a in draft["attachments"]),
            update_id=update.update_id,
        )
    except errors.DuplicateUpdate:
        return ConversationHandler.END
    except errors.DomainError as error:
        await answer_quietly(query)
        await say(update, context, error_text(t, error))
        if isinstance(error, errors.RateLimited):
            context.user_data.pop("draft", None)
            return ConversationHandler.END
        return Filing.CONFIRM
    context.user_data.pop("draft", None)
    await answer_quietly(query, t.gettext("Submitted."))
    await drop_keyboard(context, query)
    return ConversationHandler.END


async def cancel_filing(update: Update, context: Context) -> int:
    """Stop filing and forget the draft."""
    assert context.user_data is not None
    context.user_data.pop("draft", None)
    t = _(update, context)
    if update.callback_query is not None:
        await answer_quietly(update.callback_query)
        await update.callback_query.edit_message_text(t.gettext("Cancelled. Nothing was filed."))
    else:
        await say(
            update,
            context,
            t.gettext("Cancelled. Nothing was filed."),
            reply_markup=ReplyKeyboardRemove(),
        )
    return ConversationHandler.END


async def cancel_nothing(update: Update, context: Context) -> None:
    """/cancel with nothing going on."""
    assert context.user_data is not None
    context.user_data.pop("rating", None)
    context.user_data.pop("answering", None)
    await say(
        update,
        context,
        _(update, context).gettext("There is nothing to cancel."),
        reply_markup=ReplyKeyboardRemove(),
    )


async def use_buttons(update: Update, context: Context) -> int | None:
    """Text where a button choice is expected."""
    await say(update, context, _(update, context).gettext("Please use the buttons above."))
    return None


async def media_while_choosing(update: Update, context: Context) -> int | None:
    """A file or location while a button choice is expected: keep it, ask for the choice."""
    t = _(update, context)
    if await keep_media(update, context) is None:
        return None  # add_attachment has said why it was not kept
    await say(update, context, t.gettext(
        "I kept this with your message. Please choose with the buttons above."))
    return None


async def unsupported_media(update: Update, context: Context) -> int | None:
    """Stickers, videos and the like: not accepted as part of a message."""
    await say(
        update,
        context,
        _(update, context).gettext(
            "I can't accept this kind of message. Please write text, or send photos, documents, "
            "a voice message or a location."
        ),
    )
    return None


async def stale_filing_button(update: Update, context: Context) -> int | None:
    """A filing button from an earlier step."""
    query = update.callback_query
    assert query is not None
    await answer_quietly(query, _(update, context).gettext("This button is no longer valid."))
    return None


# -- following one's cases -------------------------------------------------------------------


async def my_cases(update: Update, context: Context) -> None:
    """/my: the citizen's cases, newest first, with the next step and its deadline."""
    user = update.effective_user
    assert user is not None
    t = _(update, context)
    svc = context.services
    rows = await svc.db.fetch_all(
        "SELECT id FROM cases WHERE citizen_id = ? ORDER BY id DESC LIMIT 20", (user.id,)
    )
    if not rows:
        await say(update, context, t.gettext("You have no cases yet. Send /new to file one."))
        return
    from storage.cases import load_case

    ctx = RenderContext(t, svc.policy, svc.db)
    lines = ["<b>" + t.gettext("Your cases") + "</b>", ""]
    for row in rows:
        case = await load_case(svc.db, case_id=row[0])
        lines.append(
            f"<b>{case.number}</b> · {ctx.category(case.category)} · "
            f"{t.gettext(STATE_NAMES[case.state])}"
        )
        upcoming = next_deadline(case)
        if upcoming:
            lines.append(
                "   "
                + t.gettext("Next: {step} by {date}").format(
                    step=t.gettext(STAGE_NAMES[upcoming[0]]), date=ctx.when(upcoming[1])
                )
            )
    lines += ["", t.gettext("Send /case NUMBER for the details of one case.")]
    await say(update, context, "\n".join(lines))


PUBLIC_EVENTS = {
    "CaseFiled": N_("Filed"),
    "RepeatFiled": N_("You sent the same message again"),
    "CaseAssigned": N_("Passed to {unit}"),
    "AssignmentSigned": N_("Signed for by {unit}"),
    "InterimAnswerPosted": N_("Progress reply from {unit}"),
    "AnswerPublished": N_("Final answer from {unit}"),
    "ExtensionApproved": N_("Deadline extended"),
    "QuestionAsked": N_("Question to you"),
    "QuestionAnswered": N_("Your answer"),
    "CaseRated": N_("Your rating"),
    "CaseReopened": N_("Reopened"),
    "CaseClosed": N_("Closed"),
    "CaseRejected": N_("Not accepted"),
}


async def case_command(update: Update, context: Context) -> None:
    """/case NUMBER: details and public timeline of one's own case only."""
    user = update.effective_user
    assert user is not None
    t = _(update, context)
    args = context.args or []
    number = args[0].strip().upper() if args else ""
    if not NUMBER.match(number):
        await say(
            update,
            context,
            t.gettext("Usage: /case NUMBER, for example /case {example}").format(
                example=f"{context.services.policy.case_prefix}2026-000123"
            ),
        )
        return
    svc = context.services
    try:
        case = await services.view_own_case(svc, user.id, number)
    except errors.DomainError as error:
        await say(update, context, error_text(t, error))
        return
    await say(update, context, await render_case_for_citizen(t, context, case))


async def render_case_for_citizen(t: Translator, context: Context, case: Case) -> str:
    """A citizen's view of their case: facts, state, next deadline and public timeline."""
    from storage.cases import load_events

    svc = context.services
    ctx = RenderContext(t, svc.policy, svc.db)
    g = t.gettext
    lines = [
        f"<b>{case.number}</b>",
        g("Category") + f": {ctx.category(case.category)}",
        g("District") + f": {ctx.district(case.district)}",
        g("State") + f": {g(STATE_NAMES[case.state])}",
    ]
    upcoming = next_deadline(case)
    if upcoming:
        lines.append(
            g("Next: {step} by {date}").format(
                step=g(STAGE_NAMES[upcoming[0]]), date=ctx.when(upcoming[1])
            )
        )
    lines += ["", escape(case.text, 1500), "", "<b>" + g("History") + "</b>"]
    assert case.id is not None
    for event in await load_events(svc.db, case.id):
        label = PUBLIC_EVENTS.get(event.kind)
        if label is None:
            continue
        lines.append(f"{ctx.when(event.at)} · " + g(label).format(unit=ctx.unit(event.unit_code)))
    return "\n".join(lines)


# -- questions from the unit ---------------------------------------------------------------


async def reply_button(update: Update, context: Context) -> None:
    """'Reply' under a relayed question: the next message is the answer."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.user_data is not None
    t = _(update, context)
    match = re.fullmatch(r"q:(\d+)", query.data)
    number = await _own_case_number(context, update, int(match.group(1))) if match else None
    if number is None:
        await answer_quietly(query, t.gettext("This button is no longer valid."))
        return
    context.user_data["answering"] = number
    await answer_quietly(query)
    await say(
        update,
        context,
        t.gettext("Please type your answer about case {number}:").format(number=number),
    )


async def _own_case_number(context: Context, update: Update, case_id: int) -> str | None:
    user = update.effective_user
    row = await context.services.db.fetch_one(
        "SELECT number FROM cases WHERE id = ? AND citizen_id = ?",
        (case_id, user.id if user else 0),
    )
    return str(row[0]) if row else None


async def answer_if_question(update: Update, context: Context, text: str) -> bool:
    """If the citizen is answering a question (button or Telegram reply), pass it on."""
    assert context.user_data is not None
    message = update.effective_message
    number = context.user_data.get("answering")
    if number is None and message is not None and message.reply_to_message is not None:
        number = await delivery.case_asked_in(
            context.services.db, message.chat_id, message.reply_to_message.message_id
        )
    if number is None:
        return False
    t = _(update, context)
    user = update.effective_user
    assert user is not None
    try:
        await services.answer_question(
            context.services, user.id, number, text, update_id=update.update_id
        )
    except errors.DuplicateUpdate:
        return True
    except errors.DomainError as error:
        context.user_data.pop("answering", None)
        await say(update, context, error_text(t, error))
        return True
    context.user_data.pop("answering", None)
    await say(update, context, t.gettext("Thank you, your answer was passed on."))
    return True


# -- rating ------------------------------------------------------------------------------------

RATING_CODES = {"s": "satisfied", "b": "basically_satisfied", "u": "unsatisfied"}


async def rating_button(update: Update, context: Context) -> None:
    """A rating button: satisfied ones close at once; unsatisfied asks why first."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.user_data is not None
    t = _(update, context)
    match = re.fullmatch(r"r:(\d+):([sbu])(:skip)?", query.data)
    number = await _own_case_number(context, update, int(match.group(1))) if match else None
    if match is None or number is None:
        await answer_quietly(query, t.gettext("This button is no longer valid."))
        return
    rating = RATING_CODES[match.group(2)]
    if rating == "unsatisfied" and not match.group(3):
        context.user_data["rating"] = {"number": number, "case_id": int(match.group(1))}
        await answer_quietly(query)
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton(t.gettext("Skip"), callback_data=f"r:{match.group(1)}:u:skip")]]
        )
        await say(
            update,
            context,
            t.gettext(
                "We are sorry. Please tell us briefly what is still not resolved, so the unit can "
                "handle it again (or tap Skip)."
            ),
            reply_markup=keyboard,
        )
        return
    await rate(update, context, number, rating, None)


async def finish_rating(update: Update, context: Context, comment: str) -> None:
    """The reason given after 'unsatisfied'."""
    assert context.user_data is not None
    pending = context.user_data.get("rating") or {}
    await rate(update, context, str(pending.get("number")), "unsatisfied", comment)


async def rate(
    update: Update, context: Context, number: str, rating: str, comment: str | None
) -> None:
    """Record the rating; the outbox tells the citizen what happens next."""
    assert context.user_data is not None and update.effective_user is not None
    t = _(update, context)
    context.user_data.pop("rating", None)
    try:
        await services.rate_case(
            context.services,
            update.effective_user.id,
            number,
            rating,
            comment,
            update_id=update.update_id,
        )
    except errors.DuplicateUpdate:
        return
    except errors.DomainError as error:
        if update.callback_query is not None:
            await answer_quietly(update.callback_query, error_text(t, error), True)
        else:
            await say(update, context, error_text(t, error))
        return
    if update.callback_query is not None:
        await answer_quietly(update.callback_query, t.gettext("Thank you for your rating."))
        await update.callback_query.edit_message_reply_markup(None)
    else:
        await say(update, context, t.gettext("Thank you for your rating."))


async def ignore_edit(update: Update, context: Context) -> None:
    """Edited messages are not picked up: say so once, change nothing."""
    if update.edited_message is None or update.edited_message.chat.type != "private":
        return
    await say(
        update,
        context,
        _(update, context).gettext(
            "Edits to sent messages are not picked up. Please send a new message instead."
        ),
    )


# -- wiring ------------------------------------------------------------------------------------


def filing_conversation() -> ConversationHandler[Context]:
    """The filing conversation, declared once."""
    media = PRIVATE & (ATTACHMENT | filters.LOCATION)
    text = PRIVATE & filters.TEXT & ~filters.COMMAND
    with warnings.catch_warnings():
        # PTB warns that per_message=False does not track each message's buttons; the
        # filing buttons carry their step in their data, and stale ones are caught below.
        warnings.simplefilter("ignore", PTBUserWarning)
        return ConversationHandler(
            entry_points=[
                CommandHandler("new", new_filing, filters=PRIVATE),
                MessageHandler(text, on_private_text),
                MessageHandler(media, on_private_media),
            ],
            states={
                Filing.CATEGORY: [
                    CallbackQueryHandler(choose_category, pattern=r"^f:c:"),
                    MessageHandler(text, use_buttons),
                    MessageHandler(media, media_while_choosing),
                ],
                Filing.DISTRICT: [
                    CallbackQueryHandler(choose_district, pattern=r"^f:d:"),
                    MessageHandler(text, use_buttons),
                    MessageHandler(media, media_while_choosing),
                ],
                Filing.DESCRIPTION: [
                    MessageHandler(text, take_description),
                    MessageHandler(media, media_before_description),
                ],
                Filing.ATTACHMENTS: [
                    MessageHandler(media, take_attachment),
                    CallbackQueryHandler(attachments_done, pattern=r"^f:done$"),
                    MessageHandler(text, use_buttons),
                ],
                Filing.CONTACT: [
                    CallbackQueryHandler(contact_choice, pattern=r"^f:p:(yes|no)$"),
                    MessageHandler(PRIVATE & filters.CONTACT, take_contact),
                    CommandHandler("skip", skip_contact),
                    MessageHandler(text, use_buttons),
                    MessageHandler(media, media_while_choosing),
                ],
                Filing.CONFIRM: [
                    CallbackQueryHandler(submit, pattern=r"^f:ok$"),
                    CallbackQueryHandler(edit_menu, pattern=r"^f:e$"),
                    CallbackQueryHandler(edit_part, pattern=r"^f:e:[cdtap]$"),
                    MessageHandler(text, use_buttons),
                    MessageHandler(media, media_while_choosing),
                ],
            },
            fallbacks=[
                CommandHandler("new", new_filing, filters=PRIVATE),
                CommandHandler("cancel", cancel_filing),
                CallbackQueryHandler(cancel_filing, pattern=r"^f:x$"),
                CommandHandler("start", start),
                MessageHandler(PRIVATE & UNSUPPORTED, unsupported_media),
                CallbackQueryHandler(stale_filing_button, pattern=r"^f:"),
            ],
            name="filing",
            persistent=True,
        )


def register(app: Any) -> None:
    """The citizen's handlers, in the order they are tried."""
    app.add_handler(CommandHandler("start", start, filters=PRIVATE))
    app.add_handler(CommandHandler("help", help_command, filters=PRIVATE))
    app.add_handler(CommandHandler("language", language_command, filters=PRIVATE))
    app.add_handler(CallbackQueryHandler(choose_language, pattern=r"^lang:"))
    app.add_handler(CommandHandler("my", my_cases, filters=PRIVATE))
    app.add_handler(CallbackQueryHandler(rating_button, pattern=r"^r:"))
    app.add_handler(CallbackQueryHandler(reply_button, pattern=r"^q:"))
    app.add_handler(filing_conversation())
    app.add_handler(CommandHandler("cancel", cancel_nothing, filters=PRIVATE))
    app.add_handler(MessageHandler(PRIVATE & UNSUPPORTED, unsupported_media))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, ignore_edit))
