"""Extract interface text into `app/locale/<lang>/LC_MESSAGES/messages.po` and keep it current.

Run `python -m app.i18n_catalog` after adding or changing interface text: it merges the
msgids found in the templates and the Python code into the catalog (existing translations are
kept, new msgids are added untranslated, msgids no longer used are dropped), writes the file
back sorted and without changing dates, and lists what still needs a translation (exit code 1
if anything does). `--check` reports the same without writing.

Where interface text comes from:
- templates (`templates/**/*.html`): `_("...")` through the Jinja i18n extension;
- Python (`app/**/*.py`): `N_("...")`, `translate(request, "...")` and the first argument of
  the domain errors (`NotFound`, `Forbidden`, `Conflict`, `Invalid`, `NotAuthenticated`);
- form schemas (`app/**/schemas.py`): `ValueError("...")` raised by validators, shown on forms.

Not scanned: `app/formats/` and the pure metric modules of `app/agreement/` (data modules
whose errors are not interface text) and `app/cli.py` (terminal output, English only).
f-strings cannot be extracted.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract as babel_extract
from babel.messages.pofile import read_po, write_po

from app.config import ROOT_DIR
from app.i18n import LOCALE_DIR

TEMPLATES_DIR = ROOT_DIR / "templates"
APP_DIR = ROOT_DIR / "app"

# Relative to ROOT_DIR; a directory excludes everything below it.
EXCLUDED = (
    "app/formats",
    "app/agreement/metrics.py",
    "app/agreement/metrics_alpha.py",
    "app/agreement/metrics_encode.py",
    "app/agreement/metrics_kappa.py",
    "app/agreement/metrics_raters.py",
    "app/agreement/metrics_types.py",
    "app/cli.py",
)

# A fixed date keeps the file identical from one run to the next.
FIXED_DATE = datetime(2025, 1, 1, tzinfo=UTC)

HEADER_COMMENT = (
    "# Interface text of psy-annotator.\n"
    "# Generated and merged by `python -m app.i18n_catalog`: edit only the msgstr lines;\n"
    "# new msgids come from the templates and the Python code."
)

# Babel keyword specs: None means "the first argument is the message".
Keywords = Mapping[str, Any]

TEMPLATE_KEYWORDS: Keywords = {
    "_": None,
    # What `{% trans %}` blocks compile to; listed so such blocks are not skipped.
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
}
PYTHON_KEYWORDS: Keywords = {
    "N_": None,
    "_": None,
    "translate": (2,),
    "NotFound": None,
    "Forbidden": None,
    "Conflict": None,
    "Invalid": None,
    "NotAuthenticated": None,
}
SCHEMA_KEYWORDS: Keywords = {**PYTHON_KEYWORDS, "ValueError": None}

JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "silent": "false"}


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _excluded(relative: str) -> bool:
    return any(relative == item or relative.startswith(item + "/") for item in EXCLUDED)


def template_files(root: Path = ROOT_DIR) -> list[Path]:
    return sorted((root / "templates").rglob("*.html"))


def python_files(root: Path = ROOT_DIR) -> list[Path]:
    files = (root / "app").rglob("*.py")
    return sorted(p for p in files if not _excluded(_relative(p, root)))


def _add_messages(
    catalog: Catalog,
    path: Path,
    root: Path,
    method: str,
    keywords: Keywords,
    options: Mapping[str, str] | None = None,
) -> None:
    location = _relative(path, root)
    with path.open("rb") as fh:
        found = babel_extract(method, fh, keywords=keywords, options=options or {})
        for lineno, message, comments, context in found:
            if not message:
                continue
            catalog.add(
                message,
                None,
                locations=[(location, lineno)],
                auto_comments=comments,
                context=context,
                flags=_flags(message),
            )


def _flags(message: str | Sequence[str]) -> tuple[str, ...]:
    texts = [message] if isinstance(message, str) else list(message)
    return ("python-format",) if any("%(" in t for t in texts) else ()


def _new_catalog(lang: str | None) -> Catalog:
    return Catalog(
        locale=lang,
        header_comment=HEADER_COMMENT,
        project="psy-annotator",
        version="1",
        creation_date=FIXED_DATE,
        revision_date=FIXED_DATE,
        last_translator="psy-annotator",
        language_team="psy-annotator",
        fuzzy=False,
    )


def extract(root: Path = ROOT_DIR) -> Catalog:
    """Every msgid of the interface, with the files it appears in."""
    catalog = _new_catalog(None)
    for path in template_files(root):
        _add_messages(
            catalog, path, root, "jinja2.ext:babel_extract", TEMPLATE_KEYWORDS, JINJA_OPTIONS
        )
    for path in python_files(root):
        keywords = SCHEMA_KEYWORDS if path.name == "schemas.py" else PYTHON_KEYWORDS
        _add_messages(catalog, path, root, "python", keywords)
    return catalog


def _key(message: Message) -> str | tuple[str, str]:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return msgid if message.context is None else (msgid, message.context)


def _strings(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _is_translated(message: Message) -> bool:
    strings = _strings(message.string)
    return not message.fuzzy and bool(strings) and all(s and s.strip() for s in strings)


def merge(template: Catalog, existing: Catalog | None, lang: str) -> Catalog:
    """The template's msgids with the translations `existing` has for them; nothing else."""
    old: dict[str | tuple[str, str], Message] = {}
    if existing is not None:
        old = {_key(m): m for m in existing if m.id}
    merged = _new_catalog(lang)
    for message in template:
        if not message.id:
            continue
        previous = old.get(_key(message))
        string: str | tuple[str, ...] | list[str] = "" if isinstance(message.id, str) else ("",)
        flags = set(message.flags)
        user_comments: list[str] = []
        if previous is not None and type(previous.id) is type(message.id):
            string = previous.string or string
            flags |= {"fuzzy"} & set(previous.flags)
            user_comments = list(previous.user_comments)
        merged.add(
            message.id,
            string,
            locations=message.locations,
            flags=sorted(flags),
            auto_comments=message.auto_comments,
            user_comments=user_comments,
            context=message.context,
        )
    return merged


