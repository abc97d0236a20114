"""Walks every registered route: project roles, CSRF and security headers hold everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent, Role
from app.projects.deps import RequireProjectRole
from tests.factories import add_member, csrf_token, login, make_project, make_user

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str
    roles: frozenset[Role] | None  # None: the route is not project-scoped

    def url(self, slug: str, number: int) -> str:
        url = self.path.replace("{slug}", slug)
        while "{" in url:
            start, end = url.index("{"), url.index("}")
            url = url[:start] + str(number) + url[end + 1 :]
        return url


def _role_checks(dependant: Dependant) -> Iterator[RequireProjectRole]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, RequireProjectRole):
            yield dep.call
        yield from _role_checks(dep)


def route_cases(app: FastAPI) -> list[RouteCase]:
    cases = []
    # FastAPI resolves included routers lazily; iter_route_contexts yields the effective routes.
    for route in iter_route_contexts(app.routes):
        if getattr(route, "dependant", None) is None or route.path is None:
            continue
        checks = list(_role_checks(route.dependant))
        roles = checks[0].roles if checks else None
        for method in sorted((route.methods or set()) - {"HEAD"}):
            cases.append(RouteCase(method, route.path, roles))
    return cases


def test_every_project_route_checks_the_role(app: FastAPI) -> None:
    cases = route_cases(app)
    scoped = [c for c in cases if "{slug}" in c.path]
    assert len(scoped) >= 8, "the walk should see the project routes"
    unchecked = [f"{c.method} {c.path}" for c in scoped if c.roles is None]
    assert unchecked == [], f"project routes without RequireProjectRole: {unchecked}"


LEAD = frozenset({Role.lead})
BROWSE = frozenset({Role.lead, Role.reviewer, Role.exporter})
ANNOTATOR = frozenset({Role.annotator})
REVIEW = frozenset({Role.lead, Role.reviewer})
WORKSPACE = frozenset({Role.annotator, Role.lead, Role.reviewer})  # writes: its annotator only
ANY_MEMBER: frozenset[Role] = frozenset()
# The declared policy: a new project route must be added here with the roles it needs.
POLICY = {
    ("GET", "/projects/{slug}"): ANY_MEMBER,
    ("GET", "/projects/{slug}/settings"): LEAD,
    ("POST", "/projects/{slug}/settings"): LEAD,
    ("GET", "/projects/{slug}/members"): LEAD,
    ("POST", "/projects/{slug}/members"): LEAD,
    ("POST", "/projects/{slug}/members/{user_id}/roles"): LEAD,
    ("GET", "/api/v1/projects/{slug}"): ANY_MEMBER,
    ("GET", "/api/v1/projects/{slug}/members"): LEAD,
    ("GET", "/projects/{slug}/dialogues"): BROWSE,
    ("GET", "/projects/{slug}/dialogues/{dialogue_id}"): BROWSE,
    ("GET", "/api/v1/projects/{slug}/dialogues"): BROWSE,
    ("GET", "/api/v1/projects/{slug}/dialogues/{dialogue_id}"): BROWSE,
    ("GET", "/projects/{slug}/codebook"): ANY_MEMBER,
    ("GET", "/projects/{slug}/codebook.json"): ANY_MEMBER,
    ("GET", "/api/v1/projects/{slug}/codebook"): ANY_MEMBER,
    ("POST", "/projects/{slug}/codebook/import"): LEAD,
    ("POST", "/projects/{slug}/codebook/dimensions"): LEAD,
    ("POST", "/projects/{slug}/codebook/dimensions/{key}"): LEAD,
    ("POST", "/projects/{slug}/codebook/dimensions/{key}/delete"): LEAD,
    ("POST", "/projects/{slug}/codebook/dimensions/{key}/labels"): LEAD,
    ("POST", "/projects/{slug}/codebook/dimensions/{key}/labels/{label_id}"): LEAD,
    ("POST", "/projects/{slug}/codebook/dimensions/{key}/labels/{label_id}/delete"): LEAD,
    ("POST", "/projects/{slug}/codebook/dimensions/{key}/merge"): LEAD,
    ("GET", "/projects/{slug}/annotate"): ANNOTATOR,
    ("GET", "/projects/{slug}/agreement"): REVIEW,
    ("GET", "/projects/{slug}/agreement/units"): REVIEW,
    ("GET", "/projects/{slug}/agreement/confusion"): REVIEW,
    ("GET", "/projects/{slug}/agreement.json"): REVIEW,
    ("GET", "/projects/{slug}/agreement.csv"): REVIEW,
    ("GET", "/api/v1/projects/{slug}/agreement"): REVIEW,
    ("GET", "/projects/{slug}/dialogues/{dialogue_id}/history/{position}"): REVIEW,
    ("POST", "/projects/{slug}/annotate/next"): ANNOTATOR,
    ("GET", "/projects/{slug}/annotate/{assignment_id}"): WORKSPACE,
    ("POST", "/api/v1/projects/{slug}/assignments/next"): ANNOTATOR,
    ("GET", "/api/v1/projects/{slug}/assignments/{assignment_id}"): WORKSPACE,
    ("POST", "/api/v1/projects/{slug}/assignments/{assignment_id}/values"): WORKSPACE,
    ("POST", "/api/v1/projects/{slug}/assignments/{assignment_id}/submit"): WORKSPACE,
    ("POST", "/api/v1/projects/{slug}/assignments/{assignment_id}/skip"): WORKSPACE,
    ("POST", "/api/v1/projects/{slug}/assignments/{assignment_id}/time"): WORKSPACE,
    ("POST", "/api/v1/projects/{slug}/assignments/{assignment_id}/notes"): WORKSPACE,
    ("GET", "/projects/{slug}/assignments"): LEAD,
    ("POST", "/projects/{slug}/assignments"): LEAD,
    ("POST", "/projects/{slug}/assignments/{assignment_id}/unassign"): LEAD,
    ("POST", "/projects/{slug}/assignments/{assignment_id}/reopen"): LEAD,
    ("POST", "/api/v1/projects/{slug}/assignments"): LEAD,
    ("POST", "/api/v1/projects/{slug}/assignments/{assignment_id}/reopen"): LEAD,
    ("POST", "/api/v1/projects/{slug}/assignments/{assignment_id}/unassign"): LEAD,
    ("GET", "/projects/{slug}/imports"): LEAD,
    ("POST", "/projects/{slug}/imports"): LEAD,
    ("GET", "/projects/{slug}/imports/{batch_id}"): LEAD,
    ("GET", "/api/v1/projects/{slug}/imports"): LEAD,
    ("POST", "/api/v1/projects/{slug}/imports"): LEAD,
    ("GET", "/api/v1/projects/{slug}/imports/{batch_id}"): LEAD,
}


def test_project_routes_follow_the_declared_policy(app: FastAPI) -> None:
    declared = {(c.method, c.path): c.roles for c in route_cases(app) if "{slug}" in c.path}
    assert declared == POLICY


async def _request(
    client: httpx.AsyncClient, case: RouteCase, url: str, token: str
) -> httpx.Response:
    if case.method in UNSAFE:
        return await client.request(
            case.method, url, data={"csrf_token": token}, headers={"X-CSRF-Token": token}
        )
    return await client.request(case.method, url)


async def test_non_member_gets_404_everywhere(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    outsider = await make_user(db, admin=True)  # even an administrator is not a member
    token = await login(client, outsider)
    scoped = [c for c in route_cases(app) if "{slug}" in c.path]
    for case in scoped:
        for slug in (project.slug, "no-such-project"):
            response = await _request(client, case, case.url(slug, lead.id), token)
            assert response.status_code == 404, f"{case.method} {case.path} as non-member"


async def test_member_without_the_role_gets_403(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    lead = await make_user(db)
    project = await make_project(db, lead=lead)
    checked = 0
    for case in (c for c in route_cases(app) if c.roles):
        for role in set(Role) - case.roles:
            member = await make_user(db)
            await add_member(db, project, member, role)
            client.cookies.clear()
            token = await login(client, member)
            response = await _request(client, case, case.url(project.slug, lead.id), token)
            assert response.status_code == 403, f"{case.method} {case.path} as {role}"
            checked += 1
    assert checked >= 10


async def test_csrf_missing_or_wrong_is_refused_on_every_state_change(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    admin = await make_user(db, admin=True)
    project = await make_project(db, lead=admin)
    await login(client, admin)
    events_before = await db.scalar(select(func.count()).select_from(AuditEvent))
    unsafe = [c for c in route_cases(app) if c.method in UNSAFE]
    assert len(unsafe) >= 12
    for case in unsafe:
        url = case.url(project.slug, admin.id)
        for data, headers in (({}, {}), ({"csrf_token": "0" * 64}, {"X-CSRF-Token": "f" * 64})):
            response = await client.request(case.method, url, data=data, headers=headers)
            assert response.status_code == 403, f"{case.method} {case.path} {data}"
            assert "CSRF" in response.text
    assert await db.scalar(select(func.count()).select_from(AuditEvent)) == events_before


async def test_csrf_token_of_another_session_is_refused(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    admin = await make_user(db, admin=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        foreign = await login(other, await make_user(db))
    await login(client, admin)
    response = await client.post("/account/tokens", data={"name": "x", "csrf_token": foreign})
    assert response.status_code == 403


EXPECTED_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _assert_secure(response: httpx.Response, what: str) -> None:
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers.get(name) == value, f"{name} on {what}"
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, what
    assert "script-src 'self'" in csp, what
    assert "unsafe-inline" not in csp, what


async def test_security_headers_on_every_page(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    admin = await make_user(db, admin=True)
    project = await make_project(db, lead=admin)
    await login(client, admin)
    pages = [c for c in route_cases(app) if c.method == "GET"]
    for case in pages:
        response = await client.get(case.url(project.slug, admin.id))
        _assert_secure(response, case.path)
    for extra in ("/static/css/app.css", "/no/such/page", "/login"):
        _assert_secure(await client.get(extra), extra)


@pytest.mark.parametrize("path", ["/projects", "/account", "/admin/users"])
async def test_pages_without_login_redirect(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


async def test_anonymous_form_token_is_bound_to_the_anon_cookie(client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)
    client.cookies.clear()
    response = await client.post(
        "/login", data={"email": "a@b.cd", "password": "x", "csrf_token": token}
    )
    assert response.status_code == 403
