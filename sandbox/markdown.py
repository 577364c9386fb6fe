"""MarkdownV2 and legacy Markdown parse modes, with tdlib's error wording.

MarkdownV2's rule that every reserved character outside an entity must be escaped is the
most common way a bot's message gets refused in production, so that rule is exact here;
the rest of the syntax is covered well enough for tests.
"""

from __future__ import annotations

from typing import Any

from sandbox.textparse import EntityParseError, _valid_url

__all__ = ["parse_markdown"]

_RESERVED = "_*[]()~`>#+-=|{}.!"
_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def _at(text: str, i: int) -> str:
    return text[i] if 0 <= i < len(text) else ""


def _byte_offset(text: str, pos: int) -> int:
    return len(text[:pos].encode("utf-8", "surrogatepass"))


def _u16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def parse_markdown(text: str, *, v2: bool) -> tuple[str, list[dict[str, Any]]]:
    """Parse MarkdownV2 (``v2=True``) or legacy Markdown into plain text and entities."""
    return _parse_v2(text) if v2 else _parse_v1(text)


def _reserved_error(ch: str) -> EntityParseError:
    return EntityParseError(
        f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
    )


def _parse_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    utf16 = 0
    entities: list[dict[str, Any]] = []
    # (type, argument, utf16 offset, byte position in source, index into out)
    stack: list[tuple[str, str, int, int, int]] = []
    quote_start: int | None = None
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        at_line_start = i == 0 or text[i - 1] == "\n"
        if at_line_start and not stack:
            if ch == ">" or text.startswith("**>", i):
                if quote_start is None:
                    quote_start = utf16
                i += 3 if ch == "*" else 1
                continue
            if quote_start is not None:
                _close_quote(entities, quote_start, utf16, out)
                quote_start = None
        if ch == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.append(text[i + 1])
            utf16 += 1
            i += 2
            continue
        reserved = _RESERVED
        if stack and stack[-1][0] in ("code", "pre"):
            reserved = "`"
        if ch not in reserved:
            out.append(ch)
            utf16 += _u16(ch)
            i += 1
            continue

        top = stack[-1][0] if stack else None
        closes = (
            (top == "bold" and ch == "*")
            or (top == "italic" and ch == "_" and _at(text, i + 1) != "_")
            or (top == "code" and ch == "`")
            or (top == "pre" and text.startswith("```", i))
            or (top in ("text_link", "custom_emoji") and ch == "]")
            or (top == "underline" and text.startswith("__", i))
            or (top == "strikethrough" and ch == "~")
            or (top == "spoiler" and text.startswith("||", i))
        )
        if not closes:
            begin = i
            argument = ""
            if ch == "_":
                if _at(text, i + 1) == "_":
                    kind = "underline"
                    i += 1
                else:
                    kind = "italic"
            elif ch == "*":
                kind = "bold"
            elif ch == "~":
                kind = "strikethrough"
            elif ch == "|":
                if _at(text, i + 1) != "|":
                    raise _reserved_error(ch)
                kind = "spoiler"
                i += 1
            elif ch == "[":
                kind = "text_link"
            elif ch == "`":
                if text.startswith("```", i):
                    kind = "pre"
                    i += 3
                    lang_end = i
                    while lang_end < n and text[lang_end] not in " \t\r\n`":
                        lang_end += 1
                    if lang_end != i and lang_end < n and text[lang_end] != "`":
                        argument = text[i:lang_end]
                        i = lang_end
                    if _at(text, i) in ("\n", "\r"):
                        pair = _at(text, i + 1)
                        i += 2 if pair in ("\n", "\r") and pair != text[i] else 1
                    i -= 1
                else:
                    kind = "code"
            elif ch == "!" and _at(text, i + 1) == "[":
                kind = "custom_emoji"
                i += 1
            else:
                raise _reserved_error(ch)
            stack.append((kind, argument, utf16, begin, len(out)))
            i += 1
            continue

        kind, argument, offset, _begin, out_pos = stack.pop()
        skip = utf16 == offset
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind == "pre":
            i += 2
        elif kind in ("text_link", "custom_emoji"):
            if _at(text, i + 1) != "(":
                url = "".join(out[out_pos:])
            else:
                i += 2
                url_begin = i
                chars: list[str] = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                        chars.append(text[i + 1])
                        i += 2
                        continue
                    chars.append(text[i])
                    i += 1
                if i >= n:
                    raise EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}"
                    )
                url = "".join(chars)
            if kind == "custom_emoji":
                if not url.startswith("tg://emoji?id="):
                    raise EntityParseError("Custom emoji URL must have an emoji identifier")
                argument = url[len("tg://emoji?id=") :]
            else:
                checked = _valid_url(url)
                if checked is None:
                    skip = True
                else:
                    argument = checked
        if not skip:
            entity: dict[str, Any] = {"type": kind, "offset": offset, "length": utf16 - offset}
            if kind == "text_link":
                entity["url"] = argument
            elif kind == "custom_emoji":
                entity["custom_emoji_id"] = argument
            elif kind == "pre" and argument:
                entity["language"] = argument
            entities.append(entity)
        i += 1

    if stack:
        kind, argument, _offset, begin, _pos = stack[-1]
        name = "PreCode" if kind == "pre" and argument else _TYPE_NAMES[kind]
        raise EntityParseError(
            f"Can't find end of {name} entity at byte offset {_byte_offset(text, begin)}"
        )
    if quote_start is not None:
        _close_quote(entities, quote_start, utf16, out)
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _close_quote(entities: list[dict[str, Any]], start: int, end: int, out: list[str]) -> None:
    # The newline that ends the last quoted line belongs outside the quote.
    if out and out[-1] == "\n":
        end -= 1
    if end > start:
        entities.append({"type": "blockquote", "offset": start, "length": end - start})


def _parse_v1(text: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    utf16 = 0
    entities: list[dict[str, Any]] = []
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch not in "_*`[":
            out.append(ch)
            utf16 += _u16(ch)
            i += 1
            continue
        begin = i
        if ch == "[":
            close = text.find("]", i + 1)
            if close < 0:
                offset = _byte_offset(text, begin)
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {offset}"
                )
            inner = text[i + 1 : close]
            url = ""
            i = close + 1
            if _at(text, i) == "(":
                url_end = text.find(")", i + 1)
                if url_end >= 0:
                    url = text[i + 1 : url_end]
                    i = url_end + 1
            out.append(inner)
            length = sum(_u16(c) for c in inner)
            checked = _valid_url(url) if url else None
            if checked is not None and length:
                entities.append(
                    {"type": "text_link", "offset": utf16, "length": length, "url": checked}
                )
            utf16 += length
            continue
        marker = "```" if text.startswith("```", i) else ch
        close = text.find(marker, i + len(marker))
        if close < 0:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        inner = text[i + len(marker) : close]
        kind = {"_": "italic", "*": "bold", "`": "code", "```": "pre"}[marker]
        language = ""
        if kind == "pre" and "\n" in inner:
            first, rest = inner.split("\n", 1)
            if first and " " not in first:
                language, inner = first, rest
        length = sum(_u16(c) for c in inner)
        if length:
            entity: dict[str, Any] = {"type": kind, "offset": utf16, "length": length}
            if language:
                entity["language"] = language
            entities.append(entity)
        out.append(inner)
        utf16 += length
        i = close + len(marker)
    return "".join(out), entities
