"""The dashboard, downloads, API and CLI show the same figures, to leads and reviewers only."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.agreement import service
from app.models import ProjectMembership, Role
from tests.agreement.test_service import GRID, _setup
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


async def test_heatmap_cells_drill_down_to_the_disagreeing_turns(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    project, users, dialogues = await _setup(db)
    users[0].name = "<script>alert(1)</script>"
    lead = await make_user(db)
    await add_member(db, project, lead, Role.lead)
    await login(client, lead)
    base = f"/projects/{project.slug}/agreement"
    html = (await client.get(base + "?dimension=emotion")).text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)" in html
    page = BeautifulSoup(html, "html.parser")
    detail = page.select_one("section.dimension-detail[data-dimension='emotion']")
    assert detail is not None
    cells = detail.select("svg.heatmap a.cell-link")
    assert len(cells) == 6  # 3 raters: every ordered pair off the diagonal shares units
    pair = next(c for c in cells if c["data-a"] == f"user:{users[0].id}"
                and c["data-b"] == f"user:{users[2].id}")  # fmt: skip
    listing = await client.get(str(pair["href"]))
    assert listing.status_code == 200
    units = BeautifulSoup(listing.text, "html.parser").select("ol.units-list li")
    assert len(units) == 2  # GRID: raters 0 and 2 differ on two units
    for li in units:
        link = li.select_one("a.unit-link")
        assert link is not None
        dialogue_id, position = int(li["data-dialogue-id"]), int(li["data-position"])  # type: ignore[arg-type]
        assert dialogue_id in dialogues
        assert (
            link["href"] == f"/projects/{project.slug}/dialogues/{dialogue_id}#turn-{position + 1}"
        )
        view = await client.get(str(link["href"]).split("#")[0])
        assert f'id="turn-{position + 1}"' in view.text
    assert not detail.select("svg.confusion")  # each confusion matrix loads on its own
    slot = detail.select_one(".confusion-slot")
    assert slot is not None
    fragment = await client.get(str(slot["hx-get"]), headers={"HX-Request": "true"})
    assert "<header" not in fragment.text
    confusion = BeautifulSoup(fragment.text, "html.parser").select("svg.confusion a.cell-link")
    assert confusion, "the confusion matrix links its non-empty cells"
    a_key, b_key = f"user:{users[0].id}", f"user:{users[2].id}"
    assert "of=emotion" in str(slot["hx-get"])
    assert "dimension=emotion" in str(slot["hx-get"])  # the page's own filter, kept
    pair_page = await client.get(
        f"{base}/confusion", params={"of": "emotion", "pair": f"{a_key}|{b_key}"}
    )
    chosen = BeautifulSoup(pair_page.text, "html.parser")
    assert chosen.select_one("header") is not None  # a whole page without htmx
    selected = chosen.select_one("select[name=pair] option[selected]")
    assert selected is not None
    assert selected["value"] == f"{a_key}|{b_key}"
    table = chosen.select_one("table.confusion-table")
    assert table is not None
    # raters 0 and 2 rate every unit; their confusion counts add up to the units both rated
    counts = [int(td.get_text()) for td in table.select("tbody td")]
    assert sum(counts) == sum(1 for u in range(8) if GRID[0][u] and GRID[2][u])
    no_dimension = await client.get(f"{base}/confusion")
    assert no_dimension.status_code == 422
    cell = await client.get(str(confusion[0]["href"]))
    assert cell.status_code == 200
    assert "units-list" in cell.text
    api = (await client.get(f"/api/v1/projects/{project.slug}/agreement")).json()
    assert api["current"] is True
    assert api["computed_at"]
    assert api["recomputing"] is False
    assert api["rater_names"][f"user:{users[0].id}"] == "<script>alert(1)</script>"


async def test_bad_drilldown_and_filter_requests_are_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    project, users, _ = await _setup(db)
    lead = await make_user(db)
    await add_member(db, project, lead, Role.lead)
    await login(client, lead)
    units = f"/projects/{project.slug}/agreement/units"
    missing = await client.get(units)
    assert missing.status_code == 422
    assert "Choose a dimension" in missing.text
    majority_first = await client.get(units + "?dimension=emotion&a=majority&b=user:1")
    assert majority_first.status_code == 422
    assert "first rater" in majority_first.text
    assert (await client.get(units + "?dimension=emotion&a=nobody")).status_code == 422
    unknown_source = await client.get(f"/projects/{project.slug}/agreement?source=ghost")
    assert unknown_source.status_code == 422
    assert "ghost" in unknown_source.text
    assert (await client.get(f"/projects/{project.slug}/agreement?batch=abc")).status_code == 422
    alone = await client.get(units + f"?dimension=emotion&a=user:{users[1].id}")
    assert alone.status_code == 200  # one rater: against the others' majority
    assert "units-list" in alone.text
    assert "majority of the others" in alone.text
    nothing = await client.get(units + f"?dimension=emotion&a=user:{users[0].id}&b=user:999")
    assert nothing.status_code == 200
    assert "No unit matches" in nothing.text


async def test_rater_and_pair_tables_download_as_csv(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    project, users, _ = await _setup(db)
    lead = await make_user(db)
    await add_member(db, project, lead, Role.lead)
    await login(client, lead)
    base = f"/projects/{project.slug}/agreement.csv"
    raters = list(csv.DictReader(io.StringIO((await client.get(base + "?table=raters")).text)))
    assert {r["rater"] for r in raters} == {f"user:{u.id}" for u in users}
    assert all(r["dimension"] == "emotion" for r in raters)
    pairs = list(csv.DictReader(io.StringIO((await client.get(base + "?table=pairs")).text)))
    assert len(pairs) == 3  # 3 raters, one emotion dimension with ratings
    assert all(0 < int(p["shared_units"]) <= 8 for p in pairs)


async def test_confusion_reads_the_dashboards_cached_figures(
    client: httpx.AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a large project a confusion fragment must not queue a computation of its own."""
    project, _, _ = await _setup(db)
    lead = await make_user(db)
    await add_member(db, project, lead, Role.lead)
    await login(client, lead)
    base = f"/projects/{project.slug}/agreement"
    assert (await client.get(base)).status_code == 200  # computes and caches (small so far)
    monkeypatch.setattr(service, "INLINE_MAX_ASSIGNMENTS", 0)
    monkeypatch.setattr(service, "INLINE_MAX_MS", -1)
    fragment = await client.get(base + "/confusion?of=emotion", headers={"HX-Request": "true"})
    assert "svg" in fragment.text
    assert 'class="chart confusion"' in fragment.text
    assert await db.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 0
    # A filter set with nothing computed yet: the fragment says so and polls.
    waiting = await client.get(
        base + "/confusion?of=emotion&speaker=client", headers={"HX-Request": "true"}
    )
    assert 'hx-trigger="load delay:2s"' in waiting.text
    assert await db.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 1


