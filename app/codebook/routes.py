"""Codebook pages: every member reads it as guidelines, leads edit, export and import it."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import RedirectResponse, Response

from app.codebook import core, service
from app.codebook.schemas import (
    KIND_NAMES,
    SCOPE_NAMES,
    SPEAKER_NAMES,
    CodebookOut,
    DimensionCreate,
    DimensionEdit,
    LabelCreate,
    LabelEdit,
    LabelMerge,
)
from app.deps import CurrentUser, SessionDep, csrf_protect
from app.errors import DomainError
from app.forms import read_form
from app.models import Role
from app.projects.deps import ProjectLead, ProjectMember
from app.projects.service import ProjectAccess
from app.templating import is_htmx, render, translate

router = APIRouter(dependencies=[Depends(csrf_protect)])
api_router = APIRouter(prefix="/api/v1", tags=["v1"], dependencies=[Depends(csrf_protect)])

PAGE = "/projects/{slug}/codebook"
DIMENSION = PAGE + "/dimensions/{key}"
LABEL = DIMENSION + "/labels/{label_id}"


def say(request: Request, message: str, params: Mapping[str, Any] | None = None) -> str:
    """A message in the viewer's language with its %(name)s parameters filled in."""
    text = translate(request, message)
    if not params:
        return text
    try:
        return text % params
    except (KeyError, ValueError, TypeError):  # a broken translation must not hide the error
        return message % params


