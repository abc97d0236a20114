"""The test database server: embedded PostgreSQL unless DATABASE_URL names one."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from app.config import ROOT_DIR
from app.db import libpq_url

TEST_DATA_DIR = ROOT_DIR / ".pytest-data"


def server_url() -> str:
    """A libpq URL of a server the tests may create databases on."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return libpq_url(configured)
    from app.embedded import start_server

    server = start_server(TEST_DATA_DIR)
    uri: str = server.get_uri()
    return uri


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name`."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def migrations_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT_DIR / "migrations").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".sql"):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def admin_execute(url: str, statement: sql.Composable) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def database_exists(url: str, name: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def create_from_template(url: str, template: str, prefix: str = "psy_test") -> str:
    """A new database cloned from the migrated template; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_execute(
        url,
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        ),
    )
    return name


def drop_database(url: str, name: str) -> None:
    admin_execute(
        url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


def artifacts_dir() -> Path:
    path = ROOT_DIR / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
