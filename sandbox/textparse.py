"""Telegram's text rules: HTML parse mode as tdlib applies it, UTF-16 lengths, auto entities.

Telegram counts message lengths and entity offsets in UTF-16 code units, and reports HTML
errors with byte offsets into the UTF-8 source; both are reproduced here because bots that
count characters the Python way (code points) break exactly on emoji and rare CJK characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALLOWED_HTML_TAGS",
    "EntityParseError",
    "FormattedText",
    "detect_entities",
    "format_text",
    "parse_html",
    "plain_to_html",
    "utf16_len",
]

ALLOWED_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)

_SIMPLE_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
# tdlib's is_space: the C locale's whitespace plus NUL is never part of text here.
_SPACES = frozenset(" \t\r\n\v\f")


class EntityParseError(ValueError):
    """The HTML could not be parsed; ``str(err)`` is tdlib's wording of the reason."""


@dataclass(frozen=True)
class FormattedText:
    """Text after entity parsing and Telegram's whitespace trimming."""

    text: str
    entities: tuple[dict[str, Any], ...]

    @property
    def utf16_length(self) -> int:
        """Length in UTF-16 code units, the unit Telegram's limits are measured in."""
        return utf16_len(self.text)


def utf16_len(text: str) -> int:
    """Return the number of UTF-16 code units in ``text``."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _byte_offset(src: str, pos: int) -> int:
    return len(src[:pos].encode("utf-8", "surrogatepass"))


def _decode_entity(src: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference at ``src[pos] == '&'`` the way tdlib does.

    tdlib knows only four named references and numeric ones; anything else (``&nbsp;``,
    ``&copy;``) stays literal text, which surprises people used to browsers.
    """
    n = len(src)
    end = pos + 1
    if end < n and src[end] == "#":
        end += 1
        code = 0
        if end < n and src[end] == "x":
            end += 1
            while end < n and src[end] in "0123456789abcdefABCDEF":
                code = code * 16 + int(src[end], 16)
                end += 1
        else:
            while end < n and "0" <= src[end] <= "9":
                code = code * 10 + ord(src[end]) - 48
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10 or 0xD800 <= code <= 0xDFFF:
            return None
        char = chr(code)
    else:
        while end < n and src[end].isascii() and src[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(src[pos + 1 : end])
        if named is None:
            return None
        char = named
    if end < n and src[end] == ";":
        end += 1
    return char, end


@dataclass
class _OpenTag:
    tag: str
    argument: str
    offset: int  # UTF-16 offset in the output where the entity starts
    begin: int  # index of '<' in the source, for error messages


def _valid_url(url: str) -> str | None:
    """Return the URL as Telegram would store it, or None when tdlib would drop the link."""
    url = url.strip()
    if not url or any(ch in _SPACES for ch in url):
        return None
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", url)
    if match is None:
        # A bare host such as "example.com/x" is accepted and gets an http:// prefix.
        if re.match(r"^[\w.-]+\.[a-zA-Z]{2,}(?:[:/?#].*)?$", url):
            return "http://" + url
        return None
    scheme = match.group(1).lower()
    if scheme in ("http", "https", "ftp", "ton"):
        return url if len(url) > len(scheme) + 3 else None
    if scheme == "tg":
        return url
    return None


def parse_html(src: str, *, known_user: Any = None) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML into plain text and MessageEntity dicts.

    Raises :class:`EntityParseError` with tdlib's message (without the
    ``"Bad Request: can't parse entities: "`` prefix that the server adds).
    ``known_user`` maps a user id to a User dict for ``tg://user?id=`` links.
    """
    out: list[str] = []
    utf16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[_OpenTag] = []
    n = len(src)
    i = 0
    while i < n:
        ch = src[i]
        if ch == "&":
            decoded = _decode_entity(src, i)
            if decoded is not None:
                char, i = decoded
                out.append(char)
                utf16 += utf16_len(char)
                continue
        if ch != "<":
            out.append(ch)
            utf16 += 2 if ord(ch) > 0xFFFF else 1
            i += 1
            continue

        begin = i
        i += 1
        if i < n and src[i] == "/":
            if not stack:
                raise EntityParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(src, begin)}"
                )
            i += 1
            name_start = i
            while i < n and src[i] not in _SPACES and src[i] != ">":
                i += 1
            end_name = src[name_start:i].lower()
            while i < n and src[i] in _SPACES:
                i += 1
            if i >= n or src[i] != ">":
                raise EntityParseError(
                    f"Unclosed end tag at byte offset {_byte_offset(src, begin)}"
                )
            top = stack[-1]
            if end_name and end_name != top.tag:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(src, begin)}, "
                    f'expected "</{top.tag}>", found "</{end_name}>"'
                )
            stack.pop()
            i += 1
            length = utf16 - top.offset
            if length > 0:
                _close_entity(top, length, "".join(out), entities, known_user)
            continue

        name_start = i
        while i < n and src[i] not in _SPACES and src[i] != ">":
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
        tag = src[name_start:i].lower()
        if tag not in ALLOWED_HTML_TAGS:
            raise EntityParseError(
                f'Unsupported start tag "{tag}" at byte offset {_byte_offset(src, begin)}'
            )
        argument = ""
        while src[i] != ">":
            while i < n and src[i] in _SPACES:
                i += 1
            if i >= n:
                raise EntityParseError(
                    f'Unclosed start tag "{tag}" at byte offset {_byte_offset(src, begin)}'
                )
            if src[i] == ">":
                break
            attr_start = i
            while i < n and src[i] not in _SPACES and src[i] not in "=>/\"'":
                i += 1
            attr = src[attr_start:i].lower()
            if not attr:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset '
                    f"{_byte_offset(src, begin)}"
                )
            while i < n and src[i] in _SPACES:
                i += 1
            if i >= n or src[i] != "=":
                if i >= n:
                    raise EntityParseError(
                        f'Unclosed start tag "{tag}" at byte offset {_byte_offset(src, begin)}'
                    )
                if tag == "blockquote" and attr == "expandable":
                    argument = "1"
                continue
            i += 1
            while i < n and src[i] in _SPACES:
                i += 1
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(src, begin)}"
                )
            if src[i] not in "'\"":
                token_start = i
                while i < n and ((src[i].isascii() and src[i].isalnum()) or src[i] in ".-"):
                    i += 1
                value = src[token_start:i].lower()
                if i >= n or (src[i] not in _SPACES and src[i] != ">"):
                    raise EntityParseError(
                        f"Unexpected end of name token at byte offset "
                        f"{_byte_offset(src, token_start)}"
                    )
            else:
                quote = src[i]
                i += 1
                buf: list[str] = []
                while i < n and src[i] != quote:
                    if src[i] == "&":
                        decoded = _decode_entity(src, i)
                        if decoded is not None:
                            buf.append(decoded[0])
                            i = decoded[1]
                            continue
                    buf.append(src[i])
                    i += 1
                if i < n:
                    i += 1
                value = "".join(buf)
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(src, begin)}"
                )
            if tag == "a" and attr == "href":
                argument = value
            elif tag == "code" and attr == "class" and value.startswith("language-"):
                argument = value[len("language-") :]
            elif tag == "span" and attr == "class" and value.startswith("tg-"):
                argument = value[len("tg-") :]
            elif tag == "tg-emoji" and attr == "emoji-id":
                argument = value
            elif tag == "blockquote" and attr == "expandable":
                argument = "1"
        if tag == "span" and argument != "spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(src, begin)}'
            )
        stack.append(_OpenTag(tag, argument, utf16, begin))
        i += 1

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    for entity in entities:
        entity.pop("_language", None)
    return "".join(out), _sorted_entities(entities)


def _close_entity(
    top: _OpenTag,
    length: int,
    text_so_far: str,
    entities: list[dict[str, Any]],
    known_user: Any,
) -> None:
    offset = top.offset
    simple = _SIMPLE_TAG_TYPES.get(top.tag)
    if simple is not None:
        entities.append({"type": simple, "offset": offset, "length": length})
    elif top.tag == "tg-emoji":
        try:
            emoji_id = int(top.argument)
        except ValueError:
            raise EntityParseError("Invalid custom emoji identifier specified") from None
        entities.append(
            {
                "type": "custom_emoji",
                "offset": offset,
                "length": length,
                "custom_emoji_id": str(emoji_id),
            }
        )
    elif top.tag == "a":
        url = top.argument
        if not url:
            # <a>url</a> without href links the text itself, as tdlib does.
            url = _utf16_slice(text_so_far, offset, length)
        user_match = re.match(r"^tg://user\?id=(\d+)$", url)
        if user_match and known_user is not None:
            user = known_user(int(user_match.group(1)))
            if user is not None:
                entities.append(
                    {"type": "text_mention", "offset": offset, "length": length, "user": user}
                )
            return
        checked = _valid_url(url)
        if checked is not None:
            entities.append(
                {"type": "text_link", "offset": offset, "length": length, "url": checked}
            )
    elif top.tag == "code":
        entities.append(
            {"type": "code", "offset": offset, "length": length, "_language": top.argument}
        )
    elif top.tag == "pre":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "code"
            and last["offset"] == offset
            and last["length"] == length
            and last.get("_language")
        ):
            # <pre><code class="language-x">…</code></pre> is one pre entity with a language.
            entities[-1] = {
                "type": "pre",
                "offset": offset,
                "length": length,
                "language": last["_language"],
            }
        else:
            entities.append({"type": "pre", "offset": offset, "length": length})
    elif top.tag == "blockquote":
        kind = "expandable_blockquote" if top.argument else "blockquote"
        entities.append({"type": kind, "offset": offset, "length": length})


def _utf16_slice(text: str, offset: int, length: int) -> str:
    encoded = text.encode("utf-16-le", "surrogatepass")
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le", "surrogatepass")


def _sorted_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading/trailing whitespace as the server does, keeping entities aligned."""
    stripped_left = text.lstrip("".join(_SPACES))
    lead = utf16_len(text) - utf16_len(stripped_left)
    stripped = stripped_left.rstrip("".join(_SPACES))
    total = utf16_len(stripped)
    result: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


