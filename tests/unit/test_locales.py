"""The catalogs: every string in the code translated, placeholders and markup intact, the
reader's language chosen from Telegram's code, and the compiled catalogs actually used.

The strings are extracted afresh from the sources (not read from the committed .pot), so
a string added in code fails here, by name, until `./dev i18n` is run and it is translated.
"""

from __future__ import annotations

import gettext
import re
import string
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot import i18n

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("bot", "handlers", "scheduler")  # what `./dev i18n` extracts from
KEYWORDS = {**DEFAULT_KEYWORDS, "g": None, "N_": None}  # `./dev i18n`: -k g -k N_
METHOD_MAP = [("**.py", "python")]
PLURAL_FORMS = {"zh_Hans": 1, "zh_Hant": 1, "en": 2}
HAN = re.compile(r"[\u4e00-\u9fff]")
TAG = re.compile(r"<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9]*)[^>]*>")
COMMAND = re.compile(r"(?<![\w/<])/[a-z][a-z0-9_]*\b")  # /new, /case; not </b>

Key = tuple[str | None, str]  # (context, msgid)


# -- helpers ---------------------------------------------------------------------------------


def _key(message_id: str | tuple[str, ...], context: str | None) -> Key:
    return context, message_id[0] if isinstance(message_id, tuple) else message_id


def _label(key: Key) -> str:
    context, msgid = key
    return repr(msgid) if context is None else f"{msgid!r} (context {context!r})"


