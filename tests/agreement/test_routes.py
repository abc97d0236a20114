"""The dashboard, downloads, API and CLI show the same figures, to leads and reviewers only."""

from __future__ import annotations

import csv
import io
import json

import httpx
from bs4 import BeautifulSoup
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ProjectMembership, Role
from tests.agreement.test_service import _setup
from tests.factories import add_member, login, make_user


async def test_dashboard_downloads_and_api_agree(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    project, _, _ = await _setup(db)
    reviewer = await make_user(db)
    await add_member(db, project, reviewer, Role.reviewer)
    await login(client, reviewer)
    base = f"/projects/{project.slug}/agreement"
    page = BeautifulSoup((await client.get(base)).text, "html.parser")
    row = page.select_one("tr[data-dimension='emotion']")
    assert row is not None
    api = (await client.get(f"/api/v1/projects/{project.slug}/agreement")).json()
    emotion = next(r for r in api["dimensions"] if r["dimension"] == "emotion")
    assert f"{emotion['alpha']['value']:.3f}" in row.get_text()
    assert page.select_one("tr[data-dimension='strategy']").get_text().count("No unit") == 1  # type: ignore[union-attr]
    exported = json.loads((await client.get(base + ".json")).text)
    assert exported == api
    table = list(csv.DictReader(io.StringIO((await client.get(base + ".csv")).text)))
    by_dim = {r["dimension"]: r for r in table}
    assert float(by_dim["emotion"]["alpha"]) == emotion["alpha"]["value"]
    assert by_dim["strategy"]["undefined"] == "no ratings"
    fragment = await client.get(base + "?raters=all", headers={"HX-Request": "true"})
    assert "<header" not in fragment.text
    assert "model-draft" in fragment.text


async def test_annotators_cannot_see_agreement(client: httpx.AsyncClient, db: AsyncSession) -> None:
    project, users, _ = await _setup(db)
    db.add(ProjectMembership(project_id=project.id, user_id=users[0].id, role=Role.annotator.value))
    await db.flush()
    await login(client, users[0])
    assert (await client.get(f"/projects/{project.slug}/agreement")).status_code == 403
    assert (await client.get(f"/api/v1/projects/{project.slug}/agreement")).status_code == 403
