"""Assignments of dialogues to annotators, their values, the change log and turn notes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt

ASSIGNMENT_STATUSES = ("assigned", "in_progress", "submitted", "skipped")


def of_assignment(table: str) -> ForeignKeyConstraint:
    """The key of a row that belongs to an assignment: (assignment, dialogue), so its dialogue
    is the assignment's, and it goes with the assignment (and with the assignment's dialogue or
    project). One key where there were two: a save checks one parent row, not two."""
    return ForeignKeyConstraint(
        ["assignment_id", "dialogue_id"],
        ["assignments.id", "assignments.dialogue_id"],
        name=f"fk_{table}_assignment_id_dialogue_id_assignments",
        ondelete="CASCADE",
    )


class Assignment(CreatedAt, Base):
    """One annotator on one dialogue; a person gets a dialogue at most once."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("dialogue_id", "user_id"),
        # The target of the values' (assignment, dialogue) key: a value's dialogue is its
        # assignment's.
        UniqueConstraint("id", "dialogue_id"),
        CheckConstraint(
            "status IN ('assigned', 'in_progress', 'submitted', 'skipped')", name="status_known"
        ),
        CheckConstraint("status <> 'skipped' OR skip_reason <> ''", name="skip_has_reason"),
        Index("ix_assignments_project_user_status", "project_id", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dialogue_id: Mapped[int] = mapped_column(ForeignKey("dialogues.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(default="assigned", server_default="assigned")
    skip_reason: Mapped[str] = mapped_column(default="", server_default="")
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    codebook_version: Mapped[int] = mapped_column(Integer)
    seconds_spent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Annotation(Base):
    """An annotator's current value for one dimension on one turn (position) or the session (-1).

    `version` counts the changes; a save names the version it was based on, and a save based on
    an older version is refused (409) instead of overwriting.
    """

    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("assignment_id", "position", "dimension"),
        of_assignment("annotations"),
        CheckConstraint("position >= -1", name="position_known"),
        CheckConstraint("(labels IS NULL) <> (text IS NULL)", name="labels_or_text"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    assignment_id: Mapped[int] = mapped_column(BigInteger)
    dialogue_id: Mapped[int] = mapped_column(BigInteger, index=True)
    position: Mapped[int] = mapped_column(Integer)
    dimension: Mapped[str]
    labels: Mapped[list[str] | None] = mapped_column(ARRAY(String))
    text: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    codebook_version: Mapped[int] = mapped_column(Integer)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AnnotationChange(Base):
    """Every accepted change, keyed by the client's change id so a retried save never repeats."""

    __tablename__ = "annotation_changes"
    __table_args__ = (
        Index("ix_annotation_changes_dialogue_position", "dialogue_id", "position"),
        # Removing an assignment deletes its changes: without this, a scan of the whole log.
        Index("ix_annotation_changes_assignment_id", "assignment_id"),
        of_assignment("annotation_changes"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    change_id: Mapped[uuid.UUID] = mapped_column(UUID, unique=True)
    assignment_id: Mapped[int] = mapped_column(BigInteger)
    dialogue_id: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
    dimension: Mapped[str]
    labels: Mapped[list[str] | None] = mapped_column(ARRAY(String))
    text: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(server_default=func.now())


class TurnNote(CreatedAt, Base):
    """A flag ("unclear", "risk content") or a comment an annotator puts on a turn."""

    __tablename__ = "turn_notes"
    __table_args__ = (
        CheckConstraint("kind IN ('flag', 'comment')", name="kind_known"),
        Index("ix_turn_notes_dialogue_position", "dialogue_id", "position"),
        Index("ix_turn_notes_assignment_id", "assignment_id"),
        of_assignment("turn_notes"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    assignment_id: Mapped[int] = mapped_column(BigInteger)
    dialogue_id: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str]
    flag: Mapped[str] = mapped_column(default="", server_default="")
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The client's id for this note: a retried request stores it once.
    client_id: Mapped[uuid.UUID | None] = mapped_column(UUID, unique=True)
