"""A large project's figures are recomputed by a real worker from the PostgreSQL job queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text

from app import jobs
from app.agreement import service
from app.agreement.service import Filters, report
from app.models import Assignment, Project
from app.runtime import Database, init_database, use_database
from tests.agreement.test_service import _setup


@pytest.fixture
async def database(fresh_db_url: str) -> AsyncIterator[Database]:
    found = init_database(fresh_db_url, pool_size=3)
    jobs.configure(fresh_db_url)
    yield found
    await found.engine.dispose()
    use_database(None)


async def test_a_worker_brings_the_figures_up_to_date(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with database.sessionmaker() as db, db.begin():
        project, users, _ = await _setup(db)
        project_id = project.id
    monkeypatch.setattr(service, "INLINE_MAX_ASSIGNMENTS", 0)  # "large": never inline
    monkeypatch.setattr(service, "INLINE_MAX_MS", -1)
    async with database.sessionmaker() as db, db.begin():
        project = await db.get(Project, project_id)
        assert project is not None
        waiting = await report(db, project, Filters())
    assert waiting.pending
    assert waiting.computed_at is None

    async with jobs.queue.open_async():
        await jobs.queue.run_worker_async(wait=False, install_signal_handlers=False)

    async with database.sessionmaker() as db, db.begin():
        project = await db.get(Project, project_id)
        assert project is not None
        done = await report(db, project, Filters())
        statuses = (
            await db.execute(
                text(
                    "SELECT task_name, status FROM procrastinate_jobs"
                    " WHERE task_name = 'recompute_agreement'"
                )
            )
        ).all()
        # a submission reopened: the next view shows the old figures and queues again
        one = await db.scalar(select(Assignment).where(Assignment.user_id == users[0].id).limit(1))
        assert one is not None
        one.status = "in_progress"
    assert [tuple(s) for s in statuses] == [("recompute_agreement", "succeeded")]
    assert done.fresh
    assert not done.pending
    emotion = next(d for d in done.dimensions if d["dimension"] == "emotion")
    assert emotion["alpha"]["n_units"] == 8
    async with database.sessionmaker() as db, db.begin():
        project = await db.get(Project, project_id)
        assert project is not None
        stale = await report(db, project, Filters())
    assert stale.pending
    assert not stale.fresh
    assert stale.dimensions == done.dimensions
