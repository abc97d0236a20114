"""`raw_connection` from an engine: kept connections, and what is never kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import KEEP, make_engine, raw_connection, release_kept


@pytest.fixture
async def engine(fresh_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(fresh_db_url, pool_size=KEEP)
    yield engine
    await release_kept(engine)
    await engine.dispose()


def _out(engine: AsyncEngine) -> int:
    return engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined,no-any-return]


async def test_a_connection_is_kept_for_the_next_use(engine: AsyncEngine) -> None:
    async with raw_connection(engine) as conn:
        first = conn
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    assert _out(engine) == 1  # kept, not back in the pool
    async with raw_connection(engine) as conn:
        assert conn is first
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid
    await release_kept(engine)
    assert _out(engine) == 0


async def test_at_most_keep_are_kept(engine: AsyncEngine) -> None:
    async def use() -> None:
        async with raw_connection(engine) as conn:
            await conn.fetchval("SELECT pg_sleep(0.05)")

    await asyncio.gather(*(use() for _ in range(KEEP + 3)))
    assert _out(engine) == KEEP


async def test_one_the_server_closed_is_dropped_for_another(
    engine: AsyncEngine, fresh_db_url: str
) -> None:
    async with raw_connection(engine) as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    async with raw_connection(engine) as other:  # the kept one again
        assert await other.fetchval("SELECT pg_backend_pid()") == pid
        async with raw_connection(engine) as killer:  # a second one: none is kept free
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
    for _ in range(50):  # asyncpg sees the socket close
        if other.is_closed():
            break
        await asyncio.sleep(0.02)
    assert other.is_closed()
    async with raw_connection(engine) as conn:
        assert not conn.is_closed()
        assert await conn.fetchval("SELECT pg_backend_pid()") != pid


async def test_one_left_in_a_transaction_or_after_an_error_is_not_kept(
    engine: AsyncEngine,
) -> None:
    async with raw_connection(engine) as conn:
        await conn.execute("CREATE TABLE kept_probe (id int)")
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO kept_probe VALUES (1)")
    assert _out(engine) == 0  # closed: its transaction is gone
    with pytest.raises(ZeroDivisionError):
        await _fail(engine)
    assert _out(engine) == 0
    async with raw_connection(engine) as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM pg_stat_activity"
                                    " WHERE state = 'idle in transaction'") == 0  # fmt: skip
        assert await conn.fetchval("SELECT count(*) FROM kept_probe") == 0


async def _fail(engine: AsyncEngine) -> None:
    async with raw_connection(engine) as conn:
        await conn.fetchval("SELECT 1")
        raise ZeroDivisionError
