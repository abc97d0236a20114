"""Database URLs, engine and session factory, and raw driver connections for hot paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from weakref import WeakKeyDictionary

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Engine, event, exc
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from app.config import Settings
from app.embedded import embedded_url


def libpq_url(url: str) -> str:
    """The URL in plain `postgresql://` form (psycopg, procrastinate, psql)."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", *parts[1:]))


def asyncpg_url(url: str) -> str:
    """The URL in SQLAlchemy's `postgresql+asyncpg://` form."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql+asyncpg", *parts[1:]))


def resolve_database_url(settings: Settings) -> str:
    """The configured server's URL, starting the embedded server when none is configured."""
    if settings.database_url:
        return libpq_url(settings.database_url)
    return embedded_url(settings.resolved_data_dir())


KEEP = 8  # pooled connections the hot paths keep checked out between uses (the pool has 8 more)
_KEPT: WeakKeyDictionary[Engine, list[Any]] = WeakKeyDictionary()


def make_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """Up to `pool_size` + 10 connections, each kept once opened, and `KEEP` more for the
    connections `raw_connection` keeps checked out.

    The 10 are not SQLAlchemy's "overflow", which closes a connection when it comes back to a
    full pool: under a burst that opened and closed PostgreSQL backends all the time (~10 a
    second at full save speed), each costing a fork, codec set-up and cold statement caches.

    No `pool_pre_ping`: with asyncpg it costs three round trips (BEGIN, a ping, ROLLBACK) on
    every checkout. A connection the server closed (restart, idle kill) is noticed by asyncpg's
    protocol as soon as the socket closes, so the checkout hook below refuses it for free and
    the pool retries with a fresh one; a failure in the middle of a request still invalidates
    the pool through SQLAlchemy's disconnect handling (one failed request at most).
    """
    size = pool_size + 10 + KEEP  # the hot paths' kept connections come on top
    engine = create_async_engine(asyncpg_url(url), pool_size=size, max_overflow=0)
    event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def database_key(bind: AsyncEngine | AsyncConnection) -> str:
    """Which database a bind talks to (process-wide caches key on it: tests use several)."""
    engine = bind.sync_engine
    key = _KEYS.get(engine)
    if key is None:  # rendering the URL costs more than the cache look-up it serves
        key = _KEYS[engine] = str(engine.url)
    return key


_KEYS: WeakKeyDictionary[Engine, str] = WeakKeyDictionary()


async def session_driver_connection(db: AsyncSession) -> Any:
    """The asyncpg connection of a session's transaction (its statements run inside it)."""
    connection = await db.connection()
    return (await connection.get_raw_connection()).driver_connection


@asynccontextmanager
async def raw_connection(bind: AsyncEngine | AsyncConnection) -> AsyncIterator[Any]:
    """The asyncpg connection under the app's sessions, for one-statement hot paths.

    From an engine: a pooled connection outside any transaction, so each statement commits on
    its own (one statement is atomic; work of several statements opens its own transaction).
    Up to `KEEP` of them stay checked out between uses (`_KEPT`), because a checkout from
    SQLAlchemy's pool and the return cost two greenlet round trips, ~1/10 of a save's CPU; a
    kept connection the server has closed is dropped for another, and `release_kept` gives
    them back before the engine is disposed.
    From a connection (the tests share one inside a transaction): that connection, its work
    inside a savepoint of it, so statements see and are rolled back with the test's data.
    """
    if isinstance(bind, AsyncConnection):
        async with bind.begin_nested():
            shared = await bind.get_raw_connection()
            yield shared.driver_connection
        return
    kept = _KEPT.setdefault(bind.sync_engine, [])
    proxied: Any = None
    while kept and proxied is None:
        proxied = kept.pop()
        if proxied.driver_connection.is_closed():  # the server went away meanwhile
            proxied.invalidate()
            proxied = None
    if proxied is None:
        proxied = await bind.raw_connection()
    try:
        yield proxied.driver_connection
    except BaseException as error:
        in_transaction = proxied.driver_connection.is_in_transaction()
        if isinstance(error, Exception) and not isinstance(error, _BROKEN) and not in_transaction:
            # An answer from the server or an error of ours between statements: no statement
            # is in flight and no transaction open, so the connection goes back to the pool.
            await greenlet_spawn(proxied.close)
        else:
            # Cancelled or cut off mid-statement, or left inside a transaction of its own: its
            # state is unknown, so it is closed.
            proxied.invalidate(error if isinstance(error, Exception) else None)
        raise
    connection: Any = proxied.driver_connection
    if connection.is_in_transaction():
        # Left inside a transaction of its own (a bug of the caller's): the pool would not
        # roll back what SQLAlchemy did not begin, so the connection is closed, its work undone.
        proxied.invalidate()
    elif len(kept) < KEEP and not connection.is_closed() and _KEPT.get(bind.sync_engine) is kept:
        kept.append(proxied)
    else:
        await greenlet_spawn(proxied.close)


async def release_kept(engine: AsyncEngine) -> None:
    """Give the connections `raw_connection` keeps back to the engine's pool."""
    kept = _KEPT.pop(engine.sync_engine, [])
    for proxied in kept:
        await greenlet_spawn(proxied.close)


# Errors after which a connection is not reused.
_BROKEN = (OSError, asyncpg.InterfaceError)