def _forms(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def _fields(text: str) -> Counter[str]:
    """The `{...}` replacement fields of a format string, as written (escaped braces aside)."""
    try:
        return Counter(
            "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            for _, name, spec, conv in string.Formatter().parse(text)
            if name is not None
        )
    except ValueError:  # not a valid format string: compare whatever looks like a field
        return Counter(re.findall(r"\{[^{}]*\}", text.replace("{{", "").replace("}}", "")))


def _tags(text: str) -> Counter[str]:
    return Counter(f"<{slash}{name.lower()}>" for slash, name in TAG.findall(text))


def _balanced(text: str) -> bool:
    stack: list[str] = []
    for slash, name in TAG.findall(text):
        if not slash:
            stack.append(name.lower())
        elif not stack or stack.pop() != name.lower():
            return False
    return not stack


def _symbols(text: str) -> Counter[str]:
    """Emoji and other pictographs (Unicode 'So'), which a translation keeps as they are."""
    return Counter(c for c in text if unicodedata.category(c) == "So")


def _po_path(language: str) -> Path:
    return i18n.LOCALES_DIR / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"


def _catalog(language: str) -> Catalog:
    with _po_path(language).open("rb") as handle:
        return read_po(handle)


def _first_translated(catalog: Catalog) -> str:
    for message in catalog:
        if message.id and isinstance(message.id, str) and message.string and not message.context:
            return message.id
    raise AssertionError("the catalog has no translated entry")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Today's source strings, extracted like `./dev i18n` does, into a temporary template."""
    template = Catalog(project="wenzheng")
    dirs = [ROOT / name for name in SOURCE_DIRS if (ROOT / name).is_dir()]
    assert dirs, "none of bot/, handlers/, scheduler/ found"
    for folder in dirs:
        for filename, lineno, message, comments, context in extract_from_dir(
            folder, METHOD_MAP, keywords=KEYWORDS
        ):
            template.add(
                message,
                None,
                [(f"{folder.name}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    pot = tmp_path_factory.mktemp("i18n") / f"{i18n.DOMAIN}.pot"
    with pot.open("wb") as handle:
        write_po(handle, template)
    with pot.open("rb") as handle:
        return read_po(handle)


@pytest.fixture(scope="module", params=i18n.LANGUAGES)
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def catalog(language: str) -> Catalog:
    assert _po_path(language).exists(), f"{_po_path(language)} is missing; run ./dev i18n"
    return _catalog(language)


# -- completeness ----------------------------------------------------------------------------


def test_the_sources_have_strings_to_translate(extracted: Catalog):
    ids = {message.id for message in extracted if message.id}
    assert len(ids) > 50
    assert "Submitted." in ids


def test_every_source_string_is_translated(extracted: Catalog, catalog: Catalog, language: str):
    entries = {_key(m.id, m.context): m for m in catalog if m.id}
    not_in_catalog: list[str] = []
    untranslated: list[str] = []
    fuzzy: list[str] = []
    plural_mismatch: list[str] = []
    for wanted in extracted:
        if not wanted.id:
            continue
        key = _key(wanted.id, wanted.context)
        entry = entries.get(key)
        if entry is None:
            not_in_catalog.append(_label(key))
            continue
        if entry.fuzzy:
            fuzzy.append(_label(key))
        if wanted.pluralizable and (not entry.pluralizable or tuple(entry.id) != tuple(wanted.id)):
            plural_mismatch.append(_label(key))
            continue
        forms = _forms(entry.string)
        expected = catalog.num_plurals if wanted.pluralizable else 1
        if len(forms) != expected or not all(form.strip() for form in forms):
            untranslated.append(_label(key))
    problems = [
        (not_in_catalog, "not in the catalog (run ./dev i18n, then translate)"),
        (untranslated, "without a translation (every plural form filled)"),
        (fuzzy, "marked fuzzy (check the translation, then remove the flag)"),
        (plural_mismatch, "with a different singular/plural pair in the catalog (./dev i18n)"),
    ]
    report = [
        f"{len(items)} msgid(s) {what}:\n" + "\n".join(f"  - {item}" for item in sorted(items))
        for items, what in problems
        if items
    ]
    assert not report, f"{_po_path(language)}:\n" + "\n".join(report)


def test_the_catalog_header_is_right(catalog: Catalog, language: str):
    headers = dict(catalog.mime_headers)
    assert headers.get("Language") == language
    assert catalog.num_plurals == PLURAL_FORMS[language], headers.get("Plural-Forms")
    assert not catalog.fuzzy, "the header is marked fuzzy"
    stray = [
        _label(_key(m.id, m.context))
        for m in catalog
        if m.id and m.pluralizable and len(_forms(m.string)) != PLURAL_FORMS[language]
    ]
    assert not stray, f"plural entries without exactly {PLURAL_FORMS[language]} msgstr: {stray}"
    fuzzy = [_label(_key(m.id, m.context)) for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy entries: {fuzzy}"


# -- what a translation must keep ------------------------------------------------------------


def test_translations_keep_placeholders_markup_commands_and_emoji(catalog: Catalog, language: str):
    problems: list[str] = []
    for message in catalog:
        if not message.id:
            continue
        ids = _forms(message.id)
        for index, translation in enumerate(_forms(message.string)):
            if not translation:
                continue  # reported by the completeness test
            # The one form of a language without plurals stands for every count.
            source = ids[min(index, len(ids) - 1)] if catalog.num_plurals > 1 else ids[-1]
            where = f"{source!r} → {translation!r}"
            if _fields(translation) != _fields(source):
                problems.append(
                    f"placeholders {sorted(_fields(translation).elements())} ≠ "
                    f"{sorted(_fields(source).elements())}: {where}"
                )
            if _tags(translation) != _tags(source):
                problems.append(f"HTML tags differ: {where}")
            elif _balanced(source) and not _balanced(translation):
                problems.append(f"HTML tags not balanced: {where}")
            if Counter(COMMAND.findall(translation)) != Counter(COMMAND.findall(source)):
                problems.append(f"/commands differ: {where}")
            if translation.count("\n") != source.count("\n"):
                problems.append(f"line breaks differ: {where}")
            if _symbols(translation) != _symbols(source):
                problems.append(f"emoji differ: {where}")
    assert not problems, f"{_po_path(language)}:\n" + "\n".join(f"  - {p}" for p in problems)


# -- choosing and using the language ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("zh-hans", "zh_Hans"),
        ("zh-CN", "zh_Hans"),
        ("zh", "zh_Hans"),
        ("zh-Hans-CN", "zh_Hans"),
        (None, "zh_Hans"),
        ("", "zh_Hans"),
        ("zh-hant", "zh_Hant"),
        ("zh-TW", "zh_Hant"),
        ("zh-HK", "zh_Hant"),
        ("zh-MO", "zh_Hant"),
        ("zh_TW", "zh_Hant"),
        ("en", "en"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("fr", "zh_Hans"),
        ("ru", "zh_Hans"),
    ],
)
def test_language_for_a_telegram_code(code: str | None, expected: str):
    assert i18n.language_for(code) == expected


def test_the_translator_uses_the_catalog(catalog: Catalog, language: str):
    t = i18n.translator(language)
    assert t.language == language
    wrong: list[str] = []
    for message in catalog:
        forms = _forms(message.string)
        if not message.id or message.fuzzy or not forms or not all(forms):
            continue
        if message.context is not None:
            continue  # Translator has no pgettext
        if message.pluralizable:
            singular, plural = message.id
            got = tuple(t.ngettext(singular, plural, n) for n in (1, 2, 5))
            plural_index = gettext.c2py(catalog.plural_expr)
            want = tuple(forms[plural_index(n)] for n in (1, 2, 5))
        else:
            got, want = t.gettext(message.id), message.string
        if got != want:
            wrong.append(f"{message.id!r}: {got!r} (catalog: {want!r})")
    assert not wrong, f"the compiled {language} catalog is out of date:\n" + "\n".join(wrong)

    sample = "Submitted." if catalog.get("Submitted.") else _first_translated(catalog)
    if language.startswith("zh"):
        assert HAN.search(t.gettext(sample)), t.gettext(sample)
    else:
        assert t.gettext(sample) == sample


def test_simplified_and_traditional_are_different_catalogs():
    sample = "Your privacy" if _catalog("zh_Hant").get("Your privacy") else "Submitted."
    hans = i18n.translator("zh_Hans").gettext(sample)
    hant = i18n.translator("zh_Hant").gettext(sample)
    assert HAN.search(hans) and HAN.search(hant)
    assert hans != hant


def test_an_unknown_language_falls_back_to_simplified_chinese():
    assert i18n.translator("fr").language == "zh_Hans"
    assert i18n.translator(None).language == "zh_Hans"
