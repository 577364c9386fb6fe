"""The Bot API methods, implemented against the simulated world.

Each ``m_<name>`` coroutine takes the request's :class:`Params` and returns the ``result``
Telegram would send, or raises :class:`sandbox.errors.ApiError` with Telegram's wording.
Checks run in the order Telegram applies them as far as it is observable: the chat first
(403s, migration), then the content, then flood limits, so refused requests cost no quota.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sandbox.errors import ApiError, bad_request, forbidden
from sandbox.limits import RateLimiter
from sandbox.media import StoredFile, image_size, make_jpeg, photo_size_ladder
from sandbox.people import SimChat, strip_reply
from sandbox.records import CallbackAnswer, EditRecord, SentMessage
from sandbox.textparse import EntityParseError, FormattedText, format_text
from sandbox.world import ALL_UPDATE_TYPES, DEFAULT_UPDATE_TYPES, World, _admin_rights

__all__ = ["METHOD_NAMES", "BotApiMethods", "Params", "Upload"]

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_MAX_DOWNLOAD = 20 * 1024 * 1024
_MAX_PHOTO = 10 * 1024 * 1024
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_SEND_KINDS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVideo": "video",
    "sendAnimation": "animation",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendSticker": "sticker",
    "sendVideoNote": "video_note",
}
_CAPTIONLESS = frozenset({"text", "location", "sticker", "contact", "video_note"})


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


class Params:
    """A request's parameters, whichever way they came (query, form, multipart, JSON).

    Form values are strings, and objects arrive JSON-encoded inside them (that is how PTB
    sends ``reply_markup``), so every getter accepts both the typed and the string form.
    """

    def __init__(self, values: dict[str, Any], files: dict[str, Upload]) -> None:
        """Wrap already-decoded values and uploaded files."""
        self.values = values
        self.files = files

    def has(self, name: str) -> bool:
        """Whether the parameter was given at all."""
        return self.values.get(name) is not None or name in self.files

    def text(self, name: str) -> str | None:
        """The parameter as a string (None if absent)."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    def integer(self, name: str) -> int | None:
        """The parameter as an integer (None if absent); junk is a 400 like Telegram's."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            try:
                number = float(str(value))
            except ValueError:
                raise bad_request(f'field "{name}" must be a valid Number') from None
            return int(number)

    def number(self, name: str) -> float | None:
        """The parameter as a float (None if absent)."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be a valid Number') from None

    def flag(self, name: str) -> bool:
        """The parameter as a boolean (absent means False)."""
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        if value is None:
            return False
        return str(value).strip().lower() in ("true", "1", "yes")

    def json(self, name: str) -> Any:
        """The parameter as a JSON value, decoding it when it came as a string."""
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None

    def public(self) -> dict[str, Any]:
        """Parameters for the request log (file parts shown by name and size)."""
        shown = dict(self.values)
        for key, upload in self.files.items():
            shown[key] = f"<file {upload.filename!r}, {len(upload.data)} bytes>"
        return shown


Handler = Callable[[Params], Awaitable[Any]]


