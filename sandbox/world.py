"""The simulated Telegram world: people, chats, messages, the update queue and transcripts.

The HTTP side (``sandbox.server``) and the Bot API methods (``sandbox.api``) build on this;
tests reach all of it through :class:`sandbox.BotApiSimulator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import NoCallbackAnswer, SimulatorError, WaitTimeout
from sandbox.media import FileStore, fake_bytes, make_jpeg, photo_size_ladder
from sandbox.people import ChatLike, SimChat, SimUser, strip_reply
from sandbox.records import CallbackAnswer, Incoming, RequestRecord, SentMessage, Stats
from sandbox.textparse import detect_entities

__all__ = ["ALL_UPDATE_TYPES", "DEFAULT_UPDATE_TYPES", "World"]

ALL_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
# Telegram leaves these out unless the bot asks for them by name in allowed_updates.
DEFAULT_UPDATE_TYPES = ALL_UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_SERVICE_KEYS = (
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "group_chat_created",
    "supergroup_chat_created",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
)


@dataclass
class _Pending:
    update: dict[str, Any]
    handed: bool = False
    redelivery: bool = False


@dataclass
class _PressEvent:
    user: SimUser
    label: str
    message_id: int
    answer: CallbackAnswer | None = None


@dataclass
class _PendingCallback:
    future: asyncio.Future[CallbackAnswer]
    created: float
    event: _PressEvent
    answered: bool = False


@dataclass
class _SystemEvent:
    text: str


@dataclass
class _EditEvent:
    user: SimUser
    text: str


@dataclass
class _Waiters:
    event: asyncio.Event = field(default_factory=asyncio.Event)


class World:
    """State shared by the Bot API and the test helpers."""

    def __init__(
        self,
        *,
        seed: int = 0,
        bot_username: str = "wenzheng_bot",
        bot_name: str = "问政",
        bot_id: int | None = None,
        privacy_mode: bool = True,
        clock: Callable[[], float] = time.time,
        callback_query_ttl: float = 15.0,
    ) -> None:
        """Create an empty world; see :class:`sandbox.BotApiSimulator` for the options."""
        self.rng = random.Random(seed)
        self.clock = clock
        self.bot_id = bot_id or self.rng.randrange(7_000_000_000, 7_999_999_999)
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.token = f"{self.bot_id}:AA" + "".join(
            self.rng.choice(_TOKEN_ALPHABET) for _ in range(33)
        )
        self.privacy_mode = privacy_mode
        self.callback_query_ttl = callback_query_ttl
        self.files = FileStore(self.rng)
        self.stats = Stats()
        self.requests: list[RequestRecord] = []
        self._users: dict[int, SimUser] = {}
        self._chats: dict[int, SimChat] = {}
        self._next_user_id = self.rng.randrange(5_000_000_000, 6_000_000_000)
        self._next_group_id = self.rng.randrange(4_000_000_000, 4_900_000_000)
        self._next_supergroup_id = self.rng.randrange(1_002_000_000_000, 1_003_000_000_000)
        self._message_counter = 0
        self._pending: list[_Pending] = []
        self._updates_by_id: dict[int, dict[str, Any]] = {}
        self._next_update_id = self.rng.randrange(100_000_000, 900_000_000)
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._seq = 0
        self._waiters = _Waiters()
        self._callbacks: dict[str, _PendingCallback] = {}
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._inflight = 0
        self._last_activity = time.monotonic()
        self._closing = False

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> int:
        return int(self.clock())

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    def _notify(self) -> None:
        # Wake everyone waiting for "something changed" and start a fresh generation.
        self._waiters.event.set()
        self._waiters = _Waiters()

    async def _wait_change(self, event: asyncio.Event, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    def bot_user(self) -> dict[str, Any]:
        """The bot's User object as it appears in ``from`` of its messages."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }

    def _log(self, chat: SimChat, kind: str, obj: Any) -> int:
        seq = self._next_seq()
        chat.events.append((seq, kind, obj))
        return seq

    def _alloc_message_id(self, chat: SimChat) -> int:
        # Private chats and basic groups share one counter per bot (Telegram's per-account
        # message box); supergroups and channels number their messages themselves.
        if chat.type in ("supergroup", "channel"):
            chat.message_counter += 1
            return chat.message_counter
        self._message_counter += 1
        return self._message_counter

    # ------------------------------------------------------------------ people and chats

    def user(
        self,
        first_name: str,
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "zh-hans",
        user_id: int | None = None,
        started: bool = False,
        is_premium: bool = False,
    ) -> SimUser:
        """Create a person. ``started=True`` means they already opened a chat with the bot."""
        if user_id is None:
            self._next_user_id += self.rng.randint(1, 9999)
            user_id = self._next_user_id
        if user_id in self._users:
            raise SimulatorError(f"user id {user_id} already exists")
        person = SimUser(
            self,
            user_id,
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            is_premium=is_premium,
            started=started,
        )
        self._users[user_id] = person
        # The private chat exists from the start, so the bot gets the 403 Telegram gives for
        # a person it knows but who never started it, rather than "chat not found".
        self._private_chat(person)
        return person

    def users(self) -> list[SimUser]:
        """Every person created so far."""
        return list(self._users.values())

    def _chat_instance(self) -> str:
        return str(self.rng.randrange(-(2**63), 2**63))

    def _private_chat(self, user: SimUser) -> SimChat:
        chat = self._chats.get(user.id)
        if chat is None:
            chat = SimChat(self, user.id, "private", user=user, chat_instance=self._chat_instance())
            chat.members = [user]
            self._chats[user.id] = chat
        return chat

    def group(
        self,
        title: str,
        members: Iterable[SimUser] = (),
        *,
        bot_admin: bool = False,
        announce: bool = False,
    ) -> SimChat:
        """Create a basic group (negative id) with the bot in it; the first member created it."""
        self._next_group_id += self.rng.randint(1, 99999)
        return self._make_group(-self._next_group_id, "group", title, members, bot_admin, announce)

    def supergroup(
        self,
        title: str,
        members: Iterable[SimUser] = (),
        *,
        username: str | None = None,
        bot_admin: bool = False,
        announce: bool = False,
    ) -> SimChat:
        """Create a supergroup (id -100…) with the bot in it."""
        self._next_supergroup_id += self.rng.randint(1, 99999)
        chat = self._make_group(
            -self._next_supergroup_id, "supergroup", title, members, bot_admin, announce
        )
        chat.username = username
        return chat

    def _make_group(
        self,
        chat_id: int,
        chat_type: str,
        title: str,
        members: Iterable[SimUser],
        bot_admin: bool,
        announce: bool,
    ) -> SimChat:
        chat = SimChat(self, chat_id, chat_type, title=title, chat_instance=self._chat_instance())
        chat.members = list(members)
        if chat.members:
            chat.creator_id = chat.members[0].id
            chat.admin_ids.add(chat.members[0].id)
        chat.bot_status = "administrator" if bot_admin else "member"
        self._chats[chat_id] = chat
        if announce:
            actor = chat.members[0] if chat.members else None
            self._bot_membership_changed(chat, "left", chat.bot_status, actor)
            if actor is not None:
                self._service_message(chat, actor, {"new_chat_members": [self.bot_user()]})
        return chat

    def _add_members(self, chat: SimChat, users: list[SimUser], *, announce: bool) -> None:
        fresh = [u for u in users if not chat.member(u)]
        chat.members.extend(fresh)
        if announce and fresh:
            self._service_message(
                chat, fresh[0], {"new_chat_members": [u.to_dict() for u in fresh]}
            )

    def chat(self, chat: ChatLike) -> SimChat:
        """Resolve a SimChat, a SimUser (their private chat) or a chat id."""
        if isinstance(chat, SimChat):
            return chat
        if isinstance(chat, SimUser):
            return chat.private
        found = self._chats.get(int(chat))
        if found is None:
            raise SimulatorError(f"no chat with id {chat}")
        return found

    def chats(self) -> list[SimChat]:
        """Every chat known to the simulator."""
        return list(self._chats.values())

    async def migrate_group(self, group: ChatLike, by: SimUser | None = None) -> SimChat:
        """Upgrade a basic group to a supergroup, as Telegram does.

        The old id then answers 400 "group chat was upgraded to a supergroup chat" with
        ``migrate_to_chat_id``; the bot gets the two service messages (``migrate_to_chat_id``
        in the old group, ``migrate_from_chat_id`` in the new one). Returns the supergroup.
        """
        old = self.chat(group)
        if old.type != "group":
            raise SimulatorError(f"{old!r} is not a basic group")
        if old.migrated_to is not None:
            raise SimulatorError(f"{old!r} was already migrated")
        actor = by or self._creator(old)
        self._next_supergroup_id += self.rng.randint(1, 99999)
        new = SimChat(
            self,
            -self._next_supergroup_id,
            "supergroup",
            title=old.title,
            chat_instance=old.chat_instance,
        )
        new.members = list(old.members)
        new.admin_ids = set(old.admin_ids)
        new.creator_id = old.creator_id
        new.bot_status = old.bot_status
        new.migrated_from = old.id
        self._chats[new.id] = new
        self._service_message(old, actor, {"migrate_to_chat_id": new.id})
        old.migrated_to = new.id
        self._service_message(new, actor, {"migrate_from_chat_id": old.id})
        self._log(old, "system", _SystemEvent(f"upgraded to supergroup {new.id}"))
        await asyncio.sleep(0)
        return new

    def _creator(self, chat: SimChat) -> SimUser:
        if chat.creator_id is not None and chat.creator_id in self._users:
            return self._users[chat.creator_id]
        if chat.members:
            return chat.members[0]
        raise SimulatorError(f"{chat!r} has no members to act in it")

    def block(self, user: SimUser) -> None:
        """The user blocks the bot: sends then fail with 403 and a my_chat_member update."""
        if user.blocked:
            return
        user.blocked = True
        chat = user.private
        self._bot_membership_changed(chat, "member", "kicked", user)
        self._log(chat, "system", _SystemEvent(f"{user.full_name} blocked the bot"))

    def unblock(self, user: SimUser) -> None:
        """The user unblocks (restarts) the bot."""
        if not user.blocked:
            return
        user.blocked = False
        user.started = True
        chat = user.private
        self._bot_membership_changed(chat, "kicked", "member", user)
        self._log(chat, "system", _SystemEvent(f"{user.full_name} unblocked the bot"))

    def kick_bot(self, chat: ChatLike, by: SimUser | None = None) -> None:
        """Remove the bot from a group; sends then fail with 403 'bot was kicked …'."""
        target = self.chat(chat)
        if not target.is_group:
            raise SimulatorError("only groups can remove the bot; use sim.block(user)")
        actor = by or self._creator(target)
        old = target.bot_status
        # A basic group shows the bot as having left; a supergroup keeps it banned.
        new = "kicked" if target.type == "supergroup" else "left"
        target.bot_status = "kicked"
        self._bot_membership_changed(target, old, new, actor)
        self._log(target, "system", _SystemEvent(f"{actor.full_name} removed the bot"))

    def add_bot(self, chat: ChatLike, by: SimUser | None = None, *, admin: bool = False) -> None:
        """Add the bot (back) to a group."""
        target = self.chat(chat)
        actor = by or self._creator(target)
        old = (
            "left"
            if target.bot_status == "kicked" and target.type == "group"
            else target.bot_status
        )
        target.bot_status = "administrator" if admin else "member"
        self._bot_membership_changed(target, old, target.bot_status, actor)
        self._service_message(target, actor, {"new_chat_members": [self.bot_user()]})

    def _bot_member(self, status: str) -> dict[str, Any]:
        member: dict[str, Any] = {"status": status, "user": self.bot_user()}
        if status == "kicked":
            member["until_date"] = 0
        elif status == "administrator":
            member.update(_admin_rights(can_be_edited=False))
        return member

    def _bot_membership_changed(
        self, chat: SimChat, old: str, new: str, actor: SimUser | None
    ) -> None:
        payload = {
            "chat": chat.to_dict(),
            "from": (actor or chat.user or self._creator(chat)).to_dict(),
            "date": self._now(),
            "old_chat_member": self._bot_member(old),
            "new_chat_member": self._bot_member(new),
        }
        self._emit("my_chat_member", payload)

    def _service_message(self, chat: SimChat, actor: SimUser, content: dict[str, Any]) -> Incoming:
        mid = self._alloc_message_id(chat)
        raw = {
            "message_id": mid,
            "from": actor.to_dict(),
            "chat": chat.to_dict(),
            "date": self._now(),
            **content,
        }
        chat.messages[mid] = raw
        deliver = chat.bot_status in ("member", "administrator") or "new_chat_members" in content
        update = self._emit("message", raw) if deliver else None
        incoming = Incoming(raw, update, actor.id)
        incoming.seq = self._log(chat, "user", incoming)
        return incoming

    # ------------------------------------------------------------------ updates queue

    def _emit(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if kind not in self._allowed_updates:
            return None
        update = {"update_id": self._next_update_id, kind: copy.deepcopy(payload)}
        self._next_update_id += 1
        self._pending.append(_Pending(update))
        self._updates_by_id[update["update_id"]] = update
        self._touch()
        self._notify()
        return update

    def inject(self, update: dict[str, Any]) -> dict[str, Any] | None:
        """Queue any raw update (channel posts, unknown chats, odd payloads…).

        An ``update_id`` is assigned unless given. Returns the queued update, or None if the
        bot's allowed_updates exclude its type (Telegram would not deliver it either).
        """
        update = copy.deepcopy(update)
        kinds = [k for k in update if k != "update_id"]
        if kinds and kinds[0] not in self._allowed_updates:
            return None
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
            self._next_update_id += 1
        else:
            self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        self._pending.append(_Pending(update))
        self._updates_by_id[int(update["update_id"])] = update
        self._touch()
        self._notify()
        return update

    async def redeliver(self, update: dict[str, Any] | Incoming | int) -> dict[str, Any]:
        """Deliver an update again with the same update_id, as after a lost confirmation."""
        if isinstance(update, Incoming):
            if update.update is None:
                raise SimulatorError("that message was never delivered to the bot")
            update = update.update
        if isinstance(update, int):
            found = self._updates_by_id.get(update)
            if found is None:
                raise SimulatorError(f"no update with id {update}")
            update = found
        self._pending.append(_Pending(copy.deepcopy(update), redelivery=True))
        self._touch()
        self._notify()
        await asyncio.sleep(0)
        return update

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by the bot."""
        return [copy.deepcopy(p.update) for p in self._pending]

    def _confirm(self, offset: int | None) -> None:
        if not offset:
            return
        if offset < 0:
            self._pending = self._pending[offset:]
            return
        self._pending = [
            p
            for p in self._pending
            if p.update["update_id"] >= offset or (p.redelivery and not p.handed)
        ]

    # ------------------------------------------------------------------ people's actions

    def _resolve_target_chat(self, user: SimUser, chat: ChatLike | None) -> SimChat:
        target = user.private if chat is None else self.chat(chat)
        if target.type == "private" and target.user is not user:
            raise SimulatorError(f"{user!r} cannot write in {target!r}")
        if target.is_group and not target.member(user):
            raise SimulatorError(f"{user!r} is not a member of {target!r}; use chat.add(user)")
        if target.migrated_to is not None:
            raise SimulatorError(f"{target!r} was upgraded to supergroup {target.migrated_to}")
        return target

    def _find_reply_target(
        self, reply_to: Any, chat: ChatLike | None, user: SimUser
    ) -> tuple[SimChat | None, dict[str, Any] | None]:
        if reply_to is None:
            return (None, None)
        if isinstance(reply_to, SentMessage):
            target = self.chat(reply_to.chat_id)
            return target, target.messages.get(reply_to.message_id)
        if isinstance(reply_to, Incoming):
            target = self.chat(reply_to.chat_id)
            return target, target.messages.get(reply_to.message_id)
        target = user.private if chat is None else self.chat(chat)
        raw = target.messages.get(int(reply_to))
        if raw is None:
            raise SimulatorError(f"no message {reply_to} in {target!r}")
        return target, raw

    async def _user_message(
        self,
        user: SimUser,
        chat: ChatLike | None,
        content: dict[str, Any],
        *,
        reply_to: Any = None,
    ) -> Incoming:
        reply_chat, reply_raw = self._find_reply_target(reply_to, chat, user)
        if chat is None and reply_chat is not None:
            chat = reply_chat
        target = self._resolve_target_chat(user, chat)
        if target.type == "private":
            if user.blocked:
                # Writing to a blocked bot first needs "Restart", which unblocks it.
                self.unblock(user)
            user.started = True
        mid = self._alloc_message_id(target)
        raw: dict[str, Any] = {
            "message_id": mid,
            "from": user.to_dict(),
            "chat": target.to_dict(),
            "date": self._now(),
        }
        if reply_raw is not None:
            raw["reply_to_message"] = strip_reply(reply_raw)
        raw.update(content)
        target.messages[mid] = raw
        update = self._emit("message", raw) if self._delivers(target, raw) else None
        incoming = Incoming(raw, update, user.id)
        incoming.seq = self._log(target, "user", incoming)
        target.last_incoming_seq = incoming.seq
        await asyncio.sleep(0)
        return incoming

    def _delivers(self, chat: SimChat, raw: dict[str, Any]) -> bool:
        """Whether Telegram would send this message to the bot (privacy mode, membership)."""
        if chat.type == "private":
            return True
        if chat.bot_status not in ("member", "administrator"):
            return False
        if not self.privacy_mode or chat.bot_status == "administrator":
            return True
        if any(key in raw for key in _SERVICE_KEYS):
            return True
        reply = raw.get("reply_to_message")
        if reply and reply.get("from", {}).get("id") == self.bot_id:
            return True
        text = raw.get("text") or raw.get("caption") or ""
        entities = raw.get("entities") or raw.get("caption_entities") or []
        bot_mention = "@" + self.bot_username.lower()
        for entity in entities:
            piece = _utf16_piece(text, entity["offset"], entity["length"]).lower()
            if entity["type"] == "mention" and piece == bot_mention:
                return True
            # Only a message that starts with a command counts, and only if the command is
            # not addressed to another bot ("/start@other_bot").
            addressed = "@" not in piece or piece.endswith(bot_mention)
            if entity["type"] == "bot_command" and entity["offset"] == 0 and addressed:
                return True
        return False

    async def _user_text(
        self, user: SimUser, text: str, chat: ChatLike | None, *, reply_to: Any = None
    ) -> Incoming:
        if not text.strip():
            raise SimulatorError("Telegram clients cannot send an empty message")
        content: dict[str, Any] = {"text": text}
        entities = detect_entities(text)
        if entities:
            content["entities"] = entities
        return await self._user_message(user, chat, content, reply_to=reply_to)

    async def _user_edit(self, user: SimUser, message: Incoming, text: str) -> Incoming:
        chat = self.chat(message.chat_id)
        raw = chat.messages.get(message.message_id)
        if raw is None or raw.get("from", {}).get("id") != user.id:
            raise SimulatorError(f"{user!r} can only edit their own messages")
        if "text" not in raw:
            raise SimulatorError("only text messages can be edited this way")
        raw["text"] = text
        entities = detect_entities(text)
        if entities:
            raw["entities"] = entities
        else:
            raw.pop("entities", None)
        raw["edit_date"] = self._now()
        update = self._emit("edited_message", raw) if self._delivers(chat, raw) else None
        self._log(chat, "edit", _EditEvent(user, text))
        incoming = Incoming(raw, update, user.id)
        chat.last_incoming_seq = self._seq
        await asyncio.sleep(0)
        return incoming

    def _user_caption(self, caption: str | None) -> dict[str, Any]:
        if not caption:
            return {}
        content: dict[str, Any] = {"caption": caption}
        entities = detect_entities(caption)
        if entities:
            content["caption_entities"] = entities
        return content

    def _photo_sizes(self, width: int, height: int, label: str) -> list[dict[str, Any]]:
        sizes: list[dict[str, Any]] = []
        for w, h in photo_size_ladder(width, height):
            stored = self.files.add("photo", make_jpeg(w, h, label), width=w, height=h)
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.size,
                    "width": w,
                    "height": h,
                }
            )
        for size in sizes:
            stored_size = self.files.get(size["file_id"])
            if stored_size is not None:
                stored_size.extra["sizes"] = sizes
        return sizes

    async def _user_photo(
        self,
        user: SimUser,
        caption: str | None,
        chat: ChatLike | None,
        *,
        width: int,
        height: int,
        reply_to: Any,
    ) -> Incoming:
        label = f"photo from {user.full_name} #{self._seq + 1}"
        content = {"photo": self._photo_sizes(width, height, label), **self._user_caption(caption)}
        return await self._user_message(user, chat, content, reply_to=reply_to)

    async def _user_document(
        self,
        user: SimUser,
        name: str,
        data: bytes,
        mime: str | None,
        *,
        caption: str | None,
        chat: ChatLike | None,
        reply_to: Any,
    ) -> Incoming:
        stored = self.files.add("document", data, file_name=name, mime_type=mime)
        document = {
            "file_name": name,
            "mime_type": stored.mime_type or "application/octet-stream",
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        content = {"document": document, **self._user_caption(caption)}
        return await self._user_message(user, chat, content, reply_to=reply_to)

    def _media_object(self, kind: str, label: str, **options: Any) -> dict[str, Any]:
        if kind == "photo":
            return {"photo": self._photo_sizes(1280, 960, label)}
        stored = self.files.add(kind, fake_bytes(kind, label))
        base = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        duration = int(options.get("duration", 3))
        if kind == "sticker":
            return {
                "sticker": {
                    **base,
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                    "emoji": options.get("emoji", "👍"),
                }
            }
        if kind == "video":
            stored.mime_type = "video/mp4"
            return {
                "video": {
                    **base,
                    "width": 1280,
                    "height": 720,
                    "duration": duration,
                    "mime_type": "video/mp4",
                }
            }
        if kind == "voice":
            stored.mime_type = "audio/ogg"
            return {"voice": {**base, "duration": duration, "mime_type": "audio/ogg"}}
        if kind == "animation":
            stored.mime_type = "video/mp4"
            stored.file_name = "animation.gif.mp4"
            animation = {
                **base,
                "width": 320,
                "height": 240,
                "duration": duration,
                "file_name": "animation.gif.mp4",
                "mime_type": "video/mp4",
            }
            document = {
                k: v for k, v in animation.items() if k not in ("width", "height", "duration")
            }
            return {"animation": animation, "document": document}
        if kind == "document":
            stored.file_name = f"{label}.bin"
            return {"document": {**base, "file_name": stored.file_name}}
        raise SimulatorError(f"unknown media kind {kind!r}")

    async def _user_media(
        self, user: SimUser, kind: str, chat: ChatLike | None, **options: Any
    ) -> Incoming:
        caption = options.pop("caption", None)
        label = f"{kind} from {user.full_name} #{self._seq + 1}"
        content = {**self._media_object(kind, label, **options), **self._user_caption(caption)}
        return await self._user_message(user, chat, content)

    async def _user_album(
        self, user: SimUser, items: int | list[str], caption: str | None, chat: ChatLike | None
    ) -> list[Incoming]:
        kinds = ["photo"] * items if isinstance(items, int) else list(items)
        if not 2 <= len(kinds) <= 10:
            raise SimulatorError("an album holds 2 to 10 items")
        group_id = str(self.rng.randrange(10**17, 10**18))
        sent: list[Incoming] = []
        for index, kind in enumerate(kinds):
            label = f"album item {index + 1} from {user.full_name}"
            content = {"media_group_id": group_id, **self._media_object(kind, label)}
            if index == 0:
                content.update(self._user_caption(caption))
            sent.append(await self._user_message(user, chat, content))
        return sent

    # ------------------------------------------------------------------ buttons

    def _find_bot_message(self, chat: SimChat, message: SentMessage | int) -> SentMessage:
        mid = message.message_id if isinstance(message, SentMessage) else int(message)
        found = chat.sent_by_id.get(mid)
        if found is None:
            raise SimulatorError(f"the bot sent no message #{mid} in {chat!r}")
        if found.deleted:
            raise SimulatorError(f"message #{mid} in {chat!r} was deleted")
        return found

    async def _press_label(
        self,
        user: SimUser,
        label: str,
        chat: ChatLike | None,
        message: SentMessage | int | None,
        wait_seconds: float,
    ) -> CallbackAnswer:
        if chat is None and isinstance(message, SentMessage):
            chat = message.chat_id
        target = self._resolve_target_chat(user, chat)
        if message is not None:
            sent = self._find_bot_message(target, message)
            if sent.button(label) is None:
                raise SimulatorError(f"no button {label!r} on {sent!r}")
        else:
            candidates = [m for m in reversed(target.sent_log) if not m.deleted and m.button(label)]
            if not candidates:
                seen = [m.button_labels for m in target.sent_log[-5:] if m.is_inline_keyboard]
                raise SimulatorError(
                    f"no bot message in {target!r} has a button {label!r}; recent buttons: {seen}"
                )
            sent = candidates[0]
        button = sent.button(label) or {}
        if "callback_data" not in button:
            raise SimulatorError(f"button {label!r} is not a callback button: {button}")
        return await self._callback(
            user, target, sent, str(button["callback_data"]), label, wait_seconds
        )

    async def _press_data(
        self,
        user: SimUser,
        message: SentMessage | int,
        data: bytes | str,
        chat: ChatLike | None,
        wait_seconds: float,
    ) -> CallbackAnswer:
        if chat is None and isinstance(message, SentMessage):
            chat = message.chat_id
        target = self._resolve_target_chat(user, chat)
        sent = self._find_bot_message(target, message)
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        return await self._callback(user, target, sent, text, f"data={text!r}", wait_seconds)

    async def _callback(
        self,
        user: SimUser,
        chat: SimChat,
        sent: SentMessage,
        data: str,
        label: str,
        wait_seconds: float,
    ) -> CallbackAnswer:
        query_id = str(self.rng.randrange(10**18, 2**63))
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "message": sent.to_dict(),
            "chat_instance": chat.chat_instance,
            "data": data,
        }
        event = _PressEvent(user, label, sent.message_id)
        future: asyncio.Future[CallbackAnswer] = asyncio.get_running_loop().create_future()
        self._callbacks[query_id] = _PendingCallback(future, time.monotonic(), event)
        self._log(chat, "press", event)
        chat.last_incoming_seq = self._seq
        update = self._emit("callback_query", query)
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), wait_seconds)
        except TimeoutError:
            raise NoCallbackAnswer(
                f"{user.full_name} pressed {label} on message #{sent.message_id} in "
                f"{chat.name}; the bot did not call answerCallbackQuery within {wait_seconds}s"
            ) from None
        answer.update = update
        return answer

    # ------------------------------------------------------------------ what the bot did

    def sent(self, chat: ChatLike, *, include_deleted: bool = False) -> list[SentMessage]:
        """What the bot sent to a chat, in order, each in its current state."""
        target = self.chat(chat)
        return [m for m in target.sent_log if include_deleted or not m.deleted]

    def last(self, chat: ChatLike) -> SentMessage:
        """The bot's most recent (not deleted) message in a chat."""
        messages = self.sent(chat)
        if not messages:
            raise LookupError(f"the bot has sent nothing (still visible) to {self.chat(chat)!r}")
        return messages[-1]

    def mark(self) -> int:
        """A point in time for ``wait_for(since=...)``: only later sends/edits count."""
        return self._seq

    async def wait_for(
        self,
        chat: ChatLike,
        predicate: Callable[[SentMessage], bool] | str | None = None,
        *,
        count: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented test API
        since: int | None = None,
    ) -> SentMessage:
        """Wait until the bot sent (or edited) ``count`` messages matching ``predicate``.

        Only messages sent or edited after ``since`` count; by default that is the last
        thing a person did in this chat, so ``await alice.send(...); await sim.wait_for(...)``
        waits for the reply to that message. A string predicate means "text contains".
        Returns the ``count``-th match. Raises :class:`sandbox.WaitTimeout`.
        """
        target = self.chat(chat)
        count = count or 1
        start = target.last_incoming_seq if since is None else since
        if isinstance(predicate, str):
            needle = predicate

            def check(message: SentMessage) -> bool:
                return needle in message.text

        else:
            check = predicate or (lambda _message: True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._waiters.event
            matches = sorted(
                (
                    m
                    for m in target.sent_log
                    if not m.deleted and m.updated_seq > start and check(m)
                ),
                key=lambda m: m.updated_seq,
            )
            if len(matches) >= count:
                return matches[count - 1]
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "\n".join(f"  {m!r}" for m in target.sent_log[-5:]) or "  (nothing)"
                raise WaitTimeout(
                    f"waited {timeout}s for {count} matching message(s) in {target!r}; "
                    f"found {len(matches)}. Last messages there:\n{recent}"
                )
            await self._wait_change(event, remaining)

    async def idle(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented test API
        quiet: float = 0.1,
    ) -> None:
        """Wait until every update was fetched and no request ran for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            unfetched = sum(1 for p in self._pending if not p.handed)
            calm = time.monotonic() - self._last_activity >= quiet
            if unfetched == 0 and self._inflight == 0 and calm:
                return
            if loop.time() >= deadline:
                raise WaitTimeout(
                    f"not idle after {timeout}s: {unfetched} update(s) not fetched, "
                    f"{self._inflight} request(s) in flight"
                )
            await asyncio.sleep(min(0.01, quiet))

    def commands(self, scope: Any = None, language_code: str = "") -> list[tuple[str, str]]:
        """The command list set for a scope and language ([] if none was set).

        ``scope`` may be None/"default", a scope type name, a BotCommandScope dict, or a PTB
        ``BotCommandScope`` object.
        """
        key = self._scope_key(_scope_dict(scope))
        return [
            (c["command"], c["description"]) for c in self._commands.get((key, language_code), [])
        ]

    def _scope_key(self, scope: dict[str, Any] | None) -> str:
        if not scope:
            return "default"
        kind = str(scope.get("type", "default"))
        if kind in ("chat", "chat_administrators", "chat_member"):
            chat_id = scope.get("chat_id")
            key = f"{kind}:{self._scope_chat_id(chat_id)}"
            if kind == "chat_member":
                key += f":{int(scope.get('user_id', 0))}"
            return key
        return kind

    def _scope_chat_id(self, chat_id: Any) -> int:
        if isinstance(chat_id, SimChat):
            return chat_id.id
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for chat in self._chats.values():
                if chat.username and chat.username.lower() == chat_id[1:].lower():
                    return chat.id
            return 0
        try:
            return int(chat_id)
        except (TypeError, ValueError):
            return 0

    # ------------------------------------------------------------------ transcript

    def transcript(self, chat: ChatLike | None = None) -> str:
        """A readable log of a chat (or every chat): what people did and what the bot sent."""
        chats = (
            [self.chat(chat)] if chat is not None else [c for c in self._chats.values() if c.events]
        )
        blocks = [self._render_chat(c) for c in chats]
        return "\n\n".join(blocks)

    def _render_chat(self, chat: SimChat) -> str:
        kind = {"private": "private chat", "group": "group", "supergroup": "supergroup"}.get(
            chat.type, chat.type
        )
        lines = [f"── {chat.name} ({kind} {chat.id}) ──"]
        for _seq, event_kind, obj in chat.events:
            if event_kind == "user" and isinstance(obj, Incoming):
                name = self._user_name(obj.sender_id)
                note = "" if obj.delivered else "   (not delivered to the bot)"
                lines.extend(_indent(f"{name}: {_describe_incoming(obj.raw)}{note}"))
            elif event_kind == "edit" and isinstance(obj, _EditEvent):
                lines.extend(_indent(f"{obj.user.full_name} (edited): {obj.text}"))
            elif event_kind == "bot" and isinstance(obj, SentMessage):
                lines.extend(self._render_bot_message(obj))
            elif event_kind == "press" and isinstance(obj, _PressEvent):
                lines.append(f"{obj.user.full_name} ▸ pressed [{obj.label}] on #{obj.message_id}")
                if obj.answer is None:
                    lines.append("   ↳ (no answer)")
                elif obj.answer.text:
                    alert = " (alert)" if obj.answer.show_alert else ""
                    lines.append(f"   ↳ {obj.answer.text}{alert}")
            elif event_kind == "system" and isinstance(obj, _SystemEvent):
                lines.append(f"· {obj.text}")
        return "\n".join(lines)

    def _user_name(self, user_id: int) -> str:
        person = self._users.get(user_id)
        return person.full_name if person else str(user_id)

    def _render_bot_message(self, message: SentMessage) -> list[str]:
        marks = []
        if message.edits:
            marks.append("edited" if len(message.edits) == 1 else f"edited ×{len(message.edits)}")
        if message.deleted:
            marks.append("deleted")
        mark = f" ({', '.join(marks)})" if marks else ""
        head = f"🤖 {self.bot_name}{mark}: "
        body = _describe_sent(message)
        lines = _indent(head + body)
        for row in message.buttons:
            lines.append("   " + " ".join(f"[{label}]" for label in row))
        return lines


def _indent(text: str) -> list[str]:
    first, *rest = text.split("\n")
    return [first, *("   " + line for line in rest)]


def _describe_incoming(raw: dict[str, Any]) -> str:
    caption = raw.get("caption")
    suffix = f" {caption}" if caption else ""
    if "text" in raw:
        return str(raw["text"])
    if "photo" in raw:
        return f"[photo]{suffix}"
    if "document" in raw and "animation" not in raw:
        doc = raw["document"]
        return f"[document {doc.get('file_name', '')}, {doc.get('file_size', 0)} bytes]{suffix}"
    if "location" in raw:
        loc = raw["location"]
        return f"[location {loc['latitude']}, {loc['longitude']}]"
    if "contact" in raw:
        return f"[contact {raw['contact'].get('phone_number', '')}]"
    if "sticker" in raw:
        return f"[sticker {raw['sticker'].get('emoji', '')}]"
    for kind in ("video", "voice", "animation", "audio", "video_note"):
        if kind in raw:
            return f"[{kind}]{suffix}"
    if "new_chat_members" in raw:
        names = ", ".join(m.get("first_name", "") for m in raw["new_chat_members"])
        return f"(added {names})"
    if "migrate_to_chat_id" in raw:
        return f"(group upgraded to supergroup {raw['migrate_to_chat_id']})"
    if "migrate_from_chat_id" in raw:
        return f"(supergroup created from group {raw['migrate_from_chat_id']})"
    return "(message)"


def _describe_sent(message: SentMessage) -> str:
    text = message.text
    if message.kind == "text":
        return text
    suffix = f" {text}" if text else ""
    if message.kind == "photo":
        return f"[photo]{suffix}"
    if message.kind == "document":
        size = len(message.document_bytes or b"")
        return f"[document {message.document_name}, {size} bytes]{suffix}"
    if message.kind == "location" and message.location:
        return f"[location {message.location[0]}, {message.location[1]}]"
    if message.kind == "media_group":
        return f"[album {message.media_type}]{suffix}"
    return f"[{message.kind}]{suffix}"


def _utf16_piece(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le", "surrogatepass")
    return data[offset * 2 : (offset + length) * 2].decode("utf-16-le", "replace")


def _scope_dict(scope: Any) -> dict[str, Any] | None:
    if scope is None or scope == "default":
        return None
    if isinstance(scope, str):
        return {"type": scope}
    if isinstance(scope, dict):
        return scope
    to_dict = getattr(scope, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, dict):
            return result
    raise SimulatorError(f"cannot read a command scope from {scope!r}")


def _admin_rights(*, can_be_edited: bool) -> dict[str, Any]:
    rights = dict.fromkeys(
        (
            "can_manage_chat",
            "can_delete_messages",
            "can_manage_video_chats",
            "can_restrict_members",
            "can_change_info",
            "can_invite_users",
            "can_post_stories",
            "can_edit_stories",
            "can_delete_stories",
            "can_pin_messages",
        ),
        True,
    )
    rights.update(can_be_edited=can_be_edited, is_anonymous=False, can_promote_members=False)
    return rights