@dataclass
class Failed:
    """A refused form, shown again with what was typed, its field errors and the reasons."""

    form: str
    values: Mapping[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""
    problems: list[str] = field(default_factory=list)


def _refused(request: Request, form: str, values: Mapping[str, Any], exc: DomainError) -> Failed:
    failed = Failed(form, values)
    problems = getattr(exc, "problems", None)
    if isinstance(problems, list):
        failed.message = say(request, exc.message)
        for p in problems:
            where = f"{p.where}: " if p.where else ""
            failed.problems.append(where + say(request, p.message, p.params))
    elif "field" in exc.params:
        failed.errors[str(exc.params["field"])] = say(request, exc.message, exc.params)
    else:
        failed.message = say(request, exc.message, exc.params)
    return failed


async def _page(
    request: Request,
    access: ProjectAccess,
    db: SessionDep,
    *,
    block: str | None = None,
    key: str | None = None,
    status_code: int = 200,
    failed: Failed | None = None,
    saved: str | None = None,
) -> Response:
    codebook = await core.load(db, access.project)
    context = {
        "access": access,
        "can_edit": access.has(Role.lead),
        "codebook": codebook,
        "dim": codebook.get(key) if key else None,
        "versions": await service.history(db, access.project),
        "failed": failed,
        "saved": saved if saved is not None else request.query_params.get("saved"),
        "imported": request.query_params.get("imported"),
        "oob": block if is_htmx(request) else None,
        "etag": service.etag,
        "scope_names": SCOPE_NAMES,
        "speaker_names": SPEAKER_NAMES,
        "kind_names": KIND_NAMES,
    }
    return render(request, "codebook/page.html", context, status_code=status_code, block=block)


async def _submit(
    request: Request,
    access: ProjectAccess,
    db: SessionDep,
    form: str,
    key: str | None,
    parsed: tuple[Awaitable[object] | None, Mapping[str, Any], dict[str, str]],
) -> Response:
    """Run a change; answer with the swapped fragment (htmx) or a redirect, or show why not.

    `key` names the dimension section the form lives in; None means the dimension list.
    """
    change, values, errors = parsed
    block = "dimension" if key else "dimensions"
    if change is None:
        shown = {name: translate(request, msg) for name, msg in errors.items()}
        failed = Failed(form, values, shown)
        return await _page(
            request, access, db, block=block, key=key, status_code=422, failed=failed
        )
    try:
        async with db.begin_nested():  # a refused change leaves nothing behind
            await change
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        failed = _refused(request, form, values, exc)
        return await _page(
            request, access, db, block=block, key=key, status_code=exc.status_code, failed=failed
        )
    if is_htmx(request):
        return await _page(request, access, db, block=block, key=key, saved=key or "1")
    target = f"/projects/{access.project.slug}/codebook"
    anchor = f"?saved={key}#dim-{key}" if key else "?saved=1#dimensions"
    return RedirectResponse(target + anchor, status_code=303)


@router.get(PAGE)
async def codebook_page(request: Request, access: ProjectMember, db: SessionDep) -> Response:
    """The codebook as guidelines for every member; edit forms for leads."""
    return await _page(request, access, db)


@router.get(PAGE + ".json")
async def export_codebook(access: ProjectMember, db: SessionDep) -> Response:
    """Download the codebook as JSON (any member); the import reads this format back."""
    codebook = await core.load(db, access.project)
    name = f"{access.project.slug}-codebook-v{codebook.version}.json"
    return Response(
        service.export_json(codebook),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _uploaded(form: FormData) -> tuple[bytes, str]:
    """The chosen file's bytes (up to one byte past the limit) or the pasted text."""
    upload, pasted = form.get("file"), form.get("json")
    text = pasted if isinstance(pasted, str) else ""
    if isinstance(upload, UploadFile) and upload.filename:
        return await upload.read(service.MAX_IMPORT_BYTES + 1), text
    return text.encode(), text


@router.post(PAGE + "/import")
async def import_codebook(
    request: Request, access: ProjectLead, user: CurrentUser, db: SessionDep
) -> Response:
    """Leads replace the codebook from JSON unless stored values depend on what it drops."""
    form = await request.form()
    try:
        raw, text = await _uploaded(form)
    finally:
        await form.close()  # the spooled upload's temporary file
    try:
        async with db.begin_nested():
            doc = service.parse_document(raw)
            version = await service.import_codebook(db, user.id, access.project, doc)
    except DomainError as exc:
        failed = _refused(request, "import", {"json": text}, exc)
        return await _page(request, access, db, status_code=exc.status_code, failed=failed)
    done = "same" if version is None else str(version)
    return RedirectResponse(
        f"/projects/{access.project.slug}/codebook?imported={done}", status_code=303
    )


@router.post(PAGE + "/dimensions")
async def add_dimension(
    request: Request, access: ProjectLead, user: CurrentUser, db: SessionDep
) -> Response:
    """Leads add a label dimension or free-text field."""
    data, values, errors = await read_form(request, DimensionCreate)
    change = service.add_dimension(db, user.id, access.project, data) if data else None
    return await _submit(request, access, db, "dim-new", None, (change, values, errors))


@router.post(DIMENSION)
async def edit_dimension(
    request: Request, key: str, access: ProjectLead, user: CurrentUser, db: SessionDep
) -> Response:
    """Leads rename a dimension; scope, speaker, kind and a lower limit need unused values."""
    data, values, errors = await read_form(request, DimensionEdit)
    change = service.edit_dimension(db, user.id, access.project, key, data) if data else None
    return await _submit(request, access, db, f"dim-{key}-edit", key, (change, values, errors))


@router.post(DIMENSION + "/delete")
async def remove_dimension(
    request: Request, key: str, access: ProjectLead, user: CurrentUser, db: SessionDep
) -> Response:
    """Leads remove a dimension no stored value uses."""
    change = service.remove_dimension(db, user.id, access.project, key)
    return await _submit(request, access, db, f"dim-{key}-delete", None, (change, {}, {}))


@router.post(DIMENSION + "/labels")
async def add_label(
    request: Request, key: str, access: ProjectLead, user: CurrentUser, db: SessionDep
) -> Response:
    """Leads add a label to a dimension's vocabulary."""
    data, values, errors = await read_form(request, LabelCreate)
    change = service.add_label(db, user.id, access.project, key, data) if data else None
    return await _submit(request, access, db, f"dim-{key}-add", key, (change, values, errors))


@router.post(LABEL)
async def edit_label(
    request: Request,
    key: str,
    label_id: int,
    access: ProjectLead,
    user: CurrentUser,
    db: SessionDep,
) -> Response:
    """Leads rename a label or change its description or hotkey (never its stored value)."""
    data, values, errors = await read_form(request, LabelEdit)
    change = service.edit_label(db, user.id, access.project, key, label_id, data) if data else None
    form = f"label-{label_id}-edit"
    return await _submit(request, access, db, form, key, (change, values, errors))


@router.post(LABEL + "/delete")
async def remove_label(
    request: Request,
    key: str,
    label_id: int,
    access: ProjectLead,
    user: CurrentUser,
    db: SessionDep,
) -> Response:
    """Leads remove a label no stored value uses."""
    change = service.remove_label(db, user.id, access.project, key, label_id)
    return await _submit(request, access, db, f"label-{label_id}-delete", key, (change, {}, {}))


@router.post(DIMENSION + "/merge")
async def merge_labels(
    request: Request, key: str, access: ProjectLead, user: CurrentUser, db: SessionDep
) -> Response:
    """Leads merge one label into another: its spellings become the other label's aliases."""
    data, values, errors = await read_form(request, LabelMerge)
    change = (
        service.merge_label(db, user.id, access.project, key, data.label, data.into)
        if data
        else None
    )
    return await _submit(request, access, db, f"dim-{key}-merge", key, (change, values, errors))


@api_router.get("/projects/{slug}/codebook")
async def codebook_api(access: ProjectMember, db: SessionDep) -> CodebookOut:
    """The project's codebook (any member): the importable snapshot plus its version."""
    codebook = await core.load(db, access.project)
    return CodebookOut.model_validate({**core.snapshot(codebook), "version": codebook.version})
