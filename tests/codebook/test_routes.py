"""Codebook pages: read by every member, edited by leads, with htmx fragments and JSON."""

from __future__ import annotations

import json

import httpx
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.codebook import core
from app.models import AuditEvent, Project, Role, User
from tests.codebook.helpers import (
    add_source_values,
    current_version,
    fresh_snapshot,
    label_by_value,
    seeded_project,
)
from tests.factories import add_member, login, make_project, make_user

Sessions = async_sessionmaker[AsyncSession]


def _soup(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


async def _lead_session(
    client: httpx.AsyncClient, db: AsyncSession, *, language: str = "en"
) -> tuple[User, Project, str]:
    lead = await make_user(db, language=language)
    project = await seeded_project(db, lead=lead)
    return lead, project, await login(client, lead)


def _label_form(label: object, **changes: str) -> dict[str, str]:
    fields = {k: getattr(label, k) or "" for k in ("name_en", "name_zh", "description", "hotkey")}
    return {**fields, **changes}


async def test_every_member_reads_the_codebook_as_guidelines(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    lead = await make_user(db)
    project = await seeded_project(db, lead=lead)
    annotator = await make_user(db, language="zh")
    await add_member(db, project, annotator, Role.annotator)
    await login(client, annotator)
    page = await client.get(f"/projects/{project.slug}/codebook")
    assert page.status_code == 200
    soup = _soup(page)
    sections = soup.select("section.dimension")
    assert [s["id"] for s in sections][:4] == [
        "dim-psychotherapy",
        "dim-topic",
        "dim-emotion",
        "dim-strategy",
    ]
    assert len(sections) == 8
    emotion = soup.select_one("#dim-emotion")
    assert emotion is not None
    heading = emotion.select_one("h3")
    assert heading is not None
    assert heading.get_text().split()[0] == "情绪"
    rows = emotion.select("tbody tr")
    assert len(rows) == 11
    headers = emotion.select("table thead th")
    assert len(headers) == 5  # no edit column for an annotator
    assert all(th.get("scope") == "col" for th in headers)
    first = rows[0].select_one("th[scope=row]")
    assert first is not None
    assert first.get_text().startswith("焦虑")
    assert soup.select("form[method=post][action*='/codebook']") == []  # no edit forms
    assert soup.select_one("#codebook-import") is None


async def test_annotator_is_refused_every_change(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: Sessions
) -> None:
    lead = await make_user(db)
    project = await seeded_project(db, lead=lead)
    anger = await label_by_value(db, project, "emotion", "Anger")
    annotator = await make_user(db)
    await add_member(db, project, annotator, Role.annotator)
    token = await login(client, annotator)
    before = await fresh_snapshot(sessionmaker, project.id)
    base = f"/projects/{project.slug}/codebook"
    label = f"{base}/dimensions/emotion/labels/{anger.id}"
    posts = {
        f"{base}/dimensions": {"key": "x", "kind": "text", "name_en": "X", "name_zh": "X"},
        f"{base}/dimensions/emotion": {"name_en": "E", "name_zh": "E", "scope": "turn"},
        f"{base}/dimensions/guide/delete": {},
        f"{base}/dimensions/emotion/labels": {"value": "V", "name_en": "V", "name_zh": "V"},
        f"{base}/dimensions/emotion/merge": {"label": str(anger.id), "into": "1"},
        label: _label_form(anger, name_en="Rage"),
        f"{label}/delete": {},
        f"{base}/import": {"json": "{}"},
    }
    for url, data in posts.items():
        response = await client.post(url, data={**data, "csrf_token": token})
        assert response.status_code == 403, url
    assert await fresh_snapshot(sessionmaker, project.id) == before
    download = await client.get(f"{base}.json")
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.json() == before
    api = await client.get(f"/api/v1/projects/{project.slug}/codebook")
    assert api.status_code == 200
    assert api.json() == {**before, "version": 1}


async def test_non_member_gets_404(client: httpx.AsyncClient, db: AsyncSession) -> None:
    project = await seeded_project(db, lead=await make_user(db))
    await login(client, await make_user(db))
    for url in (f"/projects/{project.slug}/codebook", f"/projects/{project.slug}/codebook.json"):
        assert (await client.get(url)).status_code == 404
    assert (await client.get(f"/api/v1/projects/{project.slug}/codebook")).status_code == 404


async def test_page_of_a_project_without_codebook(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)  # no codebook seeded
    await login(client, lead)
    page = await client.get(f"/projects/{project.slug}/codebook")
    assert page.status_code == 200
    assert _soup(page).select("section.dimension") == []
    assert (await client.get(f"/projects/{project.slug}/codebook.json")).json()["dimensions"] == []


async def test_lead_renames_a_label_without_javascript(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: Sessions
) -> None:
    _, project, token = await _lead_session(client, db)
    anger = await label_by_value(db, project, "emotion", "Anger")
    url = f"/projects/{project.slug}/codebook/dimensions/emotion/labels/{anger.id}"
    form = _label_form(anger, name_en="Anger <b>irritation</b>", name_zh="愤怒", hotkey="z")
    response = await client.post(url, data={**form, "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"].endswith("/codebook?saved=emotion#dim-emotion")
    snapshot = await fresh_snapshot(sessionmaker, project.id)
    label = snapshot["dimensions"][2]["labels"][3]
    assert (label["value"], label["name_en"], label["hotkey"]) == (
        "Anger",
        "Anger <b>irritation</b>",
        "z",
    )
    assert await current_version(db, project) == 2
    page = await client.get(response.headers["location"])
    soup = _soup(page)
    assert soup.select_one("#dim-emotion p.notice[role=status]") is not None
    assert soup.select_one(f"#label-{anger.id} b") is None  # user text is escaped
    assert "Anger &lt;b&gt;irritation&lt;/b&gt;" in page.text
    history = soup.select("#codebook-history tbody tr")
    assert [row["data-version"] for row in history] == ["2", "1"]
    assert "'Anger'" in history[0].get_text()


async def test_htmx_edit_returns_only_the_dimension_fragment(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    _, project, token = await _lead_session(client, db)
    fear = await label_by_value(db, project, "emotion", "Fear")
    url = f"/projects/{project.slug}/codebook/dimensions/emotion/labels/{fear.id}"
    response = await client.post(
        url,
        data={**_label_form(fear, name_en="Fear and worry"), "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    soup = _soup(response)
    assert soup.select_one("header.topbar") is None
    roots = list(soup.find_all(recursive=False))
    assert [el.get("id") for el in roots] == ["dim-emotion", "codebook-history"]
    assert roots[1].get("hx-swap-oob") == "true"
    version = soup.select_one("#h-codebook-history")
    assert version is not None
    assert version.get_text() == "Codebook version 2"
    row = soup.select_one(f"#label-{fear.id} th[scope=row]")
    assert row is not None
    assert row.get_text().startswith("Fear and worry")
    assert soup.select_one("#dim-emotion p.notice[role=status]") is not None


async def test_duplicate_hotkey_is_a_422_with_the_message(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    _, project, token = await _lead_session(client, db)
    fear = await label_by_value(db, project, "emotion", "Fear")
    url = f"/projects/{project.slug}/codebook/dimensions/emotion/labels/{fear.id}"
    for headers in ({}, {"HX-Request": "true"}):
        response = await client.post(
            url,
            data={**_label_form(fear, hotkey="1", name_en="Changed"), "csrf_token": token},
            headers=headers,
        )
        assert response.status_code == 422
        soup = _soup(response)
        error = soup.select_one(f"#e-label-{fear.id}-hotkey")
        assert error is not None
        assert error.get_text() == "The hotkey “1” is already used by “Anxiety” in this dimension."
        typed = soup.select_one(f"#f-label-{fear.id}-name_en")
        assert typed is not None
        assert typed["value"] == "Changed"
        assert (soup.select_one("header.topbar") is None) == bool(headers)
    assert await current_version(db, project) == 1


async def test_invalid_form_is_a_422_per_field(client: httpx.AsyncClient, db: AsyncSession) -> None:
    _, project, token = await _lead_session(client, db)
    response = await client.post(
        f"/projects/{project.slug}/codebook/dimensions",
        data={
            "key": "Bad Key",
            "kind": "label",
            "name_en": "",
            "name_zh": "x",
            "csrf_token": token,
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    soup = _soup(response)
    assert soup.select_one("#dimensions") is not None
    key_error = soup.select_one("#e-new-key")
    assert key_error is not None
    assert "lowercase letters" in key_error.get_text()
    assert soup.select_one("#e-new-name_en") is not None
    assert soup.select_one("#e-new-scope") is not None


async def test_removing_a_used_label_is_refused_with_the_count(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: Sessions
) -> None:
    _, project, token = await _lead_session(client, db)
    await add_source_values(db, project, "emotion", [["Anger"], ["Anger", "Fear"]])
    anger = await label_by_value(db, project, "emotion", "Anger")
    before = await fresh_snapshot(sessionmaker, project.id)
    url = f"/projects/{project.slug}/codebook/dimensions/emotion/labels/{anger.id}/delete"
    response = await client.post(url, data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert response.status_code == 409
    problems = _soup(response).select_one(f"#problems-label-{anger.id}-delete")
    assert problems is not None
    assert "stored values use it (2)" in problems.get_text()
    assert await fresh_snapshot(sessionmaker, project.id) == before
    assert await current_version(db, project) == 1
    shame = await label_by_value(db, project, "emotion", "Shame")
    url = f"/projects/{project.slug}/codebook/dimensions/emotion/labels/{shame.id}/delete"
    assert (await client.post(url, data={"csrf_token": token})).status_code == 303
    assert await current_version(db, project) == 2


async def test_merge_and_narrowing_through_the_page(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: Sessions
) -> None:
    _, project, token = await _lead_session(client, db)
    await add_source_values(db, project, "strategy", [["Question", "Information"]])
    base = f"/projects/{project.slug}/codebook/dimensions/strategy"
    narrow = {
        "name_en": "Strategy",
        "name_zh": "策略",
        "scope": "turn",
        "speaker": "counselor",
        "kind": "label",
        "max_labels": "1",
        "csrf_token": token,
    }
    refused = await client.post(base, data=narrow)
    assert refused.status_code == 409
    assert "cannot go down to 1" in refused.text
    assert "(1)" in refused.text
    question = await label_by_value(db, project, "strategy", "Question")
    information = await label_by_value(db, project, "strategy", "Information")
    merged = await client.post(
        f"{base}/merge",
        data={"label": str(information.id), "into": str(question.id), "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert merged.status_code == 200
    assert _soup(merged).select_one(f"#label-{information.id}") is None
    strategy = (await fresh_snapshot(sessionmaker, project.id))["dimensions"][3]
    assert [x["aliases"] for x in strategy["labels"] if x["value"] == "Question"] == [
        ["Information"]
    ]
    assert (await client.post(base, data=narrow)).status_code == 409  # still two labels stored
    events = await db.scalar(
        select(func.count()).where(
            AuditEvent.project_id == project.id, AuditEvent.action == "codebook.label.merge"
        )
    )
    assert events == 1


async def test_lead_adds_a_dimension_and_a_label(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: Sessions
) -> None:
    _, project, token = await _lead_session(client, db)
    base = f"/projects/{project.slug}/codebook"
    added = await client.post(
        f"{base}/dimensions",
        data={
            "key": "risk",
            "kind": "label",
            "name_en": "Risk",
            "name_zh": "风险",
            "scope": "session",
            "speaker": "client",
            "max_labels": "1",
            "required": "true",
            "csrf_token": token,
        },
        headers={"HX-Request": "true"},
    )
    assert added.status_code == 200
    soup = _soup(added)
    assert soup.select_one("#dimensions #dim-risk") is not None
    assert soup.select_one("#codebook-history[hx-swap-oob=true]") is not None
    label = await client.post(
        f"{base}/dimensions/risk/labels",
        data={
            "value": "High",
            "name_en": "High",
            "name_zh": "高",
            "hotkey": "h",
            "csrf_token": token,
        },
    )
    assert label.status_code == 303
    risk = (await fresh_snapshot(sessionmaker, project.id))["dimensions"][-1]
    assert (risk["key"], risk["required"], risk["scope"]) == ("risk", True, "session")
    assert [x["value"] for x in risk["labels"]] == ["High"]
    assert await current_version(db, project) == 3


async def test_export_import_round_trip_into_another_project(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: Sessions
) -> None:
    lead, source, token = await _lead_session(client, db)
    fear = await label_by_value(db, source, "emotion", "Fear")
    url = f"/projects/{source.slug}/codebook/dimensions/emotion/labels/{fear.id}"
    await client.post(
        url, data={**_label_form(fear, description="害怕 “quoted”"), "csrf_token": token}
    )
    exported = await client.get(f"/projects/{source.slug}/codebook.json")
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="{source.slug}-codebook-v2.json"'
    )
    target = await make_project(db, lead=lead)
    await core.seed_default(db, target, lead.id)
    response = await client.post(
        f"/projects/{target.slug}/codebook/import",
        data={"csrf_token": token},
        files={"file": ("codebook.json", exported.content, "application/json")},
    )
    assert response.status_code == 303
    assert response.headers["location"].endswith("?imported=2")
    assert await fresh_snapshot(sessionmaker, target.id) == exported.json()
    again = await client.post(
        f"/projects/{target.slug}/codebook/import",
        data={"csrf_token": token, "json": exported.text},
    )
    assert again.headers["location"].endswith("?imported=same")
    assert await current_version(db, target) == 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{oops", "This is not valid JSON (line 1, column 2)."),
        ('{"format": "something-else"}', "This is not a codebook file"),
        (
            json.dumps(
                {
                    "format": "psy-annotator-codebook",
                    "format_version": 1,
                    "dimensions": [
                        {"key": "a", "name_en": "A", "name_zh": "甲", "scope": "turn"}
                        | {"speaker": "any", "kind": "text"},
                        {"key": "a", "name_en": "B", "name_zh": "乙", "scope": "turn"}
                        | {"speaker": "any", "kind": "text"},
                    ],
                }
            ),
            "dimensions: The dimension key “a” appears more than once.",
        ),
    ],
)
async def test_import_errors_change_nothing(
    client: httpx.AsyncClient,
    db: AsyncSession,
    sessionmaker: Sessions,
    payload: str,
    message: str,
) -> None:
    _, project, token = await _lead_session(client, db)
    before = await fresh_snapshot(sessionmaker, project.id)
    response = await client.post(
        f"/projects/{project.slug}/codebook/import", data={"json": payload, "csrf_token": token}
    )
    assert response.status_code == 422
    problems = _soup(response).select_one("#problems-import")
    assert problems is not None
    assert message in problems.get_text()
    pasted = _soup(response).select_one("#f-import-json")
    assert pasted is not None
    assert pasted.get_text() == payload
    assert await fresh_snapshot(sessionmaker, project.id) == before
    assert await current_version(db, project) == 1


async def test_oversized_import_file_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: Sessions
) -> None:
    _, project, token = await _lead_session(client, db)
    before = await fresh_snapshot(sessionmaker, project.id)
    big = json.dumps({**before, "padding": "x" * (1024 * 1024)}).encode()
    response = await client.post(
        f"/projects/{project.slug}/codebook/import",
        data={"csrf_token": token},
        files={"file": ("big.json", big, "application/json")},
    )
    assert response.status_code == 422
    assert "The codebook is larger than 1 MB." in response.text
    assert await fresh_snapshot(sessionmaker, project.id) == before


async def test_oversized_pasted_codebook_is_refused_in_the_apps_words(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: Sessions
) -> None:
    """Pasted text over the form parser's 1 MB part limit (sent as multipart, as the page
    does with its file field): a 400 saying what to do, in the interface language."""
    lead, project, token = await _lead_session(client, db)
    before = await fresh_snapshot(sessionmaker, project.id)
    pasted = json.dumps({**before, "padding": "x" * (1024 * 1024)})
    url = f"/projects/{project.slug}/codebook/import"
    form = {"csrf_token": token, "json": pasted}
    empty = {"file": ("", b"", "application/octet-stream")}
    response = await client.post(url, data=form, files=empty)
    assert response.status_code == 400
    assert "A form field is larger than 1 MB. Upload long text as a file." in response.text
    assert "exceeded maximum size" not in response.text
    lead.language = "zh"
    await db.flush()
    chinese = await client.post(url, data=form, files=empty)
    assert chinese.status_code == 400
    assert "超过 1 MB" in chinese.text
    assert await fresh_snapshot(sessionmaker, project.id) == before


async def test_import_that_would_orphan_values_lists_each_problem(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: Sessions
) -> None:
    _, project, token = await _lead_session(client, db)
    await add_source_values(db, project, "topic", [["Job Crisis"], ["Job Crisis"]])
    await add_source_values(db, project, "summary", ["A summary."], position=-1)
    doc = await fresh_snapshot(sessionmaker, project.id)
    before = json.loads(json.dumps(doc))
    doc["dimensions"] = [d for d in doc["dimensions"] if d["key"] not in ("topic", "summary")]
    response = await client.post(
        f"/projects/{project.slug}/codebook/import",
        data={"csrf_token": token, "json": json.dumps(doc)},
    )
    assert response.status_code == 409
    problems = _soup(response).select("#problems-import li")
    assert sorted(li.get_text() for li in problems) == [
        "Dimension “summary” cannot be removed: stored values use it (1).",
        "Dimension “topic” cannot be removed: stored values use it (2).",
    ]
    assert await fresh_snapshot(sessionmaker, project.id) == before


async def test_api_returns_snapshot_and_version(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    _, project, token = await _lead_session(client, db)
    guide_delete = f"/projects/{project.slug}/codebook/dimensions/guide/delete"
    assert (await client.post(guide_delete, data={"csrf_token": token})).status_code == 303
    body = (await client.get(f"/api/v1/projects/{project.slug}/codebook")).json()
    assert body["format"] == "psy-annotator-codebook"
    assert body["version"] == 2
    assert [d["key"] for d in body["dimensions"]] == [
        "psychotherapy",
        "topic",
        "emotion",
        "strategy",
        "reasoning",
        "observation",
        "summary",
    ]
    assert body["dimensions"][2]["labels"][0] == {
        "value": "Anxiety",
        "name_en": "Anxiety",
        "name_zh": "焦虑",
        "description": "",
        "hotkey": "1",
        "aliases": [],
    }
