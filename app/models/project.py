"""Projects and per-project roles."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt


class Role(StrEnum):
    lead = "lead"
    annotator = "annotator"
    reviewer = "reviewer"
    exporter = "exporter"


ROLE_CHECK = "role IN (" + ", ".join(f"'{r.value}'" for r in Role) + ")"


class Project(CreatedAt, Base):
    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="slug_format"),
        CheckConstraint("overlap BETWEEN 1 AND 50", name="overlap_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    slug: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    description: Mapped[str] = mapped_column(default="", server_default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    codebook_version: Mapped[int] = mapped_column(default=1, server_default="1")
    # Bumped by database triggers whenever anything the agreement figures read changes
    # (migration 0005); read it with a fresh query, the loaded value may be stale.
    data_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    overlap: Mapped[int] = mapped_column(default=2, server_default="2")
    # The named source whose labels the workspace shows as suggestions (None: hidden).
    suggestion_source: Mapped[str | None]


class ProjectMembership(CreatedAt, Base):
    """One role of one user in one project; a member may hold several rows."""

    __tablename__ = "project_memberships"
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role_known"),)

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(primary_key=True)
