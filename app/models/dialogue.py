"""Imported dialogues, their turns, the import batches and the named sources of labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt


class AnnotationSource(CreatedAt, Base):
    """A named origin of labels that came with data (a file, a model): never gold."""

    __tablename__ = "annotation_sources"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str]


class ImportBatch(CreatedAt, Base):
    """One file import: its progress while it runs, and its counts or errors afterwards."""

    __tablename__ = "import_batches"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'validating', 'writing', 'succeeded', 'failed')",
            name="status_known",
        ),
        # The same file under the same source imports once (re-imports are refused by name).
        Index(
            "uq_import_batches_same_file",
            "project_id",
            "source_id",
            "sha256",
            unique=True,
            postgresql_where=text("status = 'succeeded'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    source_id: Mapped[int] = mapped_column(ForeignKey("annotation_sources.id"))
    file_name: Mapped[str]
    format: Mapped[str | None]
    requested_format: Mapped[str | None]
    sha256: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    add_new_labels: Mapped[bool] = mapped_column(default=False, server_default="false")
    status: Mapped[str] = mapped_column(default="queued", server_default="queued")
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    records_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dialogues_new: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dialogues_matched: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    turns: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    annotations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    flagged_turns: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    new_labels: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    message: Mapped[str] = mapped_column(default="", server_default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ImportChunk(Base):
    """The uploaded file, kept in the database until its import ends, so any worker can read it."""

    __tablename__ = "import_chunks"

    batch_id: Mapped[int] = mapped_column(
        ForeignKey("import_batches.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Dialogue(CreatedAt, Base):
    """An imported session; `metadata` keeps every field of the record not stored elsewhere."""

    __tablename__ = "dialogues"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        Index("ix_dialogues_session_labels", "session_labels", postgresql_using="gin"),
        Index("ix_dialogues_search", "search", postgresql_using="gin"),
        Index("ix_dialogues_project_id_id", "project_id", "id"),
        Index("ix_dialogues_project_coverage", "project_id", "assigned_count", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str]
    language: Mapped[str] = mapped_column(String(8))
    # `json`, not `jsonb`: nested objects keep their key order, so exports reproduce the file.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    layout: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    source_format: Mapped[str]
    turn_count: Mapped[int] = mapped_column(Integer)
    # SHA-256 of the turns (speaker and content): a re-import must carry the same dialogue.
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    import_batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id"))
    # Session labels of every source, {dimension: [labels]}: what list filters match on.
    session_labels: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    search: Mapped[str] = mapped_column(TSVECTOR)
    # Live (not skipped) assignments: "next dialogue" hands out the least covered first.
    assigned_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Turn(Base):
    """One utterance, identified by its position in the dialogue (never by its original id)."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("dialogue_id", "position"),
        CheckConstraint("speaker IN ('client', 'counselor')", name="speaker_known"),
        CheckConstraint("position >= 0", name="position_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dialogue_id: Mapped[int] = mapped_column(ForeignKey("dialogues.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str]
    participant: Mapped[str]
    content: Mapped[str] = mapped_column(Text)
    original_id: Mapped[str | None]
    extras: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    layout: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    flags: Mapped[list[str]] = mapped_column(ARRAY(String), default=list, server_default="{}")


class SourceAnnotation(Base):
    """A value that came with the data: labels or free text of one source, dimension, place.

    `position` is the turn's position, or -1 for the whole session. Values are stored exactly
    as the file spelled them, so an export reproduces the file.
    """

    __tablename__ = "source_annotations"
    __table_args__ = (
        # One index serves the rule and the reads (a dialogue's values, by place and source);
        # fewer indexes keep bulk imports close to COPY speed.
        UniqueConstraint("dialogue_id", "position", "source_id", "dimension"),
        CheckConstraint("position >= -1", name="position_known"),
        CheckConstraint("(labels IS NULL) <> (text IS NULL)", name="labels_or_text"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("annotation_sources.id", ondelete="CASCADE"))
    dialogue_id: Mapped[int] = mapped_column(ForeignKey("dialogues.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    dimension: Mapped[str]
    labels: Mapped[list[str] | None] = mapped_column(ARRAY(String))
    text: Mapped[str | None] = mapped_column(Text)
    scalar: Mapped[bool] = mapped_column(default=False, server_default="false")
    import_batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id"))
