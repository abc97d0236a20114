"""Database URLs, engine and session factory."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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


def make_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """Connections are held for a whole request; 20 (+10) keeps bursts from opening new ones."""
    return create_async_engine(
        asyncpg_url(url), pool_size=pool_size, max_overflow=10, pool_pre_ping=True
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
