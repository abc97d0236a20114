"""Typed helpers for codebook tests: a seeded project, source annotations, the mounted routers."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.codebook import core
from app.codebook.routes import api_router, router
from app.models import (
    AnnotationSource,
    CodebookDimension,
    CodebookLabel,
    Dialogue,
    ImportBatch,
    Project,
    SourceAnnotation,
    User,
)
from tests.factories import make_project


def mount(app: FastAPI) -> FastAPI:
    """Include the codebook routers unless app.main already does (then nothing is added)."""
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/projects/{slug}/codebook" not in paths:
        app.include_router(router)
    if "/api/v1/projects/{slug}/codebook" not in paths:
        app.include_router(api_router)
    return app


async def seeded_project(db: AsyncSession, *, lead: User | None = None) -> Project:
    """A project with the default Psy-Insight codebook (what project creation gives)."""
    project = await make_project(db, lead=lead)
    await core.seed_default(db, project, lead.id if lead else None)
    return project


async def add_source_values(
    db: AsyncSession,
    project: Project,
    dimension: str,
    values: Sequence[Sequence[str] | str],
    *,
    position: int = 0,
) -> Dialogue:
    """One imported dialogue whose source gave `dimension` one value per entry of `values`: a
    list of labels, or a string for a free-text field; each at its own position from `position`
    (-1 is the whole session)."""
    tag = uuid.uuid4().hex[:8]
    source = AnnotationSource(project_id=project.id, name=f"source-{tag}")
    db.add(source)
    await db.flush()
    batch = ImportBatch(
        project_id=project.id,
        source_id=source.id,
        file_name=f"{tag}.json",
        sha256=hashlib.sha256(tag.encode()).digest(),
        size_bytes=1,
        status="succeeded",
    )
    db.add(batch)
    await db.flush()
    dialogue = Dialogue(
        project_id=project.id,
        external_id=f"d-{tag}",
        language="en",
        meta={},
        source_format="psy_insight",
        turn_count=len(values),
        fingerprint=hashlib.sha256(tag.encode()).digest(),
        import_batch_id=batch.id,
        search=func.to_tsvector("simple", ""),
    )
    db.add(dialogue)
    await db.flush()
    for offset, value in enumerate(values):
        db.add(
            SourceAnnotation(
                source_id=source.id,
                dialogue_id=dialogue.id,
                position=position + offset,
                dimension=dimension,
                labels=None if isinstance(value, str) else list(value),
                text=value if isinstance(value, str) else None,
                import_batch_id=batch.id,
            )
        )
    await db.flush()
    return dialogue


async def label_by_value(db: AsyncSession, project: Project, key: str, value: str) -> CodebookLabel:
    query = (
        select(CodebookLabel)
        .join(CodebookDimension, CodebookDimension.id == CodebookLabel.dimension_id)
        .where(
            CodebookDimension.project_id == project.id,
            CodebookDimension.key == key,
            CodebookLabel.value == value,
        )
        .execution_options(populate_existing=True)
    )
    return (await db.execute(query)).scalar_one()


async def current_version(db: AsyncSession, project: Project) -> int:
    version = await db.scalar(
        select(Project.codebook_version)
        .where(Project.id == project.id)
        .execution_options(populate_existing=True)
    )
    assert version is not None
    return version


async def fresh_snapshot(
    sessionmaker: async_sessionmaker[AsyncSession], project_id: int
) -> dict[str, Any]:
    """The codebook as stored now, read by a new session (not as another session saw it)."""
    async with sessionmaker() as db:
        project = await db.get(Project, project_id)
        assert project is not None
        return core.snapshot(await core.load(db, project))
