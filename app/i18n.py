"""English and Chinese interface text from Babel catalogs (`app/locale/<lang>/.../messages.po`)."""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"en": "English", "zh": "中文"}


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark a string for extraction; it is translated where it is shown."""
    return message


# Words the templates translate through a variable, listed so extraction finds them.
ROLE_NAMES = (N_("lead"), N_("annotator"), N_("reviewer"), N_("exporter"))
NOTE_FLAGS = (N_("unclear"), N_("risk"))
ASSIGNMENT_STATUSES = (N_("assigned"), N_("in_progress"), N_("submitted"), N_("skipped"))
IMPORT_STATUSES = (
    N_("queued"),
    N_("validating"),
    N_("writing"),
    N_("succeeded"),
    N_("failed"),
)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog for `lang`, built in memory from its .po file once per process."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def negotiate(accept_language: str | None, default: str) -> str:
    """Pick en or zh from an Accept-Language header."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return default


def gettext_for(lang: str, message: str) -> str:
    return translations(lang).gettext(message)
