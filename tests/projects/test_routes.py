"""Projects: creation by admins, settings and members by leads, escaping of user text."""

from __future__ import annotations

import httpx
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Project, ProjectMembership, Role
from tests.factories import add_member, login, make_project, make_user

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\u202egnp.exe مرحبا",
    "王小明 😀",
]


async def test_admin_creates_a_project_and_becomes_lead(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    admin = await make_user(db, admin=True)
    token = await login(client, admin)
    response = await client.post(
        "/projects", data={"name": "Pilot 试点", "slug": "Pilot-1", "csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/projects/pilot-1"
    project = (await db.execute(select(Project).where(Project.slug == "pilot-1"))).scalar_one()
    roles = (
        await db.execute(
            select(ProjectMembership.role).where(ProjectMembership.project_id == project.id)
        )
    ).scalars()
    assert list(roles) == ["lead"]
    page = await client.get("/projects/pilot-1")
    assert "Pilot 试点" in page.text


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("a", "lowercase letters, digits and hyphens"),
        ("Has Space", "lowercase letters, digits and hyphens"),
        ("-x", "lowercase letters, digits and hyphens"),
    ],
)
async def test_bad_slug_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, slug: str, message: str
) -> None:
    token = await login(client, await make_user(db, admin=True))
    before = await db.scalar(select(func.count()).select_from(Project))
    response = await client.post("/projects", data={"name": "X", "slug": slug, "csrf_token": token})
    assert response.status_code == 422
    assert message in response.text
    assert await db.scalar(select(func.count()).select_from(Project)) == before


async def test_duplicate_slug_is_refused(client: httpx.AsyncClient, db: AsyncSession) -> None:
    admin = await make_user(db, admin=True)
    await make_project(db, lead=admin, slug="taken")
    token = await login(client, admin)
    response = await client.post(
        "/projects", data={"name": "X", "slug": "taken", "csrf_token": token}
    )
    assert response.status_code == 422
    assert "already exists" in response.text


async def test_non_admin_cannot_create_projects(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    token = await login(client, await make_user(db))
    response = await client.post(
        "/projects", data={"name": "X", "slug": "nope", "csrf_token": token}
    )
    assert response.status_code == 403
    assert await db.scalar(select(func.count()).where(Project.slug == "nope")) == 0


async def test_project_list_shows_only_my_projects(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    me = await make_user(db)
    mine = await make_project(db, lead=me, name="Mine")
    other = await make_project(db, lead=await make_user(db), name="Secret other")
    await login(client, me)
    text = (await client.get("/projects")).text
    assert mine.name in text
    assert other.name not in text


async def test_lead_adds_member_with_htmx_fragment(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    newcomer = await make_user(db, name="Newcomer")
    token = await login(client, lead)
    response = await client.post(
        f"/projects/{project.slug}/members",
        data={"email": newcomer.email, "roles": ["annotator", "reviewer"], "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.select_one("header") is None
    row = soup.select_one(f"tr[data-user-id='{newcomer.id}']")
    assert row is not None
    checked = {i["value"] for i in row.select("input[name=roles][checked]")}
    assert checked == {"annotator", "reviewer"}
    full = await client.get(f"/projects/{project.slug}/members")
    assert BeautifulSoup(full.text, "html.parser").select_one("header.topbar") is not None


async def test_add_member_errors(client: httpx.AsyncClient, db: AsyncSession) -> None:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    token = await login(client, lead)
    url = f"/projects/{project.slug}/members"
    unknown = await client.post(
        url, data={"email": "ghost@example.org", "roles": ["annotator"], "csrf_token": token}
    )
    assert unknown.status_code == 422
    assert "No account with this email." in unknown.text
    bad_role = await client.post(
        url, data={"email": lead.email, "roles": ["owner"], "csrf_token": token}
    )
    assert bad_role.status_code == 422
    count = await db.scalar(select(func.count()).where(ProjectMembership.project_id == project.id))
    assert count == 1


async def test_last_lead_cannot_be_removed(client: httpx.AsyncClient, db: AsyncSession) -> None:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    token = await login(client, lead)
    response = await client.post(
        f"/projects/{project.slug}/members/{lead.id}/roles",
        data={"roles": ["annotator"], "csrf_token": token},
    )
    assert response.status_code == 422
    assert "at least one lead" in response.text
    roles = set(
        (
            await db.execute(
                select(ProjectMembership.role).where(ProjectMembership.user_id == lead.id)
            )
        ).scalars()
    )
    assert roles == {"lead"}


async def test_removing_all_roles_removes_the_member(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    member = await make_user(db)
    await add_member(db, project, member, Role.annotator, Role.exporter)
    token = await login(client, lead)
    response = await client.post(
        f"/projects/{project.slug}/members/{member.id}/roles", data={"csrf_token": token}
    )
    assert response.status_code == 200
    assert await db.scalar(select(func.count()).where(ProjectMembership.user_id == member.id)) == 0
    foreign = await client.post(
        f"/projects/{project.slug}/members/{(await make_user(db)).id}/roles",
        data={"roles": ["annotator"], "csrf_token": token},
    )
    assert foreign.status_code == 404


async def test_settings_update(client: httpx.AsyncClient, db: AsyncSession) -> None:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    token = await login(client, lead)
    url = f"/projects/{project.slug}/settings"
    ok = await client.post(url, data={"name": "Renamed", "description": "d", "csrf_token": token})
    assert ok.status_code == 303
    await db.refresh(project)
    assert project.name == "Renamed"
    empty = await client.post(url, data={"name": "  ", "csrf_token": token})
    assert empty.status_code == 422
    await db.refresh(project)
    assert project.name == "Renamed"


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_text_is_escaped(
    client: httpx.AsyncClient, db: AsyncSession, hostile: str
) -> None:
    lead = await make_user(db, name=hostile, admin=True)
    project = await make_project(db, lead=lead, name=hostile)
    await add_member(db, project, await make_user(db, name=hostile + " 2"), Role.annotator)
    await login(client, lead)
    for path in (
        "/projects",
        f"/projects/{project.slug}",
        f"/projects/{project.slug}/members",
        "/admin/users",
    ):
        html = (await client.get(path)).text
        soup = BeautifulSoup(html, "html.parser")
        scripts = [s.get("src") for s in soup.find_all("script")]
        assert all(src and src.startswith("/static/") for src in scripts), path
        assert not soup.select("img"), path
        assert not soup.select("[onerror]"), path
        assert hostile in soup.get_text(), path


async def test_overlap_and_suggestion_source_settings(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    from app.models import AnnotationSource

    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    db.add(AnnotationSource(project_id=project.id, name="model-draft"))
    await db.flush()
    token = await login(client, lead)
    url = f"/projects/{project.slug}/settings"
    base = {"name": project.name, "csrf_token": token}
    ok = await client.post(url, data={**base, "overlap": "3", "suggestion_source": "model-draft"})
    assert ok.status_code == 303
    await db.refresh(project)
    assert (project.overlap, project.suggestion_source) == (3, "model-draft")
    zero = await client.post(url, data={**base, "overlap": "0"})
    assert zero.status_code == 422
    assert "from 1 to 50" in zero.text
    unknown = await client.post(url, data={**base, "overlap": "2", "suggestion_source": "nope"})
    assert unknown.status_code == 422
    assert "No source with this name" in unknown.text
    await db.refresh(project)
    assert (project.overlap, project.suggestion_source) == (3, "model-draft")
