"""Reading an assignment (page and API): the one-query access check, answer by answer."""

from __future__ import annotations

from datetime import timedelta

import httpx
from bs4 import BeautifulSoup
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import create_api_token
from app.auth.service import now
from app.models import Role, User, UserSession
from tests.annotations.test_routes import Setup, _api, _take
from tests.annotations.test_routes import setup as setup  # the fixture
from tests.factories import add_member, login, make_project, make_user


async def test_who_may_read_an_assignment(
    app: object, client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    own = await client.get(_api(setup, f"/{aid}"))
    assert (own.status_code, own.json()["read_only"]) == (200, False)
    reviewer, annotator, exporter = await make_user(db), await make_user(db), await make_user(db)
    await add_member(db, setup.project, reviewer, Role.reviewer)
    await add_member(db, setup.project, annotator, Role.annotator)
    await add_member(db, setup.project, exporter, Role.exporter)
    cases: list[tuple[User, int, str | None]] = [
        (setup.lead, 200, None),
        (reviewer, 200, None),
        (annotator, 404, "No such assignment in this project."),
        (exporter, 403, "Your role in this project does not allow this."),
        (await make_user(db), 404, "No such project."),
    ]
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    page = f"/projects/{setup.project.slug}/annotate/{aid}"
    for person, status, detail in cases:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await login(c, person)
            answer = await c.get(_api(setup, f"/{aid}"))
            shown = await c.get(page)
        assert answer.status_code == shown.status_code == status, person.email
        if detail is None:
            assert answer.json()["read_only"] is True  # others read, only its annotator writes
            soup = BeautifulSoup(shown.text, "html.parser")
            assert soup.select_one("#workspace")["data-read-only"] == "true"  # type: ignore[index]
        else:
            assert answer.json()["detail"] == detail


async def test_reading_needs_a_live_session_or_token(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    elsewhere = await make_project(db, lead=setup.lead)
    await add_member(db, elsewhere, setup.annotator, Role.annotator)
    foreign = await client.get(f"/api/v1/projects/{elsewhere.slug}/assignments/{aid}")
    assert foreign.status_code == 404
    assert (await client.get(_api(setup, f"/{2**70}"))).status_code == 404
    mine = UserSession.user_id == setup.annotator.id
    await db.execute(update(UserSession).where(mine).values(expires_at=now() - timedelta(1)))
    expired = await client.get(_api(setup, f"/{aid}"))
    assert (expired.status_code, expired.json()) == (401, {"detail": "Please log in."})
    page = await client.get(f"/projects/{setup.project.slug}/annotate/{aid}")
    assert page.status_code == 303  # the page sends the browser to log in
    _, raw = await create_api_token(db, setup.annotator, "reader")
    client.cookies.clear()
    by_token = await client.get(_api(setup, f"/{aid}"), headers={"Authorization": f"Bearer {raw}"})
    assert by_token.status_code == 200
    assert by_token.json()["assignment"]["id"] == aid
