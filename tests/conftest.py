"""Shared fixtures: a real PostgreSQL, migrations applied once, a transaction per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import make_engine
from app.main import create_app
from app.runtime import Database
from tests import db as testdb
from tests.factories import TEST_SECRET


@pytest.fixture(scope="session")
def server_url() -> str:
    return testdb.server_url()


@pytest.fixture(scope="session")
def template_db(server_url: str) -> str:
    """A database migrated to head, cloned by tests; rebuilt when the migrations change."""
    from app.cli import migrate_to_head

    name = f"psy_template_{testdb.migrations_digest()}"
    if not testdb.database_exists(server_url, name):
        building = name + "_building"
        testdb.drop_database(server_url, building)
        testdb.admin_execute(
            server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building))
        )
        migrate_to_head(testdb.with_database(server_url, building))
        testdb.admin_execute(
            server_url,
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(building), sql.Identifier(name)
            ),
        )
    return name


@pytest.fixture(scope="session")
def main_db_url(server_url: str, template_db: str) -> Iterator[str]:
    name = testdb.create_from_template(server_url, template_db)
    yield testdb.with_database(server_url, name)
    testdb.drop_database(server_url, name)


@pytest.fixture
def fresh_db_url(server_url: str, template_db: str) -> Iterator[str]:
    """A throwaway migrated database for tests whose work must really commit."""
    name = testdb.create_from_template(server_url, template_db, "psy_fresh")
    yield testdb.with_database(server_url, name)
    testdb.drop_database(server_url, name)


@pytest.fixture(scope="session")
async def engine(main_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(main_db_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One connection in an outer transaction, rolled back after the test."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        yield conn
        await transaction.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions whose commits become savepoints inside the test's transaction."""
    return async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def db(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def settings(main_db_url: str) -> Settings:
    return Settings(env="test", database_url=main_db_url, secret_key=TEST_SECRET, demo=False)


@pytest.fixture
def app(
    settings: Settings, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> object:
    database = Database(url=settings.database_url or "", engine=engine, sessionmaker=sessionmaker)
    return create_app(settings, database=database)


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
