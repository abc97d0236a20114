"""Index the change log and the turn notes by assignment.

Removing an assignment (a lead unassigns it, or its dialogue or project is deleted) deletes its
changes and notes through their foreign keys; without an index on `assignment_id` each of
those deletes scanned the whole table. The indexes are built CONCURRENTLY (saves go on
meanwhile); a build interrupted halfway leaves an invalid index to drop before running again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 10:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Built without blocking saves on a large log (CONCURRENTLY runs outside a transaction).
    with op.get_context().autocommit_block():
        op.create_index(
            op.f("ix_annotation_changes_assignment_id"),
            "annotation_changes",
            ["assignment_id"],
            postgresql_concurrently=True,
        )
        op.create_index(
            op.f("ix_turn_notes_assignment_id"),
            "turn_notes",
            ["assignment_id"],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_turn_notes_assignment_id"), table_name="turn_notes")
    op.drop_index(op.f("ix_annotation_changes_assignment_id"), table_name="annotation_changes")
