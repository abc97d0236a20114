"""Writing the audit log; every service that changes state calls `record`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent


def record(
    db: AsyncSession,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: object,
    *,
    project_id: int | None = None,
    **details: Any,
) -> None:
    """Add one audit event to the caller's transaction (it commits or rolls back with it)."""
    db.add(
        AuditEvent(
            actor_id=actor_id,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            project_id=project_id,
            details=details,
        )
    )