async def test_label_values_are_named_in_the_interface_language(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    project, users, _ = await _setup(db)
    lead = await make_user(db)
    lead.language = "zh"  # the account's language is the interface's
    await add_member(db, project, lead, Role.lead)
    await login(client, lead)
    base = f"/projects/{project.slug}/agreement"
    a, b = f"user:{users[0].id}", f"user:{users[2].id}"
    page = await client.get(f"{base}/confusion", params={"of": "emotion", "pair": f"{a}|{b}"})
    table = BeautifulSoup(page.text, "html.parser").select_one("table.confusion-table")
    assert table is not None
    heads = [th.get_text() for th in table.select("thead th")][1:]
    assert set(heads) == {"焦虑", "悲伤", "恐惧", "愤怒"}
    svg = BeautifulSoup(page.text, "html.parser").select_one("svg.confusion")
    assert svg is not None
    assert "焦虑" in svg.get_text()
    link = svg.select_one("a.cell-link")
    assert link is not None
    href = str(link["href"])  # links carry the stored values, not the names
    assert any(f"row={v}" in href for v in ("Anxiety", "Sadness", "Fear", "Anger"))
    listing = await client.get(f"{base}/units", params={"dimension": "emotion", "a": a, "b": b})
    ratings = [s.get_text() for s in BeautifulSoup(listing.text, "html.parser").select(".ratings")]
    assert ratings
    assert all("Anxiety" not in r and "Sadness" not in r for r in ratings)
    assert any("悲伤" in r or "愤怒" in r for r in ratings)
    cell = await client.get(
        f"{base}/units", params={"dimension": "emotion", "a": a, "b": b, "row": "Sadness",
                                 "col": "Anger"},
    )  # fmt: skip
    heading = BeautifulSoup(cell.text, "html.parser").select_one("#h-units")
    assert heading is not None
    assert "悲伤" in heading.get_text()
    assert "愤怒" in heading.get_text()
