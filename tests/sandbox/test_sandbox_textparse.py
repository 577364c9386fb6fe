"""Telegram's text rules as the simulator applies them (no server needed)."""

from __future__ import annotations

import html
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.markdown import parse_markdown
from sandbox.media import image_size, make_jpeg, photo_size_ladder
from sandbox.textparse import EntityParseError, detect_entities, format_text, parse_html, utf16_len


def test_utf16_counts_astral_characters_twice():
    assert utf16_len("问政") == 2
    assert utf16_len("👍") == 2
    assert utf16_len("a👍b") == 4


def test_supported_tags_become_entities():
    text, entities = parse_html(
        "<b>粗</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>x</s>"
        '<strike>k</strike><del>d</del><span class="tg-spoiler">p</span>'
        "<tg-spoiler>q</tg-spoiler>"
        '<a href="https://gov.cn">链接</a><code>c</code>'
        '<pre><code class="language-python">x=1</code></pre><blockquote>引</blockquote>'
        "<blockquote expandable>展</blockquote>"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
    )
    assert text == "粗sieunxkdpq链接cx=1引展👍"
    kinds = [e["type"] for e in entities]
    assert kinds == [
        "bold", "bold", "italic", "italic", "underline", "underline", "strikethrough",
        "strikethrough", "strikethrough", "spoiler", "spoiler", "text_link", "code", "pre",
        "blockquote", "expandable_blockquote", "custom_emoji",
    ]  # fmt: skip
    pre = next(e for e in entities if e["type"] == "pre")
    assert pre["language"] == "python"
    assert pre["length"] == 3
    link = next(e for e in entities if e["type"] == "text_link")
    assert link["url"] == "https://gov.cn"


def test_entity_offsets_are_utf16():
    text, entities = parse_html("👍<b>办</b>")
    assert text == "👍办"
    assert entities == [{"type": "bold", "offset": 2, "length": 1}]


def test_only_four_named_references_and_numeric_ones_are_decoded():
    text, _ = parse_html("&lt;&gt;&amp;&quot;&#20013;&#x6587;&nbsp;&copy;")
    assert text == '<>&"中文&nbsp;&copy;'


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<p>段落</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("<br/>", 'Unsupported start tag "br/" at byte offset 0'),
        ("办<b>理", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<a href=x'y>z</a>", "Unexpected end of name token at byte offset 8"),
        ("<tg-emoji emoji-id=abc>x</tg-emoji>", "Invalid custom emoji identifier specified"),
        ("<路径>", 'Unsupported start tag "路径" at byte offset 0'),
        ("中<x>", 'Unsupported start tag "x" at byte offset 3'),
    ],
)
def test_html_errors_use_tdlib_wording_and_byte_offsets(markup, error):
    with pytest.raises(EntityParseError) as caught:
        parse_html(markup)
    assert str(caught.value) == error


def test_anchor_without_href_links_its_text_and_bad_urls_are_dropped():
    _, entities = parse_html("<a>https://12345.gov.cn</a>")
    assert entities[0]["url"] == "https://12345.gov.cn"
    _, entities = parse_html('<a href="javascript:alert(1)">x</a>')
    assert entities == []


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=1)))
def test_escaped_text_round_trips(text):
    parsed, entities = parse_html(html.escape(text))
    assert parsed == text
    assert entities == []


def test_format_text_trims_whitespace_and_keeps_entities_aligned():
    formatted = format_text("  \n<b>办件</b> ok \n", "HTML")
    assert formatted.text == "办件 ok"
    assert formatted.entities == ({"type": "bold", "offset": 0, "length": 2},)


def test_format_text_rejects_unknown_parse_mode():
    with pytest.raises(ValueError, match="unsupported parse_mode"):
        format_text("x", "BBCode")


def test_auto_entities_commands_mentions_urls_hashtags():
    text = "/start@wenzheng_bot 请 @zhangsan 看 https://12345.gov.cn/a #住建 /help"
    found = {
        (e["type"], text[e["offset"] : e["offset"] + e["length"]]) for e in detect_entities(text)
    }
    assert found == {
        ("bot_command", "/start@wenzheng_bot"),
        ("mention", "@zhangsan"),
        ("url", "https://12345.gov.cn/a"),
        ("hashtag", "#住建"),
        ("bot_command", "/help"),
    }


def test_markdown_v2_reserved_characters_must_be_escaped():
    with pytest.raises(EntityParseError) as caught:
        parse_markdown("办结率 98.5%", v2=True)
    assert str(caught.value) == (
        "Character '.' is reserved and must be escaped with the preceding '\\'"
    )
    text, entities = parse_markdown("*办结* 98\\.5%", v2=True)
    assert text == "办结 98.5%"
    assert entities == [{"type": "bold", "offset": 0, "length": 2}]
    with pytest.raises(EntityParseError, match="Can't find end of Bold entity at byte offset 0"):
        parse_markdown("*未闭合", v2=True)


def test_legacy_markdown():
    text, entities = parse_markdown("*粗* _斜_ `c` [链接](https://gov.cn)", v2=False)
    assert text == "粗 斜 c 链接"
    assert [e["type"] for e in entities] == ["bold", "italic", "code", "text_link"]


def test_fake_jpeg_is_the_requested_size():
    data = make_jpeg(1280, 960, "label")
    assert data[:2] == b"\xff\xd8"
    assert data.endswith(b"\xff\xd9")
    assert image_size(data) == (1280, 960)
    assert make_jpeg(90, 68, "a") != make_jpeg(90, 68, "b")


def test_image_size_reads_png_and_rejects_other_bytes():
    png = (
        b"\x89PNG\r\n\x1a\n"
        + b"\x00\x00\x00\rIHDR"
        + (640).to_bytes(4, "big")
        + (480).to_bytes(4, "big")
    )
    assert image_size(png) == (640, 480)
    assert image_size(io.BytesIO(b"not an image").read()) is None


def test_photo_ladder_matches_telegram_sizes():
    assert photo_size_ladder(1280, 960) == [(90, 68), (320, 240), (800, 600), (1280, 960)]
    assert photo_size_ladder(50, 40) == [(50, 40)]
