"""Logging: readable lines or JSON lines, with phone numbers and the bot token redacted.

Case numbers and update ids go in as context: `logger.info("…", extra={"case": number,
"update": update_id})`; both formats show them as their own fields.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

# Mainland mobile numbers, bare or with +86 / 0086 (spaces or dashes allowed after it and
# in 3-4-4 groups); never inside a longer run of digits such as a chat id.
PHONE = re.compile(r"(?<![\d+])(?:(?:\+|00)?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
TOKEN = re.compile(r"\d{6,}:[A-Za-z0-9_-]{30,}")
CONTEXT_FIELDS = ("case", "update")


def redact(text: str, *, phones: bool = True) -> str:
    """The text with the bot token (always) and phone numbers (unless `phones=False`)
    replaced."""
    text = TOKEN.sub("<token>", text)
    return PHONE.sub("<phone>", text) if phones else text


class RedactingFilter(logging.Filter):
    """Removes the bot token from every record, and phone numbers from INFO and above.

    Installed on the handler, so it sees records from every logger (PTB's and httpx's
    request lines carry the token in the URL). The message is formatted here once and its
    arguments dropped; a traceback is formatted and redacted too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        phones = record.levelno >= logging.INFO
        message = record.getMessage()
        clean = redact(message, phones=phones)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, phones=phones)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, phones=phones)
        return True


def _context(record: logging.LogRecord) -> dict[str, object]:
    return {
        name: getattr(record, name)
        for name in CONTEXT_FIELDS
        if getattr(record, name, None) is not None
    }


class TextFormatter(logging.Formatter):
    """`2026-11-30 10:00:00,123 INFO    bot.services: message [case=CZ… update=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """One readable line (plus a traceback, if any)."""
        line = super().format(record)
        context = _context(record)
        if context:
            head, sep, tail = line.partition("\n")
            extra = " ".join(f"{k}={v}" for k, v in context.items())
            line = f"{head} [{extra}]{sep}{tail}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, case, update, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    level: str | int = "INFO", fmt: str = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's records to `stream` (stderr) as text or JSON lines, redacted.

    Replaces the root logger's handlers; returns the one installed.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # httpx logs every Bot API request URL at INFO (with the token in it): redacted anyway,
    # but one line per poll is noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler
