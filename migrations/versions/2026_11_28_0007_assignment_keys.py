"""Rows of an assignment (values, change log, turn notes) keyed by (assignment, dialogue).

Each had two foreign keys, to the assignment and to the dialogue. They now have one, to the
assignment's `(id, dialogue_id)`: a row's dialogue must be its assignment's (nothing checked
that before), and inserting a row checks and locks one parent row instead of two (a save writes
two such rows). Deleting a dialogue or a project still removes them, through the assignment.

The unique index the key needs is built CONCURRENTLY; the keys are added NOT VALID (no scan
under the lock) and validated afterwards, each in its own transaction. A build interrupted
halfway leaves an invalid index to drop before running again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 12:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("annotations", "annotation_changes", "turn_notes")
UNIQUE = "uq_assignments_id_dialogue_id"


def _key(table: str) -> str:
    return f"fk_{table}_assignment_id_dialogue_id_assignments"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {UNIQUE} ON assignments (id, dialogue_id)")
    op.execute(f"ALTER TABLE assignments ADD CONSTRAINT {UNIQUE} UNIQUE USING INDEX {UNIQUE}")
    for table in TABLES:
        op.drop_constraint(f"fk_{table}_assignment_id_assignments", table, type_="foreignkey")
        op.drop_constraint(f"fk_{table}_dialogue_id_dialogues", table, type_="foreignkey")
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
