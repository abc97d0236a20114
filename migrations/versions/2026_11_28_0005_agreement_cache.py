"""Project data version (bumped by triggers) and the agreement results cache.

`projects.data_version` changes whenever something the agreement figures read changes: an
assignment enters or leaves "submitted" (or a submitted one is inserted or deleted: bulk
inserts bump once per statement), an import finishes,
or the codebook version moves. The triggers keep it right whatever code path made the change,
and they do not touch the hot path of saves (a save never changes a submitted assignment).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION psy_bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'projects' THEN
        NEW.data_version := OLD.data_version + 1;
        RETURN NEW;
    END IF;
    IF TG_LEVEL = 'STATEMENT' THEN
        UPDATE projects SET data_version = data_version + 1
        WHERE id IN (SELECT project_id FROM new_rows WHERE status = 'submitted');
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        UPDATE projects SET data_version = data_version + 1 WHERE id = OLD.project_id;
        RETURN OLD;
    END IF;
    UPDATE projects SET data_version = data_version + 1 WHERE id = NEW.project_id;
    RETURN NEW;
END $$
"""
TRIGGERS = (
    """CREATE TRIGGER assignments_submitted_inserted
    AFTER INSERT ON assignments REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION psy_bump_data_version()""",
    """CREATE TRIGGER assignments_submitted_changed
    AFTER UPDATE OF status ON assignments FOR EACH ROW
    WHEN ((OLD.status = 'submitted') <> (NEW.status = 'submitted'))
    EXECUTE FUNCTION psy_bump_data_version()""",
    """CREATE TRIGGER assignments_submitted_deleted
    AFTER DELETE ON assignments FOR EACH ROW
    WHEN (OLD.status = 'submitted')
    EXECUTE FUNCTION psy_bump_data_version()""",
    """CREATE TRIGGER import_batches_succeeded
    AFTER UPDATE OF status ON import_batches FOR EACH ROW
    WHEN (NEW.status = 'succeeded' AND OLD.status <> 'succeeded')
    EXECUTE FUNCTION psy_bump_data_version()""",
    """CREATE TRIGGER projects_codebook_changed
    BEFORE UPDATE OF codebook_version ON projects FOR EACH ROW
    WHEN (NEW.codebook_version <> OLD.codebook_version)
    EXECUTE FUNCTION psy_bump_data_version()""",
)


def upgrade() -> None:
    op.add_column(
        "projects",
        sa.Column("data_version", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_table(
        "agreement_results",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("params_key", sa.String(), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("data_version", sa.BigInteger(), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "params_key"),
    )
    for statement in (FUNCTION, *TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    for trigger, table in (
        ("projects_codebook_changed", "projects"),
        ("import_batches_succeeded", "import_batches"),
        ("assignments_submitted_deleted", "assignments"),
        ("assignments_submitted_changed", "assignments"),
        ("assignments_submitted_inserted", "assignments"),
    ):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    op.execute("DROP FUNCTION psy_bump_data_version()")
    op.drop_table("agreement_results")
    op.drop_column("projects", "data_version")
