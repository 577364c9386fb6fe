"""Simulated people and chats: what tests use to talk to the bot."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from sandbox.records import CallbackAnswer, Incoming, SentMessage

if TYPE_CHECKING:
    from sandbox.world import World

__all__ = ["ChatLike", "SimChat", "SimUser"]


class SimUser:
    """A Telegram user who talks to the bot.

    Every action is a coroutine that queues the update Telegram would send the bot and
    returns right away (except :meth:`press`, which waits for the bot's answer).
    """

    def __init__(
        self,
        world: World,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
        is_premium: bool = False,
        started: bool = False,
    ) -> None:
        """Create the user; use ``sim.user(...)`` rather than calling this directly."""
        self._world = world
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.is_premium = is_premium
        # Whether the user ever opened a private chat with the bot; until then the bot
        # cannot write to them (403 "bot can't initiate conversation with a user").
        self.started = started
        self.blocked = False
        self.deactivated = False

    @property
    def user_id(self) -> int:
        """Alias of :attr:`id`."""
        return self.id

    @property
    def full_name(self) -> str:
        """First and last name, as clients show it."""
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    @property
    def private(self) -> SimChat:
        """This user's private chat with the bot."""
        return self._world._private_chat(self)

    def to_dict(self) -> dict[str, Any]:
        """The User object Telegram puts in ``from``."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        if self.is_premium:
            data["is_premium"] = True
        return data

    def __repr__(self) -> str:
        """Short form for assertion messages."""
        return f"<SimUser {self.full_name} id={self.id}>"

    async def send(
        self, text: str, chat: ChatLike | None = None, *, reply_to: Any = None
    ) -> Incoming:
        """Send a text message (commands get bot_command entities, as in Telegram)."""
        return await self._world._user_text(self, text, chat, reply_to=reply_to)

    async def reply(self, to: Any, text: str, chat: ChatLike | None = None) -> Incoming:
        """Reply to a message (a bot's SentMessage, an Incoming, or a message id with ``chat``)."""
        return await self._world._user_text(self, text, chat, reply_to=to)

    async def edit(self, message: Incoming, text: str) -> Incoming:
        """Edit one of this user's text messages; the bot gets an ``edited_message``."""
        return await self._world._user_edit(self, message, text)

    async def send_photo(
        self,
        caption: str | None = None,
        chat: ChatLike | None = None,
        *,
        width: int = 1280,
        height: int = 960,
        reply_to: Any = None,
    ) -> Incoming:
        """Send a photo (a real JPEG, in Telegram's ladder of sizes, each downloadable)."""
        return await self._world._user_photo(
            self, caption, chat, width=width, height=height, reply_to=reply_to
        )

    async def send_document(
        self,
        name: str = "document.pdf",
        data: bytes = b"%PDF-1.4\n% sandbox\n%%EOF\n",
        mime: str | None = None,
        *,
        caption: str | None = None,
        chat: ChatLike | None = None,
        reply_to: Any = None,
    ) -> Incoming:
        """Send a file as a document."""
        return await self._world._user_document(
            self, name, data, mime, caption=caption, chat=chat, reply_to=reply_to
        )

    async def send_location(
        self, latitude: float, longitude: float, chat: ChatLike | None = None
    ) -> Incoming:
        """Share a location."""
        content = {"location": {"latitude": float(latitude), "longitude": float(longitude)}}
        return await self._world._user_message(self, chat, content)

    async def send_contact(
        self,
        phone: str = "+8613800000000",
        chat: ChatLike | None = None,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        own: bool = True,
    ) -> Incoming:
        """Share a contact; by default the user's own (``user_id`` set, as the button does)."""
        contact: dict[str, Any] = {
            "phone_number": phone,
            "first_name": first_name or self.first_name,
        }
        if last_name or (own and self.last_name):
            contact["last_name"] = last_name or self.last_name
        if own:
            contact["user_id"] = self.id
        return await self._world._user_message(self, chat, {"contact": contact})

    async def send_sticker(self, emoji: str = "👍", chat: ChatLike | None = None) -> Incoming:
        """Send a sticker."""
        return await self._world._user_media(self, "sticker", chat, emoji=emoji)

    async def send_video(
        self, caption: str | None = None, chat: ChatLike | None = None, *, duration: int = 5
    ) -> Incoming:
        """Send a video."""
        return await self._world._user_media(
            self, "video", chat, caption=caption, duration=duration
        )

    async def send_voice(self, chat: ChatLike | None = None, *, duration: int = 3) -> Incoming:
        """Send a voice note."""
        return await self._world._user_media(self, "voice", chat, duration=duration)

    async def send_animation(
        self, caption: str | None = None, chat: ChatLike | None = None
    ) -> Incoming:
        """Send a GIF (an MPEG-4 animation, with the legacy ``document`` field too)."""
        return await self._world._user_media(self, "animation", chat, caption=caption)

    async def send_media_group(
        self,
        items: int | list[str] = 2,
        caption: str | None = None,
        chat: ChatLike | None = None,
    ) -> list[Incoming]:
        """Send an album: ``items`` photos, or a list of kinds ("photo", "video", "document")."""
        return await self._world._user_album(self, items, caption, chat)

    async def press(
        self,
        label: str,
        chat: ChatLike | None = None,
        *,
        message: SentMessage | int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented test API
    ) -> CallbackAnswer:
        """Press the inline button labelled ``label`` and wait for answerCallbackQuery.

        Without ``message``, the most recent bot message in ``chat`` (default: private chat)
        that has such a button is used. Raises :class:`sandbox.NoCallbackAnswer` if the bot
        does not answer within ``timeout`` seconds.
        """
        return await self._world._press_label(self, label, chat, message, timeout)

    async def press_data(
        self,
        message: SentMessage | int,
        data: bytes | str,
        chat: ChatLike | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented test API
    ) -> CallbackAnswer:
        """Send a callback query with arbitrary ``data`` on a bot message (forged buttons)."""
        return await self._world._press_data(self, message, data, chat, timeout)


class SimChat:
    """A chat the bot is in: a private chat, a basic group or a supergroup."""

    def __init__(
        self,
        world: World,
        chat_id: int,
        chat_type: str,
        *,
        title: str | None = None,
        user: SimUser | None = None,
        username: str | None = None,
        chat_instance: str = "",
    ) -> None:
        """Create the chat; use ``sim.group``/``sim.supergroup``/``user.private``."""
        self._world = world
        self.id = chat_id
        self.type = chat_type
        self.title = title
        self.user = user
        self.username = username
        self.chat_instance = chat_instance
        self.members: list[SimUser] = []
        self.admin_ids: set[int] = set()
        self.creator_id: int | None = None
        # member / administrator / left / kicked: the bot's own standing in the chat.
        self.bot_status = "member"
        self.migrated_to: int | None = None
        self.migrated_from: int | None = None
        self.messages: dict[int, dict[str, Any]] = {}
        self.sent_by_id: dict[int, SentMessage] = {}
        self.sent_log: list[SentMessage] = []
        self.deleted_ids: set[int] = set()
        self.events: list[tuple[int, str, Any]] = []
        self.last_incoming_seq = 0
        self.message_counter = 0

    @property
    def is_group(self) -> bool:
        """Whether this is a group or supergroup."""
        return self.type in ("group", "supergroup")

    @property
    def name(self) -> str:
        """Title of a group, or the user's name for a private chat."""
        if self.title:
            return self.title
        return self.user.full_name if self.user else str(self.id)

    def to_dict(self) -> dict[str, Any]:
        """The Chat object Telegram puts in messages."""
        if self.type == "private" and self.user is not None:
            data: dict[str, Any] = {
                "id": self.id,
                "type": "private",
                "first_name": self.user.first_name,
            }
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
            return data
        data = {"id": self.id, "type": self.type, "title": self.title or ""}
        if self.username:
            data["username"] = self.username
        return data

    def add(self, *users: SimUser, announce: bool = False) -> None:
        """Add members; with ``announce`` the bot gets the new_chat_members service message."""
        self._world._add_members(self, list(users), announce=announce)

    def member(self, user: SimUser) -> bool:
        """Whether ``user`` is a member."""
        return any(m.id == user.id for m in self.members)

    def __repr__(self) -> str:
        """Short form for assertion messages."""
        return f"<SimChat {self.type} {self.name!r} id={self.id}>"


ChatLike = SimChat | SimUser | int


def strip_reply(raw: dict[str, Any]) -> dict[str, Any]:
    """A message as it appears inside ``reply_to_message`` (no nested reply)."""
    inner = copy.deepcopy(raw)
    inner.pop("reply_to_message", None)
    return inner
