"""Typed helpers for annotation tests."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.codebook import core
from app.codebook import service as codebook
from app.codebook.schemas import DimensionEdit
from app.models import Project


async def edit_dimension(
    db: AsyncSession, project: Project, actor_id: int, key: str, **changes: object
) -> None:
    """Change a dimension as the codebook editor does (a new codebook version)."""
    view = (await core.load(db, project)).get(key)
    assert view is not None
    d = view.dimension
    fields = {
        k: getattr(d, k)
        for k in ("name_en", "name_zh", "description", "scope", "speaker", "kind", "max_labels")
    }
    data = DimensionEdit.model_validate({**fields, "required": d.required, **changes})
    assert await codebook.edit_dimension(db, actor_id, project, key, data)
    await db.flush()
