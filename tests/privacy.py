"""The privacy checker (DESIGN §7, STYLE 11) every Harness scenario runs at teardown.

A unit group may not see a citizen's name, username, Telegram id or phone unless that
citizen agreed to share their contact for the case the message is about; an INFO (or
louder) log line may carry no phone number and no person's name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.logs import PHONE

CASE_NUMBER = re.compile(r"[A-Z]{1,8}\d{4}-\d{3,}")


@dataclass(frozen=True)
class Citizen:
    """What identifies one citizen, and the cases for which they agreed to share it."""

    user_id: int
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    phone: str | None = None
    consented_cases: frozenset[str] = field(default_factory=frozenset)

    def identifiers(self) -> list[tuple[str, re.Pattern[str]]]:
        """(what, pattern) pairs that would reveal this citizen in a message."""
        found: list[tuple[str, re.Pattern[str]]] = [
            ("Telegram id", re.compile(rf"(?<!\d){self.user_id}(?!\d)"))
        ]
        full = " ".join(p for p in (self.first_name, self.last_name) if p)
        joined = "".join(p for p in (self.first_name, self.last_name) if p)
        for what, value in (("name", full), ("name", joined)):
            # A one-letter name ("张") would match ordinary words; the full name would not.
            if value and len(value) >= 2:
                found.append((what, re.compile(re.escape(value))))
        if self.username:
            found.append(("username", re.compile(re.escape(self.username), re.IGNORECASE)))
        if self.phone:
            digits = re.sub(r"\D", "", self.phone)
            if len(digits) >= 7:
                # The phone however it is spaced or prefixed.
                found.append(("phone", re.compile(r"[\s-]?".join(digits[-11:]))))
        return found


@dataclass(frozen=True)
class Leak:
    """One place a citizen's identity or a phone number showed where it must not."""

    where: str
    what: str
    text: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} in {self.text[:200]!r}"


def unit_group_leaks(messages: Iterable[tuple[int, str]], unit_chats: set[int],
                     citizens: Iterable[Citizen]) -> list[Leak]:
    """Messages (chat id, text) sent to unit groups that identify a citizen without consent."""
    people = [(c, c.identifiers()) for c in citizens]
    leaks: list[Leak] = []
    for chat_id, text in messages:
        if chat_id not in unit_chats or not text:
            continue
        numbers = set(CASE_NUMBER.findall(text))
        for citizen, patterns in people:
            if numbers & citizen.consented_cases:
                continue
            for what, pattern in patterns:
                if pattern.search(text):
                    leaks.append(Leak(f"unit group {chat_id}",
                                      f"citizen {citizen.user_id}'s {what}", text))
    return leaks


def log_leaks(records: Iterable[logging.LogRecord], names: Iterable[str],
              phones: Iterable[str] = ()) -> list[Leak]:
    """INFO+ log records carrying a phone number (any, or a known one) or a person's name."""
    name_patterns = [re.compile(re.escape(n)) for n in set(names) if n and len(n) >= 2]
    phone_patterns = [re.compile(r"[\s-]?".join(re.sub(r"\D", "", p)[-11:]))
                      for p in phones if len(re.sub(r"\D", "", p)) >= 7]
    leaks: list[Leak] = []
    for record in records:
        if record.levelno < logging.INFO:
            continue
        try:
            line = record.getMessage()
        except Exception:  # a broken record is the logging module's business, not ours
            continue
        where = f"log {record.levelname} {record.name}"
        if PHONE.search(line) or any(p.search(line) for p in phone_patterns):
            leaks.append(Leak(where, "a phone number", line))
        for pattern in name_patterns:
            if pattern.search(line):
                leaks.append(Leak(where, f"the name {pattern.pattern!r}", line))
    return leaks


class Recorder(logging.Handler):
    """Keeps every record it sees (installed on the root logger while a scenario runs)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record for the checker."""
        self.records.append(record)
