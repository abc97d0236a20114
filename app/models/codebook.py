"""A project's codebook: label dimensions and free-text fields, their labels, and versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt


class CodebookDimension(CreatedAt, Base):
    """One dimension: a closed vocabulary (`kind` label) or a free-text field (`kind` text)."""

    __tablename__ = "codebook_dimensions"
    __table_args__ = (
        UniqueConstraint("project_id", "key"),
        CheckConstraint("scope IN ('session', 'turn')", name="scope_known"),
        CheckConstraint("speaker IN ('client', 'counselor', 'any')", name="speaker_known"),
        CheckConstraint("kind IN ('label', 'text')", name="kind_known"),
        CheckConstraint(
            "(kind = 'text' AND max_labels IS NULL) OR (kind = 'label' AND max_labels >= 1)",
            name="cardinality_matches_kind",
        ),
        CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,39}$'", name="key_format"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str]
    name_en: Mapped[str]
    name_zh: Mapped[str]
    description: Mapped[str] = mapped_column(default="", server_default="")
    scope: Mapped[str]
    speaker: Mapped[str]
    kind: Mapped[str]
    max_labels: Mapped[int | None] = mapped_column(Integer)
    required: Mapped[bool] = mapped_column(default=False, server_default="false")
    position: Mapped[int] = mapped_column(default=0, server_default="0")


class CodebookLabel(CreatedAt, Base):
    """One label of a dimension's vocabulary; `value` is what annotations store, never renamed."""

    __tablename__ = "codebook_labels"
    __table_args__ = (
        UniqueConstraint("dimension_id", "value"),
        CheckConstraint("hotkey IS NULL OR length(hotkey) = 1", name="hotkey_one_char"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dimension_id: Mapped[int] = mapped_column(
        ForeignKey("codebook_dimensions.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[str]
    name_en: Mapped[str]
    name_zh: Mapped[str]
    description: Mapped[str] = mapped_column(default="", server_default="")
    hotkey: Mapped[str | None] = mapped_column(String(1))
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    aliases: Mapped[list[str]] = mapped_column(ARRAY(String), default=list, server_default="{}")


class CodebookVersion(Base):
    """The whole codebook as it was at one version; annotations and snapshots cite it."""

    __tablename__ = "codebook_versions"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    change: Mapped[str] = mapped_column(default="", server_default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
