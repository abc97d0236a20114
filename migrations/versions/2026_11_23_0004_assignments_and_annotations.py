"""Assignments, annotations, their change log and turn notes; project overlap and suggestions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 19:58:17.406927
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("dialogue_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), server_default="assigned", nullable=False),
        sa.Column("skip_reason", sa.String(), server_default="", nullable=False),
        sa.Column("assigned_by_id", sa.BigInteger(), nullable=True),
        sa.Column("codebook_version", sa.Integer(), nullable=False),
        sa.Column("seconds_spent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status <> 'skipped' OR skip_reason <> ''", name=op.f("ck_assignments_skip_has_reason")
        ),
        sa.CheckConstraint(
            "status IN ('assigned', 'in_progress', 'submitted', 'skipped')",
            name=op.f("ck_assignments_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"],
            ["users.id"],
            name=op.f("fk_assignments_assigned_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["dialogue_id"],
            ["dialogues.id"],
            name=op.f("fk_assignments_dialogue_id_dialogues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_assignments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_assignments_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint(
            "dialogue_id", "user_id", name=op.f("uq_assignments_dialogue_id_user_id")
        ),
    )
    op.create_index(
        "ix_assignments_project_user_status",
        "assignments",
        ["project_id", "user_id", "status"],
        unique=False,
    )
    op.create_table(
        "annotation_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("change_id", sa.UUID(), nullable=False),
        sa.Column("assignment_id", sa.BigInteger(), nullable=False),
        sa.Column("dialogue_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("dimension", sa.String(), nullable=False),
        sa.Column("labels", postgresql.ARRAY(sa.String()), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_annotation_changes_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dialogue_id"],
            ["dialogues.id"],
            name=op.f("fk_annotation_changes_dialogue_id_dialogues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_annotation_changes_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_changes")),
        sa.UniqueConstraint("change_id", name=op.f("uq_annotation_changes_change_id")),
    )
    op.create_index(
        "ix_annotation_changes_dialogue_position",
        "annotation_changes",
        ["dialogue_id", "position"],
        unique=False,
    )
    op.create_table(
        "annotations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("assignment_id", sa.BigInteger(), nullable=False),
        sa.Column("dialogue_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("dimension", sa.String(), nullable=False),
        sa.Column("labels", postgresql.ARRAY(sa.String()), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("codebook_version", sa.Integer(), nullable=False),
        sa.Column("updated_by_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(labels IS NULL) <> (text IS NULL)", name=op.f("ck_annotations_labels_or_text")
        ),
        sa.CheckConstraint("position >= -1", name=op.f("ck_annotations_position_known")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_annotations_version_positive")),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_annotations_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dialogue_id"],
            ["dialogues.id"],
            name=op.f("fk_annotations_dialogue_id_dialogues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_annotations_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotations")),
        sa.UniqueConstraint(
            "assignment_id",
            "position",
            "dimension",
            name=op.f("uq_annotations_assignment_id_position_dimension"),
        ),
    )
    op.create_index(
        op.f("ix_annotations_dialogue_id"), "annotations", ["dialogue_id"], unique=False
    )
    op.create_table(
        "turn_notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("assignment_id", sa.BigInteger(), nullable=False),
        sa.Column("dialogue_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("flag", sa.String(), server_default="", nullable=False),
        sa.Column("text", sa.Text(), server_default="", nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('flag', 'comment')", name=op.f("ck_turn_notes_kind_known")),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_turn_notes_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dialogue_id"],
            ["dialogues.id"],
            name=op.f("fk_turn_notes_dialogue_id_dialogues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_turn_notes_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_turn_notes")),
        sa.UniqueConstraint("client_id", name=op.f("uq_turn_notes_client_id")),
    )
    op.create_index(
        "ix_turn_notes_dialogue_position", "turn_notes", ["dialogue_id", "position"], unique=False
    )
    op.add_column(
        "dialogues", sa.Column("assigned_count", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_index(
        "ix_dialogues_project_coverage",
        "dialogues",
        ["project_id", "assigned_count", "id"],
        unique=False,
    )
    op.add_column(
        "projects", sa.Column("overlap", sa.Integer(), server_default="2", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_projects_overlap_range"), "projects", "overlap BETWEEN 1 AND 50"
    )
    op.add_column("projects", sa.Column("suggestion_source", sa.String(), nullable=True))


def downgrade() -> None:
    op.drop_column("projects", "suggestion_source")
    op.drop_constraint(op.f("ck_projects_overlap_range"), "projects", type_="check")
    op.drop_column("projects", "overlap")
    op.drop_index("ix_dialogues_project_coverage", table_name="dialogues")
    op.drop_column("dialogues", "assigned_count")
    op.drop_index("ix_turn_notes_dialogue_position", table_name="turn_notes")
    op.drop_table("turn_notes")
    op.drop_index(op.f("ix_annotations_dialogue_id"), table_name="annotations")
    op.drop_table("annotations")
    op.drop_index("ix_annotation_changes_dialogue_position", table_name="annotation_changes")
    op.drop_table("annotation_changes")
    op.drop_index("ix_assignments_project_user_status", table_name="assignments")
    op.drop_table("assignments")
