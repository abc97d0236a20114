"""The PostgreSQL-backed job queue (procrastinate) and its tasks."""

from __future__ import annotations

import logging
from typing import Any

import procrastinate

from app.config import get_settings

log = logging.getLogger(__name__)

queue = procrastinate.App(connector=procrastinate.PsycopgConnector())


def configure(database_url: str) -> procrastinate.App:
    """Point the queue at the database (a libpq URL); workers can run on any machine."""
    connector = procrastinate.PsycopgConnector(conninfo=database_url)
    # What App.replace_connector does, kept for the life of the process.
    queue.connector = connector
    queue.job_manager.connector = connector
    return queue


@queue.periodic(cron="*/15 * * * *")
@queue.task(name="purge_expired", queue="maintenance", queueing_lock="purge_expired")
async def purge_expired(timestamp: int | None = None) -> dict[str, Any]:
    """Delete expired sessions and old login attempts."""
    from app.auth.service import purge_expired as purge
    from app.runtime import database

    async with database().sessionmaker() as db, db.begin():
        counts = await purge(db, get_settings())
    log.info("purged %s", counts)
    return counts


@queue.task(name="import_file", queue="imports", pass_context=False)
async def import_file(batch_id: int) -> str:
    """Run one uploaded import: the stored file is read back, validated, then written."""
    from app.imports import storage
    from app.imports.runner import Job
    from app.runtime import database

    db = database()
    async with db.sessionmaker() as session:
        path = await storage.spool(session, batch_id)
    try:
        batch = await Job(db, batch_id).run(path)
    finally:
        path.unlink(missing_ok=True)
        async with db.sessionmaker() as session, session.begin():
            await storage.discard(session, batch_id)
    return batch.status


@queue.task(name="recompute_agreement", queue="agreement", pass_context=False)
async def recompute_agreement(project_id: int, params: dict[str, Any]) -> int:
    """Recompute one filter set's agreement figures and cache them; returns the data version."""
    from app.agreement.service import Filters, recompute
    from app.models import Project
    from app.runtime import database

    async with database().sessionmaker() as session, session.begin():
        project = await session.get(Project, project_id)
        if project is None:
            return -1
        found = await recompute(session, project, Filters.from_dict(params))
    log.info("agreement of project %s recomputed in %s ms", project_id, found.duration_ms)
    return found.data_version
