"""The job queue runs real jobs against PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest

from app import jobs
from app.auth.service import now
from app.runtime import Database, init_database, use_database
from tests.factories import password_hash


@pytest.fixture
async def job_database(fresh_db_url: str) -> AsyncIterator[Database]:
    database = init_database(fresh_db_url, pool_size=2)
    jobs.configure(fresh_db_url)
    yield database
    await database.engine.dispose()
    use_database(None)


async def test_purge_job_removes_expired_sessions(job_database: Database) -> None:
    url = job_database.url
    with psycopg.connect(url) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, name, password_hash) VALUES ('j@example.org', 'J', %s) "
            "RETURNING id",
            (password_hash(),),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO user_sessions (id, user_id, expires_at) VALUES "
            "('\\x01', %s, %s), ('\\x02', %s, %s)",
            (user_id, now() - timedelta(minutes=1), user_id, now() + timedelta(hours=1)),
        )
        conn.execute(
            "INSERT INTO login_attempts (email, ip, succeeded, at) VALUES ('j', '1', false, %s)",
            (now() - timedelta(days=2),),
        )
    async with jobs.queue.open_async():
        job_id = await jobs.purge_expired.defer_async()
        await jobs.queue.run_worker_async(wait=False, install_signal_handlers=False)
    with psycopg.connect(url) as conn:
        status = conn.execute(
            "SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)
        ).fetchone()
        sessions = conn.execute("SELECT id FROM user_sessions").fetchall()
        attempts = conn.execute("SELECT count(*) FROM login_attempts").fetchone()
    assert status == ("succeeded",)
    assert sessions == [(b"\x02",)]
    assert attempts == (0,)
