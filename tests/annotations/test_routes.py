"""The workspace API and pages: who may read and write, idempotent saves, 409s, submit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Assignment, Project, Role, User
from tests.annotations.helpers import edit_dimension
from tests.dialogues.data import (
    client_turn,
    counselor_turn,
    make_batch,
    make_dialogue,
    make_source,
    seed_codebook,
)
from tests.factories import add_member, login, make_project, make_user


@dataclass
class Setup:
    project: Project
    lead: User
    annotator: User
    token: str


@pytest.fixture
async def setup(client: httpx.AsyncClient, db: AsyncSession) -> Setup:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    await seed_codebook(db, project)
    source = await make_source(db, project)
    batch = await make_batch(db, project, source)
    for i in range(2):
        await make_dialogue(db, project, batch, external_id=f"x{i}", turns=[
            client_turn("I cannot sleep."), counselor_turn("More?"), client_turn("<b>Late</b>")
        ])  # fmt: skip
    annotator = await make_user(db, name="Ann")
    await add_member(db, project, annotator, Role.annotator)
    token = await login(client, annotator)
    return Setup(project, lead, annotator, token)


def _api(setup: Setup, path: str = "") -> str:
    return f"/api/v1/projects/{setup.project.slug}/assignments{path}"


async def _take(client: httpx.AsyncClient, setup: Setup) -> dict[str, object]:
    response = await client.post(_api(setup, "/next"), headers={"X-CSRF-Token": setup.token})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_next_returns_the_workspace(client: httpx.AsyncClient, setup: Setup) -> None:
    ws = await _take(client, setup)
    assert ws["read_only"] is False
    assert [t["speaker"] for t in ws["turns"]] == ["client", "counselor", "client"]  # type: ignore[index, union-attr]
    dims = {d["key"] for d in ws["codebook"]["dimensions"]}  # type: ignore[index]
    assert {"emotion", "strategy", "topic", "reasoning"} <= dims
    again = await _take(client, setup)
    assert again["assignment"] == ws["assignment"]  # unfinished work first


async def test_save_is_idempotent_and_versioned(client: httpx.AsyncClient, setup: Setup) -> None:
    ws = await _take(client, setup)
    aid = ws["assignment"]["id"]  # type: ignore[index]
    change = {"change_id": str(uuid.uuid4()), "position": 0, "dimension": "emotion",
              "labels": ["Anxiety"], "base_version": 0}  # fmt: skip
    headers = {"X-CSRF-Token": setup.token}
    first = await client.post(_api(setup, f"/{aid}/values"), json=change, headers=headers)
    retry = await client.post(_api(setup, f"/{aid}/values"), json=change, headers=headers)
    assert first.status_code == retry.status_code == 200
    assert first.json() == retry.json()
    assert first.json()["version"] == 1
    stale = {**change, "change_id": str(uuid.uuid4()), "labels": ["Fear"]}
    conflict = await client.post(_api(setup, f"/{aid}/values"), json=stale, headers=headers)
    assert conflict.status_code == 409
    assert conflict.json()["current"] == {"labels": ["Anxiety"], "text": None, "version": 1}
    bad = {**change, "change_id": str(uuid.uuid4()), "labels": ["Bliss"], "base_version": 1}
    invalid = await client.post(_api(setup, f"/{aid}/values"), json=bad, headers=headers)
    assert invalid.status_code == 422
    assert "Unknown label “Bliss”" in invalid.json()["detail"]
    ws2 = (await client.get(_api(setup, f"/{aid}"))).json()
    assert ws2["values"] == [{"position": 0, "dimension": "emotion", "labels": ["Anxiety"],
                              "text": None, "version": 1}]  # fmt: skip


async def test_submit_lists_missing_required_values(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    ws = await _take(client, setup)  # the codebook as it was, now cached for the page
    aid = ws["assignment"]["id"]  # type: ignore[index]
    page = f"/projects/{setup.project.slug}/annotate/{aid}"
    name = BeautifulSoup((await client.get(page)).text, "html.parser").select_one("#dn-2-strategy")
    assert name is not None
    assert "required" not in name.get_text()
    await edit_dimension(db, setup.project, setup.lead.id, "strategy", required=True)
    name = BeautifulSoup((await client.get(page)).text, "html.parser").select_one("#dn-2-strategy")
    assert name is not None
    assert "required" in name.get_text()  # a new codebook version: the cached parts are not used
    headers = {"X-CSRF-Token": setup.token}
    response = await client.post(_api(setup, f"/{aid}/submit"), headers=headers)
    assert response.status_code == 422
    assert response.json()["missing"] == [{"position": 1, "dimension": "strategy"}]
    change = {"change_id": str(uuid.uuid4()), "position": 1, "dimension": "strategy",
              "labels": ["Question"], "base_version": 0}  # fmt: skip
    assert (
        await client.post(_api(setup, f"/{aid}/values"), json=change, headers=headers)
    ).status_code == 200
    done = await client.post(_api(setup, f"/{aid}/submit"), headers=headers)
    assert done.json() == {"status": "submitted"}
    status = await db.scalar(select(Assignment.status).where(Assignment.id == aid))
    assert status == "submitted"


async def test_others_read_only_or_not_at_all(
    app: object, client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    ws = await _take(client, setup)
    aid = ws["assignment"]["id"]  # type: ignore[index]
    other = await make_user(db)
    await add_member(db, setup.project, other, Role.annotator)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        token = await login(c, other)
        assert (await c.get(_api(setup, f"/{aid}"))).status_code == 404
        c.cookies.clear()
        token = await login(c, setup.lead)
        view = await c.get(_api(setup, f"/{aid}"))
        assert view.status_code == 200
        assert view.json()["read_only"] is True
        change = {"change_id": str(uuid.uuid4()), "position": 0, "dimension": "emotion",
                  "labels": ["Fear"], "base_version": 0}  # fmt: skip
        refused = await c.post(
            _api(setup, f"/{aid}/values"), json=change, headers={"X-CSRF-Token": token}
        )
        assert refused.status_code == 403


async def test_annotator_home_and_next_button(client: httpx.AsyncClient, setup: Setup) -> None:
    home = await client.get(f"/projects/{setup.project.slug}/annotate")
    assert home.status_code == 200
    response = await client.post(f"/projects/{setup.project.slug}/annotate/next",
                                 data={"csrf_token": setup.token})  # fmt: skip
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/projects/{setup.project.slug}/annotate/")


async def test_lead_assigns_by_hand_and_sees_progress(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    client.cookies.clear()
    token = await login(client, setup.lead)
    url = f"/projects/{setup.project.slug}/assignments"
    unknown = await client.post(url, data={"csrf_token": token, "user_id": setup.annotator.id,
                                           "dialogues": "x0 nope"})  # fmt: skip
    assert unknown.status_code == 422
    assert "Unknown dialogue id “nope”" in unknown.text
    ok = await client.post(url, data={"csrf_token": token, "user_id": setup.annotator.id,
                                      "dialogues": "x0, x1"})  # fmt: skip
    assert ok.status_code == 200
    assert "2 dialogues assigned." in ok.text
    page = await client.get(url)
    assert f'data-user-id="{setup.annotator.id}"' in page.text
    rows = (await db.execute(select(Assignment.status).where(
        Assignment.user_id == setup.annotator.id))).scalars().all()  # fmt: skip
    assert rows == ["assigned", "assigned"]


async def test_turn_history_for_reviewers(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    ws = await _take(client, setup)
    aid = ws["assignment"]["id"]  # type: ignore[index]
    did = ws["dialogue"]["id"]  # type: ignore[index]
    headers = {"X-CSRF-Token": setup.token}
    for base, labels in ((0, ["Anxiety"]), (1, ["Fear"])):
        change = {"change_id": str(uuid.uuid4()), "position": 0, "dimension": "emotion",
                  "labels": labels, "base_version": base}  # fmt: skip
        assert (
            await client.post(_api(setup, f"/{aid}/values"), json=change, headers=headers)
        ).status_code == 200
    note = {"position": 0, "kind": "flag", "flag": "risk", "text": "mentions self-harm"}
    assert (
        await client.post(_api(setup, f"/{aid}/notes"), json=note, headers=headers)
    ).status_code == 200
    url = f"/projects/{setup.project.slug}/dialogues/{did}/history/0"
    assert (await client.get(url)).status_code == 403  # annotators do not see others' history
    client.cookies.clear()
    await login(client, setup.lead)
    page = BeautifulSoup((await client.get(url)).text, "html.parser")
    rows = [
        [td.get_text() for td in tr.select("td")][1:]
        for tr in page.select("table.history tbody tr")
    ]
    assert rows == [["emotion", "Anxiety", "1"], ["emotion", "Fear", "2"]]
    assert "mentions self-harm" in page.select_one("#turn-notes").get_text()  # type: ignore[union-attr]


async def test_lead_reopens_and_unassigns(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    ws = await _take(client, setup)
    aid = ws["assignment"]["id"]  # type: ignore[index]
    await client.post(_api(setup, f"/{aid}/submit"), headers={"X-CSRF-Token": setup.token})
    client.cookies.clear()
    token = await login(client, setup.lead)
    base = f"/projects/{setup.project.slug}/assignments"
    page = BeautifulSoup((await client.get(base)).text, "html.parser")
    row = page.select_one(f"tr[data-assignment-id='{aid}']")
    assert row is not None
    assert row.select_one("form")["action"] == f"{base}/{aid}/reopen"  # type: ignore[index]
    refused = await client.post(f"{base}/{aid}/unassign", data={"csrf_token": token})
    assert refused.status_code == 409
    assert (
        await client.post(f"{base}/{aid}/reopen", data={"csrf_token": token})
    ).status_code == 303
    assert await db.scalar(select(Assignment.status).where(Assignment.id == aid)) == "in_progress"
    assert (
        await client.post(f"{base}/{aid}/unassign", data={"csrf_token": token})
    ).status_code == 303
    assert await db.scalar(select(Assignment.id).where(Assignment.id == aid)) is None


async def test_a_retried_note_is_stored_once(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    from sqlalchemy import func

    from app.models import TurnNote

    ws = await _take(client, setup)
    aid = ws["assignment"]["id"]  # type: ignore[index]
    note = {"client_id": str(uuid.uuid4()), "position": 0, "kind": "flag", "flag": "unclear",
            "text": ""}  # fmt: skip
    headers = {"X-CSRF-Token": setup.token}
    first = await client.post(_api(setup, f"/{aid}/notes"), json=note, headers=headers)
    again = await client.post(_api(setup, f"/{aid}/notes"), json=note, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert await db.scalar(select(func.count()).select_from(TurnNote)) == 1
