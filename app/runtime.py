"""The process-wide database handle, shared by the web app, workers and CLI commands."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import make_engine, make_sessionmaker


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


_current: Database | None = None


def init_database(url: str, *, pool_size: int = 20) -> Database:
    global _current
    engine = make_engine(url, pool_size=pool_size)
    _current = Database(url=url, engine=engine, sessionmaker=make_sessionmaker(engine))
    return _current


def use_database(db: Database | None) -> None:
    """Install an existing handle (tests share theirs with jobs this way)."""
    global _current
    _current = db


def database() -> Database:
    if _current is None:
        raise RuntimeError("the database is not initialised in this process")
    return _current
