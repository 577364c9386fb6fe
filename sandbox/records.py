"""What the simulator records: the bot's messages, people's messages, answers and counters."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CallbackAnswer",
    "EditRecord",
    "Incoming",
    "RequestRecord",
    "SentMessage",
    "Stats",
]


@dataclass(frozen=True)
class EditRecord:
    """One earlier state of a bot message, kept when the bot edits it."""

    text: str
    html: str | None
    reply_markup: dict[str, Any] | None
    method: str
    at: float


@dataclass
class SentMessage:
    """A message the bot sent, in its current state (after edits), plus its history."""

    message_id: int
    chat_id: int
    kind: str
    text: str = ""
    html: str | None = None
    parse_mode: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    reply_to: int | None = None
    document_name: str | None = None
    document_bytes: bytes | None = None
    document_mime: str | None = None
    photo: list[dict[str, Any]] | None = None
    photo_bytes: bytes | None = None
    location: tuple[float, float] | None = None
    media_type: str | None = None
    media_group_id: str | None = None
    disable_notification: bool = False
    protect_content: bool = False
    link_preview_options: dict[str, Any] | None = None
    edits: list[EditRecord] = field(default_factory=list)
    deleted: bool = False
    reaction: list[dict[str, Any]] | None = None
    method: str = "sendMessage"
    seq: int = 0
    updated_seq: int = 0
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def caption(self) -> str:
        """The caption of a media message (same as :attr:`text`)."""
        return self.text

    @property
    def edited(self) -> bool:
        """Whether the bot edited this message at least once."""
        return bool(self.edits)

    @property
    def is_inline_keyboard(self) -> bool:
        """Whether the message carries an inline keyboard."""
        return bool(self.reply_markup and "inline_keyboard" in self.reply_markup)

    @property
    def buttons(self) -> list[list[str]]:
        """Labels of the keyboard (inline or reply keyboard), row by row."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("inline_keyboard") or self.reply_markup.get("keyboard") or []
        return [[b if isinstance(b, str) else str(b.get("text", "")) for b in row] for row in rows]

    @property
    def button_labels(self) -> list[str]:
        """All keyboard labels, flattened."""
        return [label for row in self.buttons for label in row]

    def button(self, label: str) -> dict[str, Any] | None:
        """The inline button with exactly this label, or None."""
        if not self.reply_markup:
            return None
        for row in self.reply_markup.get("inline_keyboard") or []:
            for button in row:
                if button.get("text") == label:
                    return dict(button)
        return None

    def button_data(self, label: str) -> str | None:
        """The callback_data of the inline button with this label (None if no such button)."""
        button = self.button(label)
        return None if button is None else button.get("callback_data")

    def to_dict(self) -> dict[str, Any]:
        """The Message object as Telegram would return it now (a copy)."""
        return copy.deepcopy(self.raw)

    def __repr__(self) -> str:
        """Short form for assertion messages."""
        flags = " edited" if self.edits else ""
        flags += " deleted" if self.deleted else ""
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return (
            f"<SentMessage #{self.message_id} {self.kind}{flags} {text!r} buttons={self.buttons}>"
        )


@dataclass
class Incoming:
    """A message a simulated person sent, and the update that carried it to the bot.

    ``update`` is None when Telegram would not have delivered it (privacy mode in a group,
    the bot not in the chat). Indexing (``m["text"]``) reads the raw Message dict.
    """

    raw: dict[str, Any]
    update: dict[str, Any] | None
    sender_id: int
    seq: int = 0

    @property
    def message_id(self) -> int:
        """The message's id in its chat."""
        return int(self.raw["message_id"])

    @property
    def chat_id(self) -> int:
        """The chat the message was sent in."""
        return int(self.raw["chat"]["id"])

    @property
    def text(self) -> str:
        """Text or caption ("" for media without caption)."""
        return str(self.raw.get("text") or self.raw.get("caption") or "")

    @property
    def update_id(self) -> int | None:
        """The update's id, or None when the bot was not sent this message."""
        return None if self.update is None else int(self.update["update_id"])

    @property
    def delivered(self) -> bool:
        """Whether an update for this message was queued for the bot."""
        return self.update is not None

    def __getitem__(self, key: str) -> Any:
        """Read a field of the raw Message dict."""
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Read a field of the raw Message dict, with a default."""
        return self.raw.get(key, default)


@dataclass
class CallbackAnswer:
    """What the bot answered to a button press (answerCallbackQuery)."""

    query_id: str
    text: str | None = None
    show_alert: bool = False
    url: str | None = None
    cache_time: int | None = None
    update: dict[str, Any] | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP call the bot made: method, parameters as received, and the outcome."""

    method: str
    params: dict[str, Any]
    status: int
    description: str | None
    at: float


@dataclass
class Stats:
    """Counters: calls per method, error answers per status, 429s, injected faults."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[int] = field(default_factory=Counter)
    too_many_requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    handed_again: int = 0  # updates getUpdates returned again, not confirmed the first time
    # (fault kind, method): e.g. how many sendMessage calls took effect unacknowledged.
    fault_methods: Counter[tuple[str, str]] = field(default_factory=Counter)

    def reset(self) -> None:
        """Zero every counter."""
        self.calls.clear()
        self.errors.clear()
        self.faults.clear()
        self.fault_methods.clear()
        self.handed_again = 0
        self.too_many_requests = 0
