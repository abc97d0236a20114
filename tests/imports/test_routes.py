"""Uploading through the web and the API: the job runs on a real worker; errors change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI

from app import jobs
from app.accounts.service import create_api_token
from app.codebook.core import seed_default
from app.config import Settings
from app.main import create_app
from app.models import Project, ProjectMembership, Role, User
from app.runtime import Database, init_database, use_database
from tests.factories import TEST_SECRET, login, password_hash
from tests.imports.helpers import v7_bytes, v7_record


@dataclass
class Site:
    app: FastAPI
    client: httpx.AsyncClient
    database: Database
    lead: User
    token: str
    api_token: str


@pytest.fixture
async def site(fresh_db_url: str) -> AsyncIterator[Site]:
    """The app on a throwaway database whose commits are real, so a worker can see them."""
    database = init_database(fresh_db_url, pool_size=3)
    jobs.configure(fresh_db_url)
    settings = Settings(
        env="test", database_url=fresh_db_url, secret_key=TEST_SECRET, demo=False, upload_limit_mb=1
    )
    async with database.sessionmaker() as db, db.begin():
        lead = User(email="lead@example.org", name="Lead", password_hash=password_hash())
        project = Project(slug="up", name="Uploads")
        db.add_all([lead, project])
        await db.flush()
        db.add(ProjectMembership(project_id=project.id, user_id=lead.id, role=Role.lead.value))
        await seed_default(db, project, None)
        _, api_token = await create_api_token(db, lead, "ci")
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        token = await login(client, lead)
        yield Site(app, client, database, lead, token, api_token)
    await database.engine.dispose()
    use_database(None)


def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


async def _upload(site: Site, data: bytes, **fields: str) -> httpx.Response:
    return await site.client.post(
        "/projects/up/imports",
        data={"csrf_token": site.token, **fields},
        files={"file": ("sessions.json", data, "application/json")},
    )


async def test_upload_runs_in_the_background_and_reports(site: Site) -> None:
    response = await _upload(site, v7_bytes([v7_record("000001"), v7_record("000002")]))
    assert response.status_code == 303
    page_url = response.headers["location"]
    queued = await site.client.get(page_url, headers={"HX-Request": "true"})
    progress = BeautifulSoup(queued.text, "html.parser").select_one("#import-progress")
    assert progress is not None
    assert progress["data-status"] == "queued"
    assert "<header" not in queued.text  # only the fragment
    assert progress.get("hx-trigger") == "every 1s"  # polls while running
    url = site.database.url
    assert _rows(url, "SELECT task_name, status FROM procrastinate_jobs") == [
        ("import_file", "todo")
    ]

    async with jobs.queue.open_async():
        await jobs.queue.run_worker_async(wait=False, install_signal_handlers=False)

    done = BeautifulSoup((await site.client.get(page_url)).text, "html.parser")
    section = done.select_one("#import-progress")
    assert section is not None
    assert section["data-status"] == "succeeded"
    assert section.get("hx-trigger") is None  # stops polling
    assert done.select_one("#import-report") is not None
    assert _rows(url, "SELECT count(*) FROM dialogues") == [(2,)]
    assert _rows(url, "SELECT count(*) FROM import_chunks") == [(0,)]  # the upload is discarded
    history = BeautifulSoup((await site.client.get("/projects/up/imports")).text, "html.parser")
    cells = [td.get_text() for td in history.select("tr[data-batch-id] td")]
    assert cells[1:8] == ["sessions.json", "sessions.json", "succeeded", "2", "4", "0", "Lead"]


async def test_failed_import_lists_errors_on_its_page(site: Site) -> None:
    response = await _upload(site, v7_bytes([v7_record("000001", emotion=["Bliss"])]), source="s")
    assert response.status_code == 303
    async with jobs.queue.open_async():
        await jobs.queue.run_worker_async(wait=False, install_signal_handlers=False)
    page = BeautifulSoup((await site.client.get(response.headers["location"])).text, "html.parser")
    rows = page.select("#import-errors tbody tr")
    assert [r["data-code"] for r in rows] == ["unknown_label"]
    assert "Bliss" in rows[0].get_text()
    assert _rows(site.database.url, "SELECT count(*) FROM dialogues") == [(0,)]


async def test_duplicate_upload_is_refused_with_the_earlier_import(site: Site) -> None:
    data = v7_bytes([v7_record("000001")])
    assert (await _upload(site, data, source="people")).status_code == 303
    again = await _upload(site, data, source="people")
    assert again.status_code == 409
    assert "is being imported under source" in again.text
    assert _rows(site.database.url, "SELECT count(*) FROM import_batches") == [(1,)]


async def test_oversized_upload_is_refused_and_nothing_stored(site: Site) -> None:
    response = await _upload(site, b"[" + b" " * (2 << 20) + b"]")
    assert response.status_code == 413
    assert "larger than this server accepts" in response.text
    assert _rows(site.database.url, "SELECT count(*) FROM import_batches") == [(0,)]
    assert _rows(site.database.url, "SELECT count(*) FROM import_chunks") == [(0,)]


async def test_upload_without_a_file_or_with_a_bad_format(site: Site) -> None:
    missing = await site.client.post("/projects/up/imports", data={"csrf_token": site.token})
    assert missing.status_code == 422
    assert "Choose a file to import." in missing.text
    bad = await _upload(site, b"[]", format="xml")
    assert bad.status_code == 422
    assert "Unknown format" in bad.text
    assert _rows(site.database.url, "SELECT count(*) FROM import_batches") == [(0,)]


async def test_api_upload_and_status(site: Site) -> None:
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=site.app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {site.api_token}"},
    )
    async with api:
        response = await api.post(
            "/api/v1/projects/up/imports",
            data={"source": "api"},
            files={"file": ("s.json", v7_bytes([v7_record("000009")]), "application/json")},
        )
        assert response.status_code == 202
        batch = response.json()
        assert (batch["status"], batch["file_name"]) == ("queued", "s.json")
        async with jobs.queue.open_async():
            await jobs.queue.run_worker_async(wait=False, install_signal_handlers=False)
        status = await api.get(f"/api/v1/projects/up/imports/{batch['id']}")
        assert status.json()["status"] == "succeeded"
        assert status.json()["dialogues_new"] == 1
        listed = await api.get("/api/v1/projects/up/imports")
        assert [b["id"] for b in listed.json()] == [batch["id"]]
