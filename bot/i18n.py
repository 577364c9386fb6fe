"""Languages: gettext catalogs in `locales/`, chosen per user, formatted with Babel.

Source strings (msgids) are English; Simplified Chinese is the default language. The
catalogs are compiled from the `.po` files on first use when the `.mo` is missing or
older, so a fresh clone needs no build step.
"""

from __future__ import annotations

import gettext
import logging
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_percent

logger = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "wenzheng"
DEFAULT_LANGUAGE = "zh_Hans"
LANGUAGES = ("zh_Hans", "zh_Hant", "en")
LANGUAGE_NAMES = {"zh_Hans": "简体中文", "zh_Hant": "繁體中文", "en": "English"}
_BABEL_LOCALES = {"zh_Hans": "zh_Hans_CN", "zh_Hant": "zh_Hant_TW", "en": "en_GB"}
# Telegram's language_code → our language. Traditional script for Taiwan, Hong Kong, Macau.
_TRADITIONAL = ("zh-hant", "zh-tw", "zh-hk", "zh-mo")


def language_for(code: str | None) -> str:
    """Our language for a Telegram `language_code` (IETF tag); Simplified Chinese by default."""
    if not code:
        return DEFAULT_LANGUAGE
    tag = code.lower().replace("_", "-")
    if tag.startswith("zh"):
        return "zh_Hant" if tag.startswith(_TRADITIONAL) else "zh_Hans"
    if tag.startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


def _compiled(language: str) -> Path | None:
    folder = LOCALES_DIR / language / "LC_MESSAGES"
    po = folder / f"{DOMAIN}.po"
    mo = folder / f"{DOMAIN}.mo"
    if not po.exists():
        return mo if mo.exists() else None
    if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
        with po.open("rb") as source:
            catalog = read_po(source, locale=_BABEL_LOCALES[language])
        temporary = mo.with_suffix(".mo.tmp")
        with temporary.open("wb") as target:
            write_mo(target, catalog)
        temporary.replace(mo)  # atomic: two processes compiling at once never see half a file
    return mo


class Translator:
    """Everything language-specific for one reader: words, dates, numbers."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self.locale = Locale.parse(_BABEL_LOCALES[self.language])
        mo = _compiled(self.language)
        if mo is not None:
            with mo.open("rb") as handle:
                self._catalog: gettext.NullTranslations = gettext.GNUTranslations(handle)
        else:
            logger.warning("no catalog for %s; showing source strings", self.language)
            self._catalog = gettext.NullTranslations()

    def gettext(self, message: str) -> str:
        """Translate a message."""
        return self._catalog.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """Translate a message with a count."""
        return self._catalog.ngettext(singular, plural, n)

    def datetime(self, moment: datetime, tz: object) -> str:
        """A date and time, as a reader of this language writes it, in the city's time zone."""
        local = moment.astimezone(tz)  # type: ignore[arg-type]
        pattern = "yyyy年M月d日 HH:mm" if self.language != "en" else "d MMM yyyy, HH:mm"
        return format_datetime(local, pattern, locale=self.locale)

    def percent(self, value: float | None) -> str:
        """A rate as a percentage ('—' when there is nothing to divide by)."""
        if value is None:
            return "—"
        return format_percent(value, "#,##0.0%", locale=self.locale)


@lru_cache(maxsize=8)
def translator(language: str | None) -> Translator:
    """The shared translator of a language."""
    return Translator(language or DEFAULT_LANGUAGE)


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here."""
    return message
