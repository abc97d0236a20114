"""Cached agreement figures: one row per project and filter set, tagged with the data version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class AgreementResult(Base):
    """The figures computed for `params` when the project's data version was `data_version`."""

    __tablename__ = "agreement_results"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    params_key: Mapped[str] = mapped_column(primary_key=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    data_version: Mapped[int] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    duration_ms: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
