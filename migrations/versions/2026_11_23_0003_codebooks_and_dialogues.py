"""Codebooks (dimensions, labels, versions), sources, import batches and files, dialogues, turns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:40:19.825436
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "annotation_sources",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_annotation_sources_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_sources")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_annotation_sources_project_id_name")
        ),
    )
    op.create_table(
        "codebook_dimensions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("name_en", sa.String(), nullable=False),
        sa.Column("name_zh", sa.String(), nullable=False),
        sa.Column("description", sa.String(), server_default="", nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("speaker", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("max_labels", sa.Integer(), nullable=True),
        sa.Column("required", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'text' AND max_labels IS NULL) OR (kind = 'label' AND max_labels >= 1)",
            name=op.f("ck_codebook_dimensions_cardinality_matches_kind"),
        ),
        sa.CheckConstraint(
            "key ~ '^[a-z][a-z0-9_]{0,39}$'", name=op.f("ck_codebook_dimensions_key_format")
        ),
        sa.CheckConstraint(
            "kind IN ('label', 'text')", name=op.f("ck_codebook_dimensions_kind_known")
        ),
        sa.CheckConstraint(
            "scope IN ('session', 'turn')", name=op.f("ck_codebook_dimensions_scope_known")
        ),
        sa.CheckConstraint(
            "speaker IN ('client', 'counselor', 'any')",
            name=op.f("ck_codebook_dimensions_speaker_known"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_codebook_dimensions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_codebook_dimensions")),
        sa.UniqueConstraint(
            "project_id", "key", name=op.f("uq_codebook_dimensions_project_id_key")
        ),
    )
    op.create_table(
        "codebook_versions",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("change", sa.String(), server_default="", nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_codebook_versions_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_codebook_versions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "version", name=op.f("pk_codebook_versions")),
    )
    op.create_table(
        "codebook_labels",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dimension_id", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("name_en", sa.String(), nullable=False),
        sa.Column("name_zh", sa.String(), nullable=False),
        sa.Column("description", sa.String(), server_default="", nullable=False),
        sa.Column("hotkey", sa.String(length=1), nullable=True),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.String()), server_default="{}", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "hotkey IS NULL OR length(hotkey) = 1", name=op.f("ck_codebook_labels_hotkey_one_char")
        ),
        sa.ForeignKeyConstraint(
            ["dimension_id"],
            ["codebook_dimensions.id"],
            name=op.f("fk_codebook_labels_dimension_id_codebook_dimensions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_codebook_labels")),
        sa.UniqueConstraint(
            "dimension_id", "value", name=op.f("uq_codebook_labels_dimension_id_value")
        ),
    )
    op.create_index(
        op.f("ix_codebook_labels_dimension_id"), "codebook_labels", ["dimension_id"], unique=False
    )
    op.create_table(
        "import_batches",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("format", sa.String(), nullable=True),
        sa.Column("requested_format", sa.String(), nullable=True),
        sa.Column("sha256", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("add_new_labels", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("status", sa.String(), server_default="queued", nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("records_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dialogues_new", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dialogues_matched", sa.Integer(), server_default="0", nullable=False),
        sa.Column("turns", sa.Integer(), server_default="0", nullable=False),
        sa.Column("annotations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("flagged_turns", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "errors", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column(
            "new_labels",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("message", sa.String(), server_default="", nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'validating', 'writing', 'succeeded', 'failed')",
            name=op.f("ck_import_batches_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_import_batches_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_import_batches_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["annotation_sources.id"],
            name=op.f("fk_import_batches_source_id_annotation_sources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batches")),
    )
    op.create_index(
        op.f("ix_import_batches_project_id"), "import_batches", ["project_id"], unique=False
    )
    op.create_index(
        "uq_import_batches_same_file",
        "import_batches",
        ["project_id", "source_id", "sha256"],
        unique=True,
        postgresql_where=sa.text("status = 'succeeded'"),
    )
    op.create_table(
        "dialogues",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("metadata", postgresql.JSON(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "layout", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("source_format", sa.String(), nullable=False),
        sa.Column("turn_count", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("import_batch_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "session_labels",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("search", postgresql.TSVECTOR(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batches.id"],
            name=op.f("fk_dialogues_import_batch_id_import_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_dialogues_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dialogues")),
        sa.UniqueConstraint(
            "project_id", "external_id", name=op.f("uq_dialogues_project_id_external_id")
        ),
    )
    op.create_index("ix_dialogues_project_id_id", "dialogues", ["project_id", "id"], unique=False)
    op.create_index(
        "ix_dialogues_search", "dialogues", ["search"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "ix_dialogues_session_labels",
        "dialogues",
        ["session_labels"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_table(
        "import_chunks",
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_import_chunks_batch_id_import_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "seq", name=op.f("pk_import_chunks")),
    )
    op.create_table(
        "source_annotations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("dialogue_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("dimension", sa.String(), nullable=False),
        sa.Column("labels", postgresql.ARRAY(sa.String()), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("scalar", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("import_batch_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(labels IS NULL) <> (text IS NULL)", name=op.f("ck_source_annotations_labels_or_text")
        ),
        sa.CheckConstraint("position >= -1", name=op.f("ck_source_annotations_position_known")),
        sa.ForeignKeyConstraint(
            ["dialogue_id"],
            ["dialogues.id"],
            name=op.f("fk_source_annotations_dialogue_id_dialogues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batches.id"],
            name=op.f("fk_source_annotations_import_batch_id_import_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["annotation_sources.id"],
            name=op.f("fk_source_annotations_source_id_annotation_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_annotations")),
        sa.UniqueConstraint(
            "dialogue_id",
            "position",
            "source_id",
            "dimension",
            name=op.f("uq_source_annotations_dialogue_id_position_source_id_dimension"),
        ),
    )
    op.create_table(
        "turns",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dialogue_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(), nullable=False),
        sa.Column("participant", sa.String(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("original_id", sa.String(), nullable=True),
        sa.Column("extras", postgresql.JSON(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "layout", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("flags", postgresql.ARRAY(sa.String()), server_default="{}", nullable=False),
        sa.CheckConstraint(
            "speaker IN ('client', 'counselor')", name=op.f("ck_turns_speaker_known")
        ),
        sa.CheckConstraint("position >= 0", name=op.f("ck_turns_position_non_negative")),
        sa.ForeignKeyConstraint(
            ["dialogue_id"],
            ["dialogues.id"],
            name=op.f("fk_turns_dialogue_id_dialogues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_turns")),
        sa.UniqueConstraint("dialogue_id", "position", name=op.f("uq_turns_dialogue_id_position")),
    )
    op.add_column(
        "projects", sa.Column("codebook_version", sa.Integer(), server_default="1", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("projects", "codebook_version")
    op.drop_table("turns")
    op.drop_table("source_annotations")
    op.drop_table("import_chunks")
    op.drop_index("ix_dialogues_session_labels", table_name="dialogues", postgresql_using="gin")
    op.drop_index("ix_dialogues_search", table_name="dialogues", postgresql_using="gin")
    op.drop_index("ix_dialogues_project_id_id", table_name="dialogues")
    op.drop_table("dialogues")
    op.drop_index(
        "uq_import_batches_same_file",
        table_name="import_batches",
        postgresql_where=sa.text("status = 'succeeded'"),
    )
    op.drop_index(op.f("ix_import_batches_project_id"), table_name="import_batches")
    op.drop_table("import_batches")
    op.drop_index(op.f("ix_codebook_labels_dimension_id"), table_name="codebook_labels")
    op.drop_table("codebook_labels")
    op.drop_table("codebook_versions")
    op.drop_table("codebook_dimensions")
    op.drop_table("annotation_sources")
