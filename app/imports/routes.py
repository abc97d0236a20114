"""Import pages and API: upload, live progress, report, history (leads)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from app.deps import CurrentUser, SessionDep, SettingsDep, csrf_protect
from app.errors import DomainError, Invalid
from app.formats.reader import FORMATS
from app.forms import field_errors
from app.i18n import N_
from app.imports import service, storage
from app.imports.schemas import ImportOut, ImportRequest
from app.models import ImportBatch, Role
from app.projects.deps import RequireProjectRole
from app.projects.service import ProjectAccess
from app.templating import render

router = APIRouter(dependencies=[Depends(csrf_protect)])
api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(csrf_protect)], tags=["v1"])
LeadAccess = Depends(RequireProjectRole(Role.lead))
RUNNING = service.RUNNING


async def _parts(upload: UploadFile) -> AsyncIterator[bytes]:
    while block := await upload.read(1 << 20):
        yield block


async def _accept_upload(
    request: Request, access: ProjectAccess, user_id: int, db: SessionDep, limit: int
) -> ImportBatch:
    """Store the upload and queue its import, in the request's transaction."""
    form = await request.form(max_files=1, max_fields=10)
    try:
        return await _accept_form(form, access, user_id, db, limit)
    finally:
        await form.close()  # the spooled upload's temporary file


async def _accept_form(
    form: FormData, access: ProjectAccess, user_id: int, db: SessionDep, limit: int
) -> ImportBatch:
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Invalid(N_("Choose a file to import."))
    raw: dict[str, Any] = {
        "source": form.get("source") or upload.filename,
        "format": form.get("format"),
        "add_new_labels": form.get("add_new_labels") in ("1", "true", "on"),
    }
    try:
        req = ImportRequest.model_validate(raw)
    except ValidationError as exc:
        raise Invalid(next(iter(field_errors(exc).values()))) from exc
    batch = await service.new_batch(db, access.project, user_id, upload.filename, req)
    batch.sha256, batch.size_bytes = await storage.store(db, batch.id, _parts(upload), limit)
    await service.refuse_duplicate(db, batch, req.source)
    await service.defer_import(db, batch, user_id)
    return batch


def _list_context(access: ProjectAccess, batches: Any, **extra: Any) -> dict[str, Any]:
    return {"access": access, "batches": batches, "formats": FORMATS, "error": None, **extra}


@router.get("/projects/{slug}/imports")
async def imports_page(
    request: Request, db: SessionDep, access: ProjectAccess = LeadAccess
) -> Response:
    """Import history and the upload form (leads)."""
    batches = await service.list_batches(db, access.project)
    return render(request, "imports/list.html", _list_context(access, batches))


@router.post("/projects/{slug}/imports")
async def upload(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    access: ProjectAccess = LeadAccess,
) -> Response:
    """Upload a file; its import runs in the background and its page shows the progress."""
    try:
        async with db.begin_nested():  # a refused upload leaves nothing behind
            batch = await _accept_upload(
                request, access, user.id, db, settings.upload_limit_mb << 20
            )
    except DomainError as exc:
        batches = await service.list_batches(db, access.project)
        context = _list_context(access, batches, error=exc.shown(request))
        return render(request, "imports/list.html", context, status_code=exc.status_code)
    return RedirectResponse(f"/projects/{access.project.slug}/imports/{batch.id}", status_code=303)


@router.get("/projects/{slug}/imports/{batch_id}")
async def batch_page(
    request: Request, batch_id: int, db: SessionDep, access: ProjectAccess = LeadAccess
) -> Response:
    """One import: live progress while it runs, then its report (htmx polls the fragment)."""
    batch, source = await service.get_batch(db, access.project, batch_id)
    running = batch.status in RUNNING
    context = {"access": access, "batch": batch, "source": source, "running": running}
    return render(request, "imports/batch.html", context, block="progress")


@api_router.get("/projects/{slug}/imports")
async def api_list(db: SessionDep, access: ProjectAccess = LeadAccess) -> list[ImportOut]:
    """The project's imports, newest first (leads)."""
    return [
        ImportOut.model_validate(b) for b, _, _ in await service.list_batches(db, access.project)
    ]


@api_router.post("/projects/{slug}/imports", status_code=202)
async def api_upload(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    access: ProjectAccess = LeadAccess,
) -> Response:
    """Upload a file (multipart: file, source, format, add_new_labels); 202 with the batch."""
    batch = await _accept_upload(request, access, user.id, db, settings.upload_limit_mb << 20)
    body = ImportOut.model_validate(batch).model_dump(mode="json")
    return JSONResponse(body, status_code=202)


@api_router.get("/projects/{slug}/imports/{batch_id}")
async def api_batch(batch_id: int, db: SessionDep, access: ProjectAccess = LeadAccess) -> ImportOut:
    """One import's progress or report (leads)."""
    batch, _ = await service.get_batch(db, access.project, batch_id)
    return ImportOut.model_validate(batch)
