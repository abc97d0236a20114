"""The JSON API: token and session auth, role rules, OpenAPI."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import create_api_token
from app.models import Role
from tests.factories import add_member, login, make_project, make_user


async def test_projects_api_with_token(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    project = await make_project(db, lead=user, name="API 项目")
    await add_member(db, project, user, Role.exporter)
    await make_project(db, lead=await make_user(db))
    _, raw = await create_api_token(db, user, "t")
    auth = {"Authorization": f"Bearer {raw}"}
    listed = await client.get("/api/v1/projects", headers=auth)
    assert listed.status_code == 200
    assert [(p["slug"], p["my_roles"]) for p in listed.json()] == [
        (project.slug, ["exporter", "lead"])
    ]
    one = await client.get(f"/api/v1/projects/{project.slug}", headers=auth)
    assert one.json()["name"] == "API 项目"


async def test_api_role_rules(client: httpx.AsyncClient, db: AsyncSession) -> None:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    annotator = await make_user(db)
    await add_member(db, project, annotator, Role.annotator)
    _, raw = await create_api_token(db, annotator, "t")
    auth = {"Authorization": f"Bearer {raw}"}
    assert (await client.get(f"/api/v1/projects/{project.slug}", headers=auth)).status_code == 200
    members = await client.get(f"/api/v1/projects/{project.slug}/members", headers=auth)
    assert members.status_code == 403
    assert members.json() == {"detail": "Your role in this project does not allow this."}
    other = await make_project(db, lead=lead)
    hidden = await client.get(f"/api/v1/projects/{other.slug}", headers=auth)
    assert hidden.status_code == 404
    assert hidden.json() == {"detail": "No such project."}


async def test_api_without_auth_is_401_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/projects")
    assert response.status_code == 401
    assert response.json() == {"detail": "Please log in."}
    bad = await client.get("/api/v1/projects", headers={"Authorization": "Bearer psy_nope"})
    assert bad.status_code == 401


async def test_api_with_session_cookie(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    await login(client, user)
    assert (await client.get("/api/v1/me")).json()["id"] == user.id


async def test_openapi_lists_the_v1_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/projects", "/api/v1/projects/{slug}", "/api/v1/me"} <= set(spec["paths"])
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert "/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in docs.text