_COMMAND_RE = re.compile(r"(?<![\w/@])/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![\w/])")
_MENTION_RE = re.compile(r"(?<![\w@])@[a-zA-Z][a-zA-Z0-9_]{3,31}(?!\w)")
_HASHTAG_RE = re.compile(r"(?<![\w#])#\w*[^\W\d]\w*")
_URL_RE = re.compile(r"(?<![\w@])https?://[^\s<>\"]+[^\s<>\".,;:!?)\]}'，。]")
_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[\w.+-]+@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*\.[a-zA-Z]{2,}(?!\w)"
)

_AUTO_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("url", _URL_RE),
    ("email", _EMAIL_RE),
    ("bot_command", _COMMAND_RE),
    ("mention", _MENTION_RE),
    ("hashtag", _HASHTAG_RE),
)

_OPAQUE_TYPES = frozenset(
    {"code", "pre", "text_link", "text_mention", "url", "email", "custom_emoji"}
)


def detect_entities(
    text: str, existing: list[dict[str, Any]] | tuple[dict[str, Any], ...] = ()
) -> list[dict[str, Any]]:
    """Find the entities Telegram marks by itself: commands, mentions, hashtags, URLs, e-mails.

    Nothing is detected inside code, pre or links, as on Telegram; offsets are UTF-16.
    """
    taken: list[tuple[int, int]] = [
        (e["offset"], e["offset"] + e["length"]) for e in existing if e["type"] in _OPAQUE_TYPES
    ]
    found: list[dict[str, Any]] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            offset = utf16_len(text[: match.start()])
            length = utf16_len(match.group(0))
            end = offset + length
            if any(start < end and offset < stop for start, stop in taken):
                continue
            taken.append((offset, end))
            found.append({"type": kind, "offset": offset, "length": length})
    return found


def format_text(
    raw: str,
    parse_mode: str | None,
    entities: list[dict[str, Any]] | None = None,
    *,
    known_user: Any = None,
) -> FormattedText:
    """Turn a message's raw text and parse_mode into what Telegram would store.

    Raises :class:`EntityParseError` for malformed markup, or :class:`ValueError` with
    ``"unsupported parse_mode"`` for an unknown mode.
    """
    mode = (parse_mode or "").strip().lower()
    if entities:
        text, found = raw, [dict(e) for e in entities]
    elif mode == "html":
        text, found = parse_html(raw, known_user=known_user)
    elif mode in ("markdownv2", "markdown"):
        from sandbox.markdown import parse_markdown

        text, found = parse_markdown(raw, v2=mode == "markdownv2")
    elif mode in ("", "none"):
        text, found = raw, []
    else:
        raise ValueError("unsupported parse_mode")
    text, found = _trim(text, found)
    found = _sorted_entities(found + detect_entities(text, found))
    return FormattedText(text, tuple(found))


def plain_to_html(text: str) -> str:
    """Escape plain text the way Telegram HTML expects (for recording raw HTML)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