def untranslated(catalog: Catalog) -> list[str]:
    """Msgids without a (non-fuzzy, non-empty) translation, sorted."""
    missing = {_msgid(m) for m in catalog if m.id and not _is_translated(m)}
    return sorted(missing)


def _msgid(message: Message) -> str:
    return message.id if isinstance(message.id, str) else message.id[0]


def render_po(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    write_po(
        buf,
        catalog,
        width=0,  # no wrapping: one msgid and one msgstr line each, easy to edit and diff
        sort_output=True,
        ignore_obsolete=True,
        include_lineno=False,
    )
    return _stable_header(buf.getvalue())


# Header lines left out: the Babel version (so upgrading Babel does not rewrite the file) and
# Babel's placeholder bug address.
_DROPPED_HEADER_LINES = (b'"Generated-By: ', b'"Report-Msgid-Bugs-To: EMAIL@ADDRESS')


def _stable_header(po: bytes) -> bytes:
    lines = po.split(b"\n")
    return b"\n".join(line for line in lines if not line.startswith(_DROPPED_HEADER_LINES))


def read_catalog(lang: str, path: Path | None = None) -> Catalog | None:
    path = path or po_path(lang)
    if not path.exists():
        return None
    with path.open("rb") as fh:
        return read_po(fh, locale=lang, abort_invalid=True)


def updated_catalog(lang: str = "zh", path: Path | None = None) -> Catalog:
    """The catalog `update_catalog` would write, without writing it."""
    return merge(extract(), read_catalog(lang, path), lang)


def update_catalog(lang: str = "zh", path: Path | None = None) -> list[str]:
    """Merge the extracted msgids into the `lang` catalog; the msgids still untranslated."""
    path = path or po_path(lang)
    catalog = updated_catalog(lang, path)
    content = render_po(catalog)
    if not path.exists() or path.read_bytes() != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return untranslated(catalog)


def is_current(lang: str = "zh", path: Path | None = None) -> bool:
    """Whether the file on disk is exactly what `update_catalog` would write."""
    path = path or po_path(lang)
    return path.exists() and path.read_bytes() == render_po(updated_catalog(lang, path))


def _report(lines: Iterable[str]) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.i18n_catalog", description=__doc__)
    parser.add_argument("--lang", default="zh", help="catalog to update (default: zh)")
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the file is out of date"
    )
    args = parser.parse_args(argv)
    lang: str = args.lang
    path = po_path(lang)
    if args.check:
        missing = untranslated(updated_catalog(lang, path))
        stale = not is_current(lang, path)
        if stale:
            _report([f"{_relative(path, ROOT_DIR)} is out of date: run python -m app.i18n_catalog"])
    else:
        missing = update_catalog(lang, path)
        stale = False
    count = len(extract())
    if missing:
        _report([f"{len(missing)} of {count} msgids have no {lang} translation:"])
        _report(f"  {m!r}" for m in missing)
    else:
        _report([f"all {count} msgids are translated ({_relative(path, ROOT_DIR)})"])
    return 1 if missing or stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
