"""Job queue: procrastinate 3.10's schema, frozen as SQL beside the migrations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:30:00

The SQL file is a verbatim copy of procrastinate's `sql/schema.sql` for the pinned minor
version; an upgrade of procrastinate adds a migration that applies its own migration files.
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op
from sqlalchemy.util import await_only

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = Path(__file__).resolve().parent.parent / "sql" / "procrastinate-3.10.0-schema.sql"


def upgrade() -> None:
    # A multi-statement script needs the simple query protocol: asyncpg's execute() without
    # arguments, on the connection (and so in the transaction) Alembic is using.
    driver = op.get_bind().connection.driver_connection
    await_only(driver.execute(SCHEMA.read_text(encoding="utf-8")))


def downgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                     JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
            LOOP
                EXECUTE 'DROP ROUTINE IF EXISTS ' || r.sig || ' CASCADE';
            END LOOP;
        END $$;
        """
    )
    for table in ("events", "periodic_defers", "jobs", "workers"):
        op.execute(f"DROP TABLE IF EXISTS procrastinate_{table} CASCADE")
    for type_ in ("job_to_defer_v1", "job_event_type", "job_status"):
        op.execute(f"DROP TYPE IF EXISTS procrastinate_{type_} CASCADE")
