"""The zh catalog covers every interface string, and the extraction/merge tool behaves.

No database: these tests only read the templates, the Python sources and the .po file.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from starlette.requests import Request

from app.i18n import LOCALE_DIR, gettext_for, negotiate
from app.i18n_catalog import (
    extract,
    is_current,
    merge,
    po_path,
    read_catalog,
    render_po,
    untranslated,
    update_catalog,
)
from app.templating import templates

FIX = "run `python -m app.i18n_catalog` and translate the listed msgids in"
PLACEHOLDER = re.compile(r"%\(\w+\)[sdifr]|%[sdifr%]|\{\w*\}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else " ".join(value)


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    return extract()


@pytest.fixture(scope="module")
def zh() -> Catalog:
    catalog = read_catalog("zh")
    assert catalog is not None, f"{po_path('zh')} is missing: {FIX} it"
    return catalog


# --- the shipped catalog ---------------------------------------------------------------------


def test_catalog_lives_where_the_runtime_loads_it() -> None:
    assert po_path("zh") == LOCALE_DIR / "zh" / "LC_MESSAGES" / "messages.po"
    assert po_path("zh").is_file()


def test_every_extracted_msgid_has_a_zh_translation(extracted: Catalog, zh: Catalog) -> None:
    translated = {m.id: m.string for m in zh if m.id and not m.fuzzy}
    missing = sorted(
        _text(m.id) for m in extracted if m.id and not _text(translated.get(m.id, "")).strip()
    )
    assert not missing, f"{len(missing)} msgids lack a zh translation; {FIX} {po_path('zh')}:\n" + (
        "\n".join(f"  {m!r}" for m in missing)
    )


def test_catalog_parses_without_obsolete_or_fuzzy_entries(extracted: Catalog, zh: Catalog) -> None:
    assert len(zh) > 0
    assert not zh.obsolete, f"obsolete (#~) entries: {sorted(zh.obsolete)}; {FIX} {po_path('zh')}"
    fuzzy = sorted(_text(m.id) for m in zh if m.id and m.fuzzy)
    assert not fuzzy, f"fuzzy entries need review (then remove the flag): {fuzzy}"
    unused = sorted({_text(m.id) for m in zh if m.id} - {_text(m.id) for m in extracted if m.id})
    assert not unused, f"msgids no longer in the code: {unused}; {FIX} {po_path('zh')}"
    assert untranslated(zh) == []


def test_catalog_file_is_what_the_tool_writes() -> None:
    assert is_current("zh"), f"{po_path('zh')} is out of date (entries or order); {FIX} it"


@pytest.mark.parametrize("lang", ["zh"])
def test_placeholders_match(lang: str) -> None:
    catalog = read_catalog(lang)
    assert catalog is not None
    wrong = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        expected = Counter(PLACEHOLDER.findall(_text(message.id)))
        strings = [message.string] if isinstance(message.string, str) else message.string
        for string in strings:
            if Counter(PLACEHOLDER.findall(string)) != expected:
                wrong.append((message.id, string))
    assert wrong == []


def test_translations_are_chinese_with_full_width_punctuation(zh: Catalog) -> None:
    han = re.compile(r"[\u4e00-\u9fff]")
    for message in zh:
        if not message.id or not isinstance(message.string, str):
            continue
        if han.search(message.string):
            # an ASCII sentence mark right after a Han character reads wrong in Chinese
            assert not re.search(r"[\u4e00-\u9fff][.,:;!?]", message.string), message.string
    assert zh.get("Log in") is not None
    assert zh["Log in"].string == "登录"
    assert zh["lead"].string == "项目负责人"
    assert zh["annotator"].string == "标注员"


# --- runtime use -----------------------------------------------------------------------------


def _request(path: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("testserver", 80),
        "root_path": "",
        "path": path,
        "query_string": b"",
        "headers": [],
    }
    return Request(scope)


def _render_login(lang: str) -> tuple[str, str, str]:
    html = templates.env.get_template("auth/login.html").render(
        lang=lang,
        request=_request("/login"),
        csrf_token="x",
        next="/projects",
        email="",
        user=None,
    )
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    heading = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert title is not None
    assert heading is not None
    return html, title.group(1), heading.group(1)


def test_login_page_renders_in_chinese() -> None:
    html, title, heading = _render_login("zh")
    assert "登录" in title
    assert heading.strip() == "登录"
    assert "Log in" not in title
    assert "Log in" not in heading
    assert "密码" in html
    assert 'lang="zh-Hans"' in html


def test_login_page_renders_in_english() -> None:
    html, title, heading = _render_login("en")
    assert "Log in" in title
    assert heading.strip() == "Log in"
    assert "登录" not in html


def test_python_side_messages_translate() -> None:
    assert gettext_for("zh", "Wrong email or password.") == "邮箱或密码错误。"
    assert gettext_for("zh", "reviewer") == "审核员"
    assert gettext_for("en", "reviewer") == "reviewer"


@pytest.mark.parametrize(
    ("header", "default", "expected"),
    [
        ("zh-CN,zh;q=0.9", "en", "zh"),
        ("en-US", "zh", "en"),
        ("en-US,en;q=0.9,zh;q=0.8", "zh", "en"),
        ("fr", "en", "en"),
        ("fr", "zh", "zh"),
        (None, "zh", "zh"),
    ],
)
def test_negotiate(header: str | None, default: str, expected: str) -> None:
    assert negotiate(header, default) == expected


# --- extraction ------------------------------------------------------------------------------


def test_extraction_finds_every_kind_of_marker(extracted: Catalog) -> None:
    def files(msgid: str) -> set[str]:
        message = extracted.get(msgid)
        assert message is not None, f"{msgid!r} was not extracted"
        return {path for path, _ in message.locations}

    assert "templates/auth/login.html" in files("Log in")  # _() in a template
    assert "app/i18n.py" in files("lead")  # N_()
    assert "app/projects/routes.py" in files("Unknown role.")  # translate(request, ...)
    assert "app/projects/service.py" in files("No such project.")  # NotFound(...)
    assert "app/accounts/schemas.py" in files("Enter a valid email address.")  # ValueError
    every = {path for m in extracted for path, _ in m.locations}
    skipped = ("app/formats/", "app/agreement/metrics", "app/cli.py")
    assert "app/agreement/routes.py" in files(
        "Share of rater pairs on a unit that chose the same value; it ignores chance."
    )
    assert not [p for p in every if p.startswith(skipped)]


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_extraction_keywords_on_a_small_tree(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "templates/page.html",
        '{% block t %}{{ _("Hello") }} {{ _(r.value) }} {{ _("Hi %(n)s", n=1) }}{% endblock %}',
    )
    _write(
        tmp_path,
        "app/routes.py",
        "x = N_('Marked')\n"
        "y = translate(request, 'Second argument')\n"
        "raise NotFound('Gone.', slug=slug)\n"
        "raise ValueError('Not interface text')\n"
        "z = f'{name} formatted'\n",
    )
    _write(tmp_path, "app/things/schemas.py", "raise ValueError('Enter a number.')\n")
    _write(tmp_path, "app/formats/reader.py", "raise Invalid('Data module')\n")
    _write(tmp_path, "app/cli.py", "raise Invalid('terminal only')\n")

    catalog = extract(tmp_path)

    assert sorted(_text(m.id) for m in catalog if m.id) == [
        "Enter a number.",
        "Gone.",
        "Hello",
        "Hi %(n)s",
        "Marked",
        "Second argument",
    ]
    assert catalog["Hi %(n)s"].python_format
    assert catalog["Hello"].locations == [("templates/page.html", 1)]


# --- merging ---------------------------------------------------------------------------------


def _template(*msgids: str) -> Catalog:
    catalog = Catalog()
    for msgid in msgids:
        catalog.add(msgid, locations=[("templates/x.html", 1)])
    return catalog


def test_merge_keeps_translations_adds_new_and_drops_obsolete() -> None:
    existing = Catalog(locale="zh")
    existing.add("Save", "保存")
    existing.add("Gone", "已删除")
    existing.add("Guessed", "猜测", flags=["fuzzy"])

    merged = merge(_template("Save", "New", "Guessed"), existing, "zh")

    assert {m.id: m.string for m in merged if m.id} == {
        "Save": "保存",
        "New": "",
        "Guessed": "猜测",
    }
    assert merged["Guessed"].fuzzy
    assert untranslated(merged) == ["Guessed", "New"]


def test_written_catalog_is_sorted_and_reproducible() -> None:
    first = render_po(merge(_template("b", "a", "c"), None, "zh"))
    second = render_po(merge(_template("c", "b", "a"), None, "zh"))
    assert first == second
    text = first.decode()
    assert text.index('msgid "a"') < text.index('msgid "b"') < text.index('msgid "c"')
    assert "POT-Creation-Date: 2025-01-01 00:00+0000" in text
    assert "Generated-By" not in text


def test_update_catalog_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "messages.po"
    missing = update_catalog("zh", path)
    assert missing == sorted(_text(m.id) for m in extract() if m.id)
    first = path.read_bytes()

    catalog = read_catalog("zh", path)
    assert catalog is not None
    catalog["Log in"].string = "登录"
    path.write_bytes(render_po(catalog))

    missing = update_catalog("zh", path)
    assert "Log in" not in missing
    assert len(missing) == len(extract()) - 1
    assert update_catalog("zh", path) == missing
    assert path.read_bytes() != first
    assert is_current("zh", path)
