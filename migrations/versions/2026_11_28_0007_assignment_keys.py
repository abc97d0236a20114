"""Rows of an assignment (values, change log, turn notes) keyed by (assignment, dialogue).

Each had two foreign keys, to the assignment and to the dialogue. They now have one, to the
assignment's `(id, dialogue_id)`: a row's dialogue must be its assignment's (nothing checked
that before), and inserting a row checks and locks one parent row instead of two (a save writes
two such rows). Deleting a dialogue or a project still removes them, through the assignment.

Rows naming another dialogue than their assignment's stop the upgrade before anything
changes. The unique index the key needs is built CONCURRENTLY; the keys are added NOT VALID
(no scan under the lock, which waits at most 10 s for running work) and validated
afterwards, each step in its own transaction and each able to run again after an
interruption (an index left invalid by an interrupted build is dropped and built again).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("annotations", "annotation_changes", "turn_notes")
UNIQUE = "uq_assignments_id_dialogue_id"
_MISMATCHED = """
SELECT count(*) FROM {table} r JOIN assignments a ON a.id = r.assignment_id
WHERE a.dialogue_id <> r.dialogue_id"""


def _key(table: str) -> str:
    return f"fk_{table}_assignment_id_dialogue_id_assignments"


def _exists(bind: sa.engine.Connection, sql: str, **values: str) -> bool:
    return bool(bind.execute(sa.text(sql), values).scalar())


def upgrade() -> None:
    bind = op.get_bind()
    # Rows the new key would refuse stop the upgrade before anything changes.
    for table in TABLES:
        mismatched = bind.execute(sa.text(_MISMATCHED.format(table=table))).scalar()
        if mismatched:
            raise RuntimeError(
                f"{mismatched} rows of {table} name another dialogue than their assignment's;"
                " correct them, then run the upgrade again"
            )
    # Each step can run again after an interruption (the steps before it are committed).
    with op.get_context().autocommit_block():
        invalid = "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid"
        if _exists(bind, invalid, name=UNIQUE):  # a build interrupted halfway
            op.execute(f"DROP INDEX CONCURRENTLY {UNIQUE}")
        op.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {UNIQUE}"
            " ON assignments (id, dialogue_id)"
        )
    op.execute("SET LOCAL lock_timeout = '10s'")  # saves wait at most this long behind it
    named = "SELECT 1 FROM pg_constraint WHERE conname = :name"
    if not _exists(bind, named, name=UNIQUE):
        op.execute(f"ALTER TABLE assignments ADD CONSTRAINT {UNIQUE} UNIQUE USING INDEX {UNIQUE}")
    for table in TABLES:
        for old in (f"fk_{table}_assignment_id_assignments", f"fk_{table}_dialogue_id_dialogues"):
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {old}")
        if not _exists(bind, named, name=_key(table)):
            op.create_foreign_key(
                _key(table),
                table,
                "assignments",
                ["assignment_id", "dialogue_id"],
                ["id", "dialogue_id"],
                ondelete="CASCADE",
                postgresql_not_valid=True,
            )
    with op.get_context().autocommit_block():
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {_key(table)}")


def downgrade() -> None:
    for table in TABLES:
        op.drop_constraint(_key(table), table, type_="foreignkey")
        op.create_foreign_key(
            f"fk_{table}_assignment_id_assignments",
            table,
            "assignments",
            ["assignment_id"],
            ["id"],
            ondelete="CASCADE",
        )
        op.create_foreign_key(
            f"fk_{table}_dialogue_id_dialogues",
            table,
            "dialogues",
            ["dialogue_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.drop_constraint(UNIQUE, "assignments", type_="unique")
