"""Import batches: creating one (refusing duplicates), listing them, deferring the job."""

from __future__ import annotations

import json

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.errors import Conflict, NotFound
from app.i18n import N_
from app.imports.schemas import ImportRequest
from app.models import AnnotationSource, ImportBatch, Project, User

RUNNING = ("queued", "validating", "writing")


async def source_id(db: AsyncSession, project: Project, name: str) -> int:
    """The id of the project's named source, created on first use."""
    await db.execute(
        insert(AnnotationSource)
        .values(project_id=project.id, name=name)
        .on_conflict_do_nothing(index_elements=["project_id", "name"])
    )
    found = await db.scalar(
        select(AnnotationSource.id).where(
            AnnotationSource.project_id == project.id, AnnotationSource.name == name
        )
    )
    assert found is not None
    return found


async def new_batch(
    db: AsyncSession,
    project: Project,
    actor_id: int | None,
    file_name: str,
    request: ImportRequest,
) -> ImportBatch:
    """A queued batch; the file's digest and size are filled in once it is stored."""
    batch = ImportBatch(
        project_id=project.id,
        source_id=await source_id(db, project, request.source),
        file_name=file_name[:255] or "upload",
        requested_format=request.format,
        add_new_labels=request.add_new_labels,
        sha256=b"",
        size_bytes=0,
        created_by_id=actor_id,
    )
    db.add(batch)
    await db.flush()
    return batch


async def refuse_duplicate(db: AsyncSession, batch: ImportBatch, source: str) -> None:
    """The same file under the same source imports once; name the earlier import."""
    earlier = await db.scalar(
        select(ImportBatch)
        .where(
            ImportBatch.project_id == batch.project_id,
            ImportBatch.source_id == batch.source_id,
            ImportBatch.sha256 == batch.sha256,
            ImportBatch.id != batch.id,
            ImportBatch.status.in_(("succeeded", *RUNNING)),
        )
        .order_by(ImportBatch.id)
        .limit(1)
    )
    if earlier is None:
        return
    message = (
        N_("This file is being imported under source “%(source)s”: import #%(id)s “%(file)s”.")
        if earlier.status in RUNNING
        else N_(
            "This file was already imported under source “%(source)s”: "
            "import #%(id)s “%(file)s” of %(when)s."
        )
    )
    raise Conflict(
        message,
        source=source,
        id=earlier.id,
        file=earlier.file_name,
        when=earlier.created_at.strftime("%Y-%m-%d %H:%M"),
        earlier=earlier.id,
    )


async def defer_import(db: AsyncSession, batch: ImportBatch, actor_id: int | None) -> None:
    """Queue the import job in the caller's transaction, so it runs only if that commits."""
    await db.execute(
        text(
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('imports', 'import_file', 0, NULL, "
            ":lock, CAST(:args AS jsonb), NULL)]::procrastinate_job_to_defer_v1[])"
        ),
        {"lock": f"import-{batch.id}", "args": json.dumps({"batch_id": batch.id})},
    )
    record(db, actor_id, "import.queue", "import_batch", batch.id, project_id=batch.project_id)


async def list_batches(
    db: AsyncSession, project: Project
) -> list[tuple[ImportBatch, str, str | None]]:
    """The project's imports, newest first, with their source names and who ran them."""
    query = (
        select(ImportBatch, AnnotationSource.name, User.name)
        .join(AnnotationSource, AnnotationSource.id == ImportBatch.source_id)
        .outerjoin(User, User.id == ImportBatch.created_by_id)
        .where(ImportBatch.project_id == project.id)
        .order_by(ImportBatch.id.desc())
    )
    return [(b, s, u) for b, s, u in (await db.execute(query)).all()]


async def get_batch(db: AsyncSession, project: Project, batch_id: int) -> tuple[ImportBatch, str]:
    query = (
        select(ImportBatch, AnnotationSource.name)
        .join(AnnotationSource, AnnotationSource.id == ImportBatch.source_id)
        .where(ImportBatch.project_id == project.id, ImportBatch.id == batch_id)
    )
    row = (await db.execute(query)).one_or_none()
    if row is None:
        raise NotFound("No such import.")
    return row[0], row[1]
