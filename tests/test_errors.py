"""Error pages, htmx error fragments and JSON errors for 403/404/422/500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import login, make_project, make_user


@pytest.fixture
async def crashing_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async def boom() -> None:
        raise RuntimeError("deliberate failure with <b>markup</b>")

    app.add_api_route("/boom", boom)
    app.add_api_route("/api/v1/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_500_page_fragment_and_json(crashing_client: httpx.AsyncClient) -> None:
    page = await crashing_client.get("/boom")
    assert page.status_code == 500
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.select_one("#error")["data-status"] == "500"  # type: ignore[index]
    assert soup.select_one("header.topbar") is not None
    assert "deliberate failure" not in page.text  # no internals leak to the page
    fragment = await crashing_client.get("/boom", headers={"HX-Request": "true"})
    assert fragment.status_code == 500
    assert fragment.text.lstrip().startswith('<section id="error"')
    api = await crashing_client.get("/api/v1/boom")
    assert api.json() == {"detail": "Something went wrong on our side. The error has been logged."}


async def test_404_and_403_pages_and_fragments(client: httpx.AsyncClient, db: AsyncSession) -> None:
    member = await make_user(db)
    await login(client, member)
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404
    assert BeautifulSoup(missing.text, "html.parser").select_one("#error h1").get_text() == "404"  # type: ignore[union-attr]
    frag = await client.get("/projects/nope/settings", headers={"HX-Request": "true"})
    assert frag.status_code == 404
    assert "<html" not in frag.text
    assert frag.headers["vary"] == "HX-Request"
    forbidden = await client.get("/admin/users")
    assert forbidden.status_code == 403
    assert "Only administrators can do this." in forbidden.text


async def test_422_on_api_is_json(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    await make_project(db, lead=user)
    token = await login(client, user)
    response = await client.post(
        "/account/tokens/not-a-number/revoke", headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 422
    assert "The request could not be understood." in response.text


async def test_405_says_which_methods_are_allowed(client: httpx.AsyncClient) -> None:
    """The answer keeps the exception's headers: a 405 names the allowed methods (RFC 9110)."""
    api = await client.get("/api/v1/projects/p/assignments/1/values")
    assert api.status_code == 405
    assert api.headers["allow"] == "POST"
    assert set(api.json()) == {"detail"}
    page = await client.delete("/account")
    assert page.status_code == 405
    assert "GET" in page.headers["allow"].split(", ")


async def test_htmx_401_redirects_to_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/projects", headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == "/login?next=/projects"


async def test_error_page_is_translated(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db, language="zh")
    await login(client, user)
    response = await client.get("/admin/users")
    assert response.status_code == 403
    assert "只有管理员可以执行此操作。" in response.text
    assert 'lang="zh-Hans"' in response.text


def test_messages_are_filled_with_their_parameters() -> None:
    from app.errors import fill

    assert fill("Label “%(label)s” is used (%(count)d).", {"label": "Fear", "count": 3}) == (
        "Label “Fear” is used (3)."
    )
    assert fill("No placeholders.", {"slug": "x"}) == "No placeholders."
    assert fill("100% sure", {"a": 1}) == "100% sure"  # a stray % leaves the text alone