class BotApiMethods(World):
    """Bot API method implementations on top of :class:`World`."""

    rate_limiter: RateLimiter | None

    def __init__(self, **kwargs: Any) -> None:
        """Create the world; the server adds rate limiting and HTTP."""
        super().__init__(**kwargs)
        self.rate_limiter = None
        self._webhook: dict[str, Any] | None = None
        self._poll_generation = 0
        self.logged_out = False

    def handler(self, method: str) -> Handler | None:
        """The implementation of a method name (any case), or None if unknown."""
        canonical = METHOD_NAMES.get(method.lower())
        if canonical is None:
            return None
        handler: Handler | None = getattr(self, f"m_{canonical}", None)
        return handler

    # ------------------------------------------------------------------ shared checks

    def _lookup_chat(self, p: Params, name: str = "chat_id") -> SimChat:
        raw = p.values.get(name)
        if raw is None or raw == "":
            raise bad_request(f"{name} is empty")
        chat: SimChat | None = None
        text = str(raw).strip()
        if text.startswith("@"):
            wanted = text[1:].lower()
            for candidate in self._chats.values():
                if candidate.username and candidate.username.lower() == wanted:
                    chat = candidate
                    break
        else:
            try:
                chat = self._chats.get(int(text))
            except ValueError:
                chat = None
        if chat is None:
            raise bad_request("chat not found")
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        return chat

    def _check_access(self, chat: SimChat) -> None:
        if chat.type == "private" and chat.user is not None:
            user = chat.user
            if user.deactivated:
                raise forbidden("user is deactivated")
            if user.blocked:
                raise forbidden("bot was blocked by the user")
            if not user.started:
                raise forbidden("bot can't initiate conversation with a user")
            return
        kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
        if chat.bot_status == "kicked":
            raise forbidden(f"bot was kicked from the {kind}")
        if chat.bot_status == "left":
            raise forbidden(f"bot is not a member of the {kind}")

    def _chat_for_send(self, p: Params) -> SimChat:
        chat = self._lookup_chat(p)
        self._check_access(chat)
        return chat

    def _rate(self, chat: SimChat, *, edit: bool = False) -> None:
        if self.rate_limiter is None:
            return
        wait = self.rate_limiter.acquire(chat.id, is_group=chat.is_group, is_edit=edit)
        if wait is not None:
            raise ApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})

    def _format(
        self, raw: str, parse_mode: str | None, entities: Any, *, what: str = "text"
    ) -> FormattedText:
        if entities is not None and not isinstance(entities, list):
            raise bad_request(f"can't parse {what} entities JSON object")
        try:
            return format_text(raw, parse_mode, entities or None, known_user=self._user_dict)
        except EntityParseError as err:
            raise bad_request(f"can't parse entities: {err}") from None
        except ValueError:
            raise bad_request("unsupported parse_mode") from None

    def _user_dict(self, user_id: int) -> dict[str, Any] | None:
        person = self._users.get(user_id)
        return person.to_dict() if person else None

    def _message_text(self, p: Params) -> tuple[str, FormattedText]:
        raw = p.text("text")
        if not raw:
            raise bad_request("message text is empty")
        formatted = self._format(raw, p.text("parse_mode"), p.json("entities"))
        if not formatted.text:
            raise bad_request("message text is empty")
        if formatted.utf16_length > _MAX_TEXT:
            raise bad_request("message is too long")
        return raw, formatted

    def _caption(self, p: Params, name: str = "caption") -> tuple[str | None, FormattedText | None]:
        raw = p.text(name)
        if not raw:
            return None, None
        formatted = self._format(
            raw, p.text("parse_mode"), p.json("caption_entities"), what="caption"
        )
        if formatted.utf16_length > _MAX_CAPTION:
            raise bad_request("message caption is too long")
        return raw, formatted if formatted.text else None

    def _markup(self, p: Params) -> dict[str, Any] | None:
        value = p.json("reply_markup")
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in value:
            rows = value["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            for row in rows:
                for button in row:
                    _check_inline_button(button)
            return {"inline_keyboard": copy.deepcopy(rows)}
        if "keyboard" in value:
            rows = value["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request("can't parse reply keyboard markup JSON object")
            for row in rows:
                for button in row:
                    label = button if isinstance(button, str) else (button or {}).get("text")
                    if not label:
                        raise bad_request("can't parse keyboard button: Text must be non-empty")
            return copy.deepcopy(value)
        if value.get("remove_keyboard") or value.get("force_reply"):
            return copy.deepcopy(value)
        raise bad_request("can't parse reply keyboard markup JSON object")

    def _reply(self, chat: SimChat, p: Params) -> dict[str, Any] | None:
        params = p.json("reply_parameters")
        if isinstance(params, dict):
            mid = params.get("message_id")
            allow = bool(params.get("allow_sending_without_reply"))
            source = chat
            if params.get("chat_id") not in (None, chat.id, str(chat.id)):
                source = self._lookup_chat(Params({"chat_id": params["chat_id"]}, {}))
        else:
            mid = p.integer("reply_to_message_id")
            allow = p.flag("allow_sending_without_reply")
            source = chat
        if mid is None:
            return None
        try:
            mid = int(mid)
        except (TypeError, ValueError):
            raise bad_request("message to be replied not found") from None
        raw = source.messages.get(mid)
        if raw is None or mid in source.deleted_ids:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return strip_reply(raw)

    def _bot_raw(
        self,
        chat: SimChat,
        content: dict[str, Any],
        *,
        reply: dict[str, Any] | None,
        markup: dict[str, Any] | None,
        p: Params,
    ) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "message_id": self._alloc_message_id(chat),
            "from": self.bot_user(),
            "chat": chat.to_dict(),
            "date": self._now(),
        }
        if reply is not None:
            raw["reply_to_message"] = reply
        raw.update(content)
        if markup and "inline_keyboard" in markup:
            raw["reply_markup"] = markup
        if p.flag("protect_content"):
            raw["has_protected_content"] = True
        return raw

    def _commit(
        self,
        chat: SimChat,
        raw: dict[str, Any],
        kind: str,
        *,
        method: str,
        p: Params,
        html: str | None,
        markup: dict[str, Any] | None,
        **fields: Any,
    ) -> SentMessage:
        text = raw.get("text", raw.get("caption", ""))
        entities = raw.get("entities", raw.get("caption_entities", []))
        reply = raw.get("reply_to_message")
        message = SentMessage(
            message_id=raw["message_id"],
            chat_id=chat.id,
            kind=kind,
            text=text,
            html=html,
            parse_mode=p.text("parse_mode"),
            entities=copy.deepcopy(entities),
            reply_markup=copy.deepcopy(markup),
            reply_to=reply["message_id"] if reply else None,
            disable_notification=p.flag("disable_notification"),
            protect_content=p.flag("protect_content"),
            method=method,
            raw=raw,
            **fields,
        )
        chat.messages[message.message_id] = raw
        chat.sent_by_id[message.message_id] = message
        chat.sent_log.append(message)
        message.seq = message.updated_seq = self._log(chat, "bot", message)
        self._notify()
        return message

    # ------------------------------------------------------------------ getting updates

    async def m_getMe(self, p: Params) -> Any:
        """getMe."""
        return {
            **self.bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def m_getUpdates(self, p: Params) -> Any:
        """getUpdates with offset confirmation, limit, long polling and allowed_updates."""
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = p.integer("offset")
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = max(p.number("timeout") or 0.0, 0.0)
        self._set_allowed(p.json("allowed_updates"))
        # A newer getUpdates ends an older one still waiting, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()
        self._confirm(offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._waiters.event
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self._pending[:limit]
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing:
                break
            await self._wait_change(event, remaining)
        for entry in batch:
            if entry.handed:
                self.stats.handed_again += 1  # the bot did not confirm it last time
            entry.handed = True
        if batch:
            self._touch()
        return [copy.deepcopy(entry.update) for entry in batch]

    def _set_allowed(self, allowed: Any) -> None:
        if allowed is None:
            return
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed_updates JSON array")
        wanted = {str(kind) for kind in allowed} & ALL_UPDATE_TYPES
        self._allowed_updates = frozenset(wanted) if wanted else DEFAULT_UPDATE_TYPES

    async def m_setWebhook(self, p: Params) -> Any:
        """setWebhook: stored only; updates are not pushed anywhere."""
        url = p.text("url") or ""
        if not url:
            return await self.m_deleteWebhook(p)
        if not url.lower().startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        self._set_allowed(p.json("allowed_updates"))
        if p.flag("drop_pending_updates"):
            self._pending.clear()
        self._webhook = {
            "url": url,
            "max_connections": p.integer("max_connections") or 40,
            "ip_address": p.text("ip_address"),
            "secret_token": p.text("secret_token"),
        }
        return True

    async def m_deleteWebhook(self, p: Params) -> Any:
        """deleteWebhook (drop_pending_updates clears the queue)."""
        self._webhook = None
        if p.flag("drop_pending_updates"):
            self._pending.clear()
        return True

    async def m_getWebhookInfo(self, p: Params) -> Any:
        """getWebhookInfo."""
        info: dict[str, Any] = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook is not None:
            info["url"] = self._webhook["url"]
            info["max_connections"] = self._webhook["max_connections"]
            if self._webhook["ip_address"]:
                info["ip_address"] = self._webhook["ip_address"]
            if self._allowed_updates != DEFAULT_UPDATE_TYPES:
                info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    async def m_logOut(self, p: Params) -> Any:
        """logOut: harmless here."""
        self.logged_out = True
        return True

    async def m_close(self, p: Params) -> Any:
        """close: harmless here."""
        return True

    # ------------------------------------------------------------------ sending

    async def m_sendMessage(self, p: Params) -> Any:
        """sendMessage."""
        chat = self._chat_for_send(p)
        raw_text, formatted = self._message_text(p)
        markup = self._markup(p)
        reply = self._reply(chat, p)
        preview = p.json("link_preview_options")
        if preview is None and p.flag("disable_web_page_preview"):
            preview = {"is_disabled": True}
        self._rate(chat)
        content: dict[str, Any] = {"text": formatted.text}
        if formatted.entities:
            content["entities"] = list(formatted.entities)
        if isinstance(preview, dict) and preview:
            content["link_preview_options"] = preview
        raw = self._bot_raw(chat, content, reply=reply, markup=markup, p=p)
        message = self._commit(
            chat,
            raw,
            "text",
            method="sendMessage",
            p=p,
            html=raw_text,
            markup=markup,
            link_preview_options=preview if isinstance(preview, dict) else None,
        )
        return message.to_dict()

    def _input_file(self, p: Params, name: str, kind: str) -> StoredFile:
        upload = p.files.get(name)
        value = p.text(name)
        if upload is None and value and value.startswith("attach://"):
            upload = p.files.get(value[len("attach://") :])
            if upload is None:
                raise bad_request(f"there is no {name} in the request")
        if upload is not None:
            return self._store_upload(upload, kind)
        if not value:
            raise bad_request(f"there is no {name} in the request")
        return self._file_reference(value, kind)

    def _file_reference(self, value: str, kind: str) -> StoredFile:
        stored = self.files.get(value)
        if stored is not None:
            if stored.kind != kind and not {stored.kind, kind} <= {"document", "animation"}:
                raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
            return stored
        if re.match(r"^https?://", value, re.IGNORECASE):
            # Telegram downloads URLs itself; nothing here can, so a placeholder stands in.
            name = value.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "file"
            if kind == "photo":
                return self.files.add(
                    "photo", make_jpeg(800, 600, value), width=800, height=600, url=value
                )
            return self.files.add(kind, b"", file_name=name, url=value)
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _store_upload(self, upload: Upload, kind: str) -> StoredFile:
        if not upload.data:
            raise bad_request("file must be non-empty")
        if kind == "photo":
            if len(upload.data) > _MAX_PHOTO:
                raise bad_request(
                    f"file of size {len(upload.data)} bytes is too big for a photo; "
                    f"the maximum size is {_MAX_PHOTO} bytes"
                )
            dims = image_size(upload.data)
            if dims is None or 0 in dims:
                raise bad_request("IMAGE_PROCESS_FAILED")
            return self.files.add(
                "photo", upload.data, file_name=upload.filename, width=dims[0], height=dims[1]
            )
        mime = (
            upload.content_type
            if upload.content_type not in (None, "application/octet-stream")
            else None
        )
        return self.files.add(kind, upload.data, file_name=upload.filename, mime_type=mime)

    def _photo_object(self, stored: StoredFile) -> list[dict[str, Any]]:
        existing = stored.extra.get("sizes")
        if existing:
            return copy.deepcopy(existing)
        width, height = stored.width or 800, stored.height or 600
        ladder = photo_size_ladder(width, height)
        sizes: list[dict[str, Any]] = []
        for w, h in ladder:
            if (w, h) == ladder[-1]:
                item = stored
                item.width, item.height = w, h
            else:
                item = self.files.add(
                    "photo", make_jpeg(w, h, f"thumb of {stored.file_unique_id}"), width=w, height=h
                )
            sizes.append(
                {
                    "file_id": item.file_id,
                    "file_unique_id": item.file_unique_id,
                    "file_size": item.size,
                    "width": w,
                    "height": h,
                }
            )
        for size in sizes:
            member = self.files.get(size["file_id"])
            if member is not None:
                member.extra["sizes"] = sizes
        return copy.deepcopy(sizes)

    def _media_content(self, stored: StoredFile, kind: str, p: Params | None) -> dict[str, Any]:
        if kind == "photo":
            return {"photo": self._photo_object(stored)}
        base: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        name = stored.file_name
        if p is not None and kind == "document" and not name:
            name = "document"
        if kind in ("document", "animation", "audio", "video") and name:
            base["file_name"] = name
        if kind != "sticker":
            base["mime_type"] = stored.mime_type or _default_mime(kind)
        duration = (p.integer("duration") if p is not None else None) or 0
        if kind in ("video", "animation", "video_note"):
            base.update(
                width=(p.integer("width") if p else None) or 640,
                height=(p.integer("height") if p else None) or 480,
                duration=duration,
            )
            if kind == "video_note":
                base = {k: v for k, v in base.items() if k not in ("width", "height", "mime_type")}
                base["length"] = 240
        elif kind in ("voice", "audio"):
            base["duration"] = duration
        elif kind == "sticker":
            base.update(type="regular", width=512, height=512, is_animated=False, is_video=False)
        content: dict[str, Any] = {kind: base}
        if kind == "animation":
            content["document"] = {
                k: v for k, v in base.items() if k not in ("width", "height", "duration")
            }
        return content

    async def _send_media(self, p: Params, method: str) -> Any:
        kind = _SEND_KINDS[method]
        chat = self._chat_for_send(p)
        caption_raw, caption = (None, None) if kind in _CAPTIONLESS else self._caption(p)
        markup = self._markup(p)
        reply = self._reply(chat, p)
        stored = self._input_file(p, kind, kind)
        self._rate(chat)
        content = self._media_content(stored, kind, p)
        if caption is not None:
            content["caption"] = caption.text
            if caption.entities:
                content["caption_entities"] = list(caption.entities)
        if p.flag("has_spoiler"):
            content["has_media_spoiler"] = True
        if kind == "sticker" and p.text("emoji"):
            content["sticker"]["emoji"] = p.text("emoji")
        raw = self._bot_raw(chat, content, reply=reply, markup=markup, p=p)
        fields = _file_fields(kind, stored, content)
        message = self._commit(
            chat, raw, kind, method=method, p=p, html=caption_raw, markup=markup, **fields
        )
        return message.to_dict()

    async def m_sendPhoto(self, p: Params) -> Any:
        """sendPhoto (upload, file_id or URL)."""
        return await self._send_media(p, "sendPhoto")

    async def m_sendDocument(self, p: Params) -> Any:
        """sendDocument."""
        return await self._send_media(p, "sendDocument")

    async def m_sendVideo(self, p: Params) -> Any:
        """sendVideo."""
        return await self._send_media(p, "sendVideo")

    async def m_sendAnimation(self, p: Params) -> Any:
        """sendAnimation."""
        return await self._send_media(p, "sendAnimation")

    async def m_sendVoice(self, p: Params) -> Any:
        """sendVoice."""
        return await self._send_media(p, "sendVoice")

    async def m_sendAudio(self, p: Params) -> Any:
        """sendAudio."""
        return await self._send_media(p, "sendAudio")

    async def m_sendSticker(self, p: Params) -> Any:
        """sendSticker."""
        return await self._send_media(p, "sendSticker")

    async def m_sendVideoNote(self, p: Params) -> Any:
        """sendVideoNote."""
        return await self._send_media(p, "sendVideoNote")

    async def m_sendMediaGroup(self, p: Params) -> Any:
        """sendMediaGroup: an album; a single item is sent as an ordinary message."""
        chat = self._chat_for_send(p)
        media = p.json("media")
        if media is None:
            raise bad_request('parameter "media" is required')
        if not isinstance(media, list):
            raise bad_request("can't parse media JSON object")
        if not media:
            raise bad_request("there are no messages to send")
        if len(media) > 10:
            raise bad_request("too many messages to send as an album")
        kinds = [str(item.get("type", "")) if isinstance(item, dict) else "" for item in media]
        for kind in kinds:
            if kind not in ("photo", "video", "document", "audio"):
                raise bad_request(
                    f"can't parse InputMedia: type \"{kind}\" can't be used in sendMediaGroup"
                )
        for special in ("document", "audio"):
            if special in kinds and any(k != special for k in kinds):
                raise bad_request(f"{special} can't be mixed with other media types")
        reply = self._reply(chat, p)
        items: list[tuple[str, StoredFile, str | None, FormattedText | None]] = []
        for item, kind in zip(media, kinds, strict=True):
            ref = item.get("media")
            if not isinstance(ref, str) or not ref:
                raise bad_request("can't parse InputMedia: media not found")
            sub = Params({kind: ref, "parse_mode": item.get("parse_mode")}, p.files)
            try:
                stored = self._input_file(sub, kind, kind)
            except ApiError as err:
                if "there is no" in err.description:
                    raise bad_request("can't parse InputMedia: media not found") from None
                raise
            caption_params = Params(
                {
                    "caption": item.get("caption"),
                    "parse_mode": item.get("parse_mode"),
                    "caption_entities": item.get("caption_entities"),
                },
                {},
            )
            caption_raw, caption = self._caption(caption_params)
            items.append((kind, stored, caption_raw, caption))
        self._rate(chat)
        group_id = str(self.rng.randrange(10**17, 10**18)) if len(items) > 1 else None
        results: list[dict[str, Any]] = []
        for kind, stored, caption_raw, caption in items:
            content = self._media_content(stored, kind, None)
            if group_id:
                content["media_group_id"] = group_id
            if caption is not None:
                content["caption"] = caption.text
                if caption.entities:
                    content["caption_entities"] = list(caption.entities)
            raw = self._bot_raw(chat, content, reply=reply, markup=None, p=p)
            fields = _file_fields(kind, stored, content)
            if group_id:
                fields.update(media_type=kind, media_group_id=group_id)
            message = self._commit(
                chat,
                raw,
                "media_group" if group_id else kind,
                method="sendMediaGroup",
                p=p,
                html=caption_raw,
                markup=None,
                **fields,
            )
            results.append(message.to_dict())
        return results

    async def m_sendLocation(self, p: Params) -> Any:
        """sendLocation."""
        chat = self._chat_for_send(p)
        latitude, longitude = p.number("latitude"), p.number("longitude")
        if latitude is None or not -90 <= latitude <= 90:
            raise bad_request("wrong latitude")
        if longitude is None or not -180 <= longitude <= 180:
            raise bad_request("wrong longitude")
        markup = self._markup(p)
        reply = self._reply(chat, p)
        self._rate(chat)
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        accuracy = p.number("horizontal_accuracy")
        if accuracy:
            location["horizontal_accuracy"] = accuracy
        raw = self._bot_raw(chat, {"location": location}, reply=reply, markup=markup, p=p)
        message = self._commit(
            chat,
            raw,
            "location",
            method="sendLocation",
            p=p,
            html=None,
            markup=markup,
            location=(latitude, longitude),
        )
        return message.to_dict()

    async def m_sendContact(self, p: Params) -> Any:
        """sendContact."""
        chat = self._chat_for_send(p)
        phone, first = p.text("phone_number"), p.text("first_name")
        if not phone:
            raise bad_request("phone number is empty")
        if not first:
            raise bad_request("first name is empty")
        markup = self._markup(p)
        reply = self._reply(chat, p)
        self._rate(chat)
        contact: dict[str, Any] = {"phone_number": phone, "first_name": first}
        if p.text("last_name"):
            contact["last_name"] = p.text("last_name")
        raw = self._bot_raw(chat, {"contact": contact}, reply=reply, markup=markup, p=p)
        message = self._commit(
            chat, raw, "contact", method="sendContact", p=p, html=None, markup=markup
        )
        return message.to_dict()

    async def m_sendChatAction(self, p: Params) -> Any:
        """sendChatAction."""
        chat = self._chat_for_send(p)
        if p.text("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        del chat
        return True

    def _source_message(self, p: Params, what: str) -> tuple[SimChat, dict[str, Any]]:
        source = self._lookup_chat(p, "from_chat_id")
        self._check_access(source)
        mid = p.integer("message_id")
        if mid is None:
            raise bad_request("message identifier is not specified")
        raw = source.messages.get(mid)
        if raw is None or mid in source.deleted_ids:
            raise bad_request(f"message to {what} not found")
        if raw.get("has_protected_content"):
            raise bad_request(f"message can't be {'forwarded' if what == 'forward' else 'copied'}")
        return source, raw

    async def m_forwardMessage(self, p: Params) -> Any:
        """forwardMessage."""
        chat = self._chat_for_send(p)
        source, original = self._source_message(p, "forward")
        if any(
            key in original
            for key in ("new_chat_members", "migrate_to_chat_id", "migrate_from_chat_id")
        ):
            raise bad_request("message can't be forwarded")
        self._rate(chat)
        content = _content_of(original)
        sender = original.get("from") or self.bot_user()
        origin: dict[str, Any] = {"type": "user", "sender_user": sender, "date": original["date"]}
        content["forward_origin"] = origin
        content["forward_from"] = sender
        content["forward_date"] = original["date"]
        raw = self._bot_raw(chat, content, reply=None, markup=None, p=p)
        kind, fields = self._kind_and_fields(source, original)
        message = self._commit(
            chat, raw, kind, method="forwardMessage", p=p, html=None, markup=None, **fields
        )
        return message.to_dict()

    async def m_copyMessage(self, p: Params) -> Any:
        """copyMessage: returns only the new MessageId, as Telegram does."""
        chat = self._chat_for_send(p)
        source, original = self._source_message(p, "copy")
        if any(
            key in original
            for key in ("new_chat_members", "migrate_to_chat_id", "migrate_from_chat_id")
        ):
            raise bad_request("message can't be copied")
        markup = self._markup(p)
        reply = self._reply(chat, p)
        content = _content_of(original)
        html: str | None = None
        if p.has("caption") and "text" not in content:
            caption_raw, caption = self._caption(p)
            html = caption_raw
            content.pop("caption", None)
            content.pop("caption_entities", None)
            if caption is not None:
                content["caption"] = caption.text
                if caption.entities:
                    content["caption_entities"] = list(caption.entities)
        self._rate(chat)
        raw = self._bot_raw(chat, content, reply=reply, markup=markup, p=p)
        kind, fields = self._kind_and_fields(source, original)
        message = self._commit(
            chat, raw, kind, method="copyMessage", p=p, html=html, markup=markup, **fields
        )
        return {"message_id": message.message_id}

    def _kind_and_fields(
        self, source: SimChat, original: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        sent = source.sent_by_id.get(original["message_id"])
        if sent is not None:
            fields = {
                "document_name": sent.document_name,
                "document_bytes": sent.document_bytes,
                "document_mime": sent.document_mime,
                "photo": copy.deepcopy(sent.photo),
                "photo_bytes": sent.photo_bytes,
                "location": sent.location,
            }
            kind = sent.media_type if sent.kind == "media_group" and sent.media_type else sent.kind
            return kind, fields
        for kind in (
            "photo",
            "document",
            "video",
            "voice",
            "audio",
            "animation",
            "sticker",
            "video_note",
        ):
            if kind in original:
                if kind == "photo":
                    stored = self.files.get(original["photo"][-1]["file_id"])
                    return "photo", {
                        "photo": copy.deepcopy(original["photo"]),
                        "photo_bytes": stored.data if stored else None,
                    }
                if kind == "document" and "animation" in original:
                    continue
                stored = self.files.get(original[kind]["file_id"])
                return kind, _file_fields(kind, stored, original) if stored else {}
        if "location" in original:
            loc = original["location"]
            return "location", {"location": (loc["latitude"], loc["longitude"])}
        if "contact" in original:
            return "contact", {}
        return "text", {}

    # ------------------------------------------------------------------ editing

    def _editable(self, p: Params) -> tuple[SimChat, SentMessage]:
        if p.has("inline_message_id") and not p.has("chat_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._lookup_chat(p)
        self._check_access(chat)
        mid = p.integer("message_id")
        if mid is None:
            raise bad_request("message identifier is not specified")
        message = chat.sent_by_id.get(mid)
        if message is None or message.deleted:
            if mid in chat.messages and mid not in chat.deleted_ids:
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return chat, message

    def _apply_edit(
        self,
        chat: SimChat,
        message: SentMessage,
        method: str,
        *,
        text: FormattedText | None,
        html: str | None,
        markup: dict[str, Any] | None,
        text_key: str,
        p: Params,
        keep_text: bool = False,
    ) -> dict[str, Any]:
        entities_key = "entities" if text_key == "text" else "caption_entities"
        new_text = message.text if keep_text else (text.text if text else "")
        new_entities = message.entities if keep_text else (list(text.entities) if text else [])
        current_markup = _inline_only(message.reply_markup)
        if (
            new_text == message.text
            and new_entities == message.entities
            and markup == current_markup
        ):
            raise bad_request(_NOT_MODIFIED)
        self._rate(chat, edit=True)
        message.edits.append(
            EditRecord(
                text=message.text,
                html=message.html,
                reply_markup=copy.deepcopy(message.reply_markup),
                method=method,
                at=self.clock(),
            )
        )
        raw = message.raw
        if not keep_text:
            message.text = new_text
            message.entities = copy.deepcopy(new_entities)
            message.html = html
            message.parse_mode = p.text("parse_mode")
            if new_text:
                raw[text_key] = new_text
            else:
                raw.pop(text_key, None)
            if new_entities:
                raw[entities_key] = copy.deepcopy(new_entities)
            else:
                raw.pop(entities_key, None)
        message.reply_markup = copy.deepcopy(markup)
        if markup:
            raw["reply_markup"] = copy.deepcopy(markup)
        else:
            raw.pop("reply_markup", None)
        preview = p.json("link_preview_options")
        if text_key == "text" and isinstance(preview, dict):
            message.link_preview_options = preview
        raw["edit_date"] = self._now()
        message.updated_seq = self._next_seq()
        self._notify()
        return message.to_dict()

    async def m_editMessageText(self, p: Params) -> Any:
        """editMessageText (omitting reply_markup removes the inline keyboard)."""
        chat, message = self._editable(p)
        if message.kind != "text":
            raise bad_request("there is no text in the message to edit")
        raw_text, formatted = self._message_text(p)
        markup = self._inline_markup(p)
        return self._apply_edit(
            chat,
            message,
            "editMessageText",
            text=formatted,
            html=raw_text,
            markup=markup,
            text_key="text",
            p=p,
        )

    async def m_editMessageCaption(self, p: Params) -> Any:
        """editMessageCaption (omitting caption removes it)."""
        chat, message = self._editable(p)
        if message.kind in _CAPTIONLESS:
            raise bad_request("there is no caption in the message to edit")
        caption_raw, caption = self._caption(p)
        markup = self._inline_markup(p)
        return self._apply_edit(
            chat,
            message,
            "editMessageCaption",
            text=caption,
            html=caption_raw,
            markup=markup,
            text_key="caption",
            p=p,
        )

    async def m_editMessageReplyMarkup(self, p: Params) -> Any:
        """editMessageReplyMarkup (omitting reply_markup removes the keyboard)."""
        chat, message = self._editable(p)
        markup = self._inline_markup(p)
        text_key = "text" if message.kind == "text" else "caption"
        return self._apply_edit(
            chat,
            message,
            "editMessageReplyMarkup",
            text=None,
            html=message.html,
            markup=markup,
            text_key=text_key,
            p=p,
            keep_text=True,
        )

    def _inline_markup(self, p: Params) -> dict[str, Any] | None:
        markup = self._markup(p)
        if markup is not None and "inline_keyboard" not in markup:
            raise bad_request("inline keyboard expected")
        if markup is not None and not markup["inline_keyboard"]:
            return None
        return markup

    async def m_deleteMessage(self, p: Params) -> Any:
        """deleteMessage (the bot's own messages; others' only where it may)."""
        chat = self._lookup_chat(p)
        self._check_access(chat)
        mid = p.integer("message_id")
        if mid is None:
            raise bad_request("message identifier is not specified")
        self._delete_one(chat, mid)
        return True

    def _delete_one(self, chat: SimChat, mid: int) -> None:
        raw = chat.messages.get(mid)
        if raw is None or mid in chat.deleted_ids:
            raise bad_request("message to delete not found")
        from_bot = raw.get("from", {}).get("id") == self.bot_id
        if not from_bot and chat.is_group and chat.bot_status != "administrator":
            raise bad_request("message can't be deleted")
        chat.deleted_ids.add(mid)
        message = chat.sent_by_id.get(mid)
        if message is not None:
            message.deleted = True
            message.updated_seq = self._next_seq()
        self._notify()

    async def m_deleteMessages(self, p: Params) -> Any:
        """deleteMessages: deletes what it can, silently skipping the rest."""
        chat = self._lookup_chat(p)
        self._check_access(chat)
        ids = p.json("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message identifiers are not specified")
        for mid in ids:
            try:
                self._delete_one(chat, int(mid))
            except (ApiError, TypeError, ValueError):
                continue
        return True

    async def m_setMessageReaction(self, p: Params) -> Any:
        """setMessageReaction: recorded on the message."""
        chat = self._lookup_chat(p)
        self._check_access(chat)
        mid = p.integer("message_id")
        if mid is None or mid not in chat.messages or mid in chat.deleted_ids:
            raise bad_request("message to react not found")
        reaction = p.json("reaction") or []
        chat.messages[mid]["_reaction"] = reaction
        sent = chat.sent_by_id.get(mid)
        if sent is not None:
            sent.reaction = reaction
        return True

    async def m_pinChatMessage(self, p: Params) -> Any:
        """pinChatMessage: accepted."""
        chat = self._chat_for_send(p)
        mid = p.integer("message_id")
        if mid is None or mid not in chat.messages:
            raise bad_request("message to pin not found")
        if chat.is_group and chat.bot_status != "administrator":
            raise bad_request("not enough rights to manage pinned messages in the chat")
        return True

    async def m_unpinChatMessage(self, p: Params) -> Any:
        """unpinChatMessage: accepted."""
        chat = self._chat_for_send(p)
        if chat.is_group and chat.bot_status != "administrator":
            raise bad_request("not enough rights to manage pinned messages in the chat")
        return True

    # ------------------------------------------------------------------ callbacks

    async def m_answerCallbackQuery(self, p: Params) -> Any:
        """answerCallbackQuery: resolves the waiting ``press()``."""
        query_id = p.text("callback_query_id") or ""
        pending = self._callbacks.get(query_id)
        expired = (
            pending is not None and time.monotonic() - pending.created > self.callback_query_ttl
        )
        if pending is None or pending.answered or expired:
            raise bad_request(_QUERY_TOO_OLD)
        text = p.text("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        answer = CallbackAnswer(
            query_id=query_id,
            text=text,
            show_alert=p.flag("show_alert"),
            url=p.text("url"),
            cache_time=p.integer("cache_time"),
        )
        pending.answered = True
        pending.event.answer = answer
        if not pending.future.done():
            pending.future.set_result(answer)
        self._notify()
        return True

    # ------------------------------------------------------------------ files

    async def m_getFile(self, p: Params) -> Any:
        """getFile: assigns a download path under /file/bot<token>/."""
        file_id = p.text("file_id")
        if not file_id:
            raise bad_request("file_id not specified")
        stored = self.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > _MAX_DOWNLOAD:
            raise bad_request("file is too big")
        path = self.files.assign_path(stored)
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": path,
        }

    # ------------------------------------------------------------------ commands

    def _command_scope(self, p: Params) -> tuple[str, str]:
        scope = p.json("scope")
        if scope is not None and not isinstance(scope, dict):
            raise bad_request("can't parse BotCommandScope JSON object")
        if isinstance(scope, dict):
            kind = scope.get("type")
            valid = (
                "default",
                "all_private_chats",
                "all_group_chats",
                "all_chat_administrators",
                "chat",
                "chat_administrators",
                "chat_member",
            )
            if kind not in valid:
                raise bad_request("can't parse BotCommandScope: unsupported type")
            if kind in ("chat", "chat_administrators", "chat_member"):
                chat = self._lookup_chat(Params({"chat_id": scope.get("chat_id")}, {}))
                if kind != "chat" and not chat.is_group:
                    raise bad_request("can't change commands in private chats")
                if kind == "chat_member" and not scope.get("user_id"):
                    raise bad_request("user not found")
        language = p.text("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad_request("invalid language code specified")
        return self._scope_key(scope), language

    async def m_setMyCommands(self, p: Params) -> Any:
        """setMyCommands, stored per scope and language."""
        commands = p.json("commands")
        if commands is None:
            raise bad_request('parameter "commands" is required')
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        cleaned: list[dict[str, str]] = []
        for item in commands:
            if not isinstance(item, dict) or "command" not in item or "description" not in item:
                raise bad_request("can't parse BotCommand: Can't find field \"description\"")
            name = str(item["command"])
            description = str(item["description"])
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._command_scope(p)
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    async def m_getMyCommands(self, p: Params) -> Any:
        """getMyCommands for exactly that scope and language."""
        return copy.deepcopy(self._commands.get(self._command_scope(p), []))

    async def m_deleteMyCommands(self, p: Params) -> Any:
        """deleteMyCommands."""
        self._commands.pop(self._command_scope(p), None)
        return True

    # ------------------------------------------------------------------ chats

    async def m_getChat(self, p: Params) -> Any:
        """getChat: a ChatFullInfo."""
        chat = self._lookup_chat(p)
        if chat.is_group:
            self._check_access(chat)
        info = {
            **chat.to_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        if chat.is_group:
            info["permissions"] = {
                "can_send_messages": True,
                "can_send_photos": True,
                "can_send_documents": True,
                "can_invite_users": True,
            }
        if chat.migrated_from is not None:
            info["migrated_from_chat_id"] = chat.migrated_from
        return info

    def _member(self, chat: SimChat, user_id: int) -> dict[str, Any]:
        if user_id == self.bot_id:
            return self._bot_member(chat.bot_status if chat.is_group else "member")
        person = self._users.get(user_id)
        if person is None:
            raise bad_request("user not found")
        if chat.type == "private":
            if chat.id != user_id:
                raise bad_request("user not found")
            return {"status": "member", "user": person.to_dict()}
        if not chat.member(person):
            return {"status": "left", "user": person.to_dict()}
        if chat.creator_id == user_id:
            return {"status": "creator", "user": person.to_dict(), "is_anonymous": False}
        if user_id in chat.admin_ids:
            return {
                "status": "administrator",
                "user": person.to_dict(),
                **_admin_rights(can_be_edited=False),
            }
        return {"status": "member", "user": person.to_dict()}

    async def m_getChatMember(self, p: Params) -> Any:
        """getChatMember."""
        chat = self._lookup_chat(p)
        if chat.is_group:
            self._check_access(chat)
        user_id = p.integer("user_id")
        if user_id is None:
            raise bad_request("user not found")
        return self._member(chat, user_id)

    async def m_getChatAdministrators(self, p: Params) -> Any:
        """getChatAdministrators."""
        chat = self._lookup_chat(p)
        if not chat.is_group:
            raise bad_request("there are no administrators in the private chat")
        self._check_access(chat)
        admins = [self._member(chat, uid) for uid in sorted(chat.admin_ids)]
        admins.sort(key=lambda m: m["status"] != "creator")
        if chat.bot_status == "administrator":
            admins.append(self._bot_member("administrator"))
        return admins

    async def m_getChatMemberCount(self, p: Params) -> Any:
        """getChatMemberCount (members plus the bot)."""
        chat = self._lookup_chat(p)
        self._check_access(chat)
        return len(chat.members) + 1

    async def m_leaveChat(self, p: Params) -> Any:
        """leaveChat."""
        chat = self._lookup_chat(p)
        if not chat.is_group:
            raise bad_request("chat member status can't be changed in private chats")
        self._check_access(chat)
        old = chat.bot_status
        chat.bot_status = "left"
        self._bot_membership_changed(chat, old, "left", None)
        return True


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    if not isinstance(button.get("text"), str):
        raise bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    actions = [key for key in _INLINE_ACTIONS if key in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        size = len(str(data).encode("utf-8"))
        if not isinstance(data, str) or not 1 <= size <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = str(button["url"])
        if not re.match(r"^(https?|tg|ton)://\S+$", url, re.IGNORECASE):
            raise bad_request("BUTTON_URL_INVALID")


def _inline_only(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    if markup and markup.get("inline_keyboard"):
        return markup
    return None


def _default_mime(kind: str) -> str:
    return {
        "video": "video/mp4",
        "animation": "video/mp4",
        "voice": "audio/ogg",
        "audio": "audio/mpeg",
        "video_note": "video/mp4",
    }.get(kind, "application/octet-stream")


def _file_fields(kind: str, stored: StoredFile, content: dict[str, Any]) -> dict[str, Any]:
    if kind == "photo":
        return {"photo": copy.deepcopy(content.get("photo")), "photo_bytes": stored.data}
    if kind == "document":
        document = content.get("document", {})
        return {
            "document_name": document.get("file_name"),
            "document_bytes": stored.data,
            "document_mime": document.get("mime_type"),
        }
    return {"document_bytes": stored.data, "document_name": stored.file_name}


def _content_of(original: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "text",
        "entities",
        "caption",
        "caption_entities",
        "photo",
        "document",
        "video",
        "voice",
        "audio",
        "animation",
        "sticker",
        "video_note",
        "location",
        "contact",
        "has_media_spoiler",
    )
    return {key: copy.deepcopy(original[key]) for key in keep if key in original}


METHOD_NAMES: dict[str, str] = {
    name.lower(): name
    for name in (
        "getMe",
        "getUpdates",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "logOut",
        "close",
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendAnimation",
        "sendVoice",
        "sendAudio",
        "sendSticker",
        "sendVideoNote",
        "sendMediaGroup",
        "sendLocation",
        "sendContact",
        "sendChatAction",
        "forwardMessage",
        "copyMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "deleteMessage",
        "deleteMessages",
        "setMessageReaction",
        "pinChatMessage",
        "unpinChatMessage",
        "answerCallbackQuery",
        "getFile",
        "setMyCommands",
        "getMyCommands",
        "deleteMyCommands",
        "getChat",
        "getChatMember",
        "getChatAdministrators",
        "getChatMemberCount",
        "leaveChat",
    )
}
