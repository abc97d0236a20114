"""Leads hand out dialogues, take them back, reopen submitted ones and follow progress."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from app.accounts import service as accounts
from app.annotations.schemas import AssignRequest
from app.assignments import service
from app.deps import CurrentUser, SessionDep, csrf_protect
from app.errors import DomainError, Invalid
from app.i18n import N_
from app.models import Dialogue, ProjectMembership, Role, User
from app.projects.deps import RequireProjectRole
from app.projects.service import ProjectAccess
from app.templating import render

router = APIRouter(dependencies=[Depends(csrf_protect)])
api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(csrf_protect)], tags=["v1"])
Lead = Depends(RequireProjectRole(Role.lead))


async def _annotators(db: SessionDep, access: ProjectAccess) -> list[User]:
    rows = await db.scalars(
        select(User)
        .join(ProjectMembership, ProjectMembership.user_id == User.id)
        .where(
            ProjectMembership.project_id == access.project.id,
            ProjectMembership.role == Role.annotator.value,
        )
        .order_by(User.name)
    )
    return list(rows)


async def _page(
    request: Request, db: SessionDep, access: ProjectAccess, status: int = 200, **extra: Any
) -> Response:
    context = {
        "access": access,
        "progress": await service.progress(db, access.project),
        "coverage": await service.coverage(db, access.project),
        "annotators": await _annotators(db, access),
        "recent": await service.recent(db, access.project),
        "error": None,
        "notice": None,
        **extra,
    }
    return render(request, "assignments/page.html", context, status_code=status)


@router.get("/projects/{slug}/assignments")
async def page(request: Request, db: SessionDep, access: ProjectAccess = Lead) -> Response:
    """Progress per annotator and overall, and assignment by hand (leads)."""
    return await _page(request, db, access)


async def _dialogue_ids(db: SessionDep, access: ProjectAccess, text: str) -> list[int]:
    wanted = [t for t in re.split(r"[\s,;]+", text) if t]
    if not wanted:
        raise Invalid(N_("List the dialogue ids to assign."))
    rows = await db.execute(
        select(Dialogue.external_id, Dialogue.id).where(
            Dialogue.project_id == access.project.id, Dialogue.external_id.in_(wanted)
        )
    )
    found = dict(rows.all())
    unknown = [w for w in wanted if w not in found]
    if unknown:
        raise Invalid(N_("Unknown dialogue id “%(id)s”."), id=unknown[0])
    return [found[w] for w in wanted]


@router.post("/projects/{slug}/assignments")
async def assign(
    request: Request, db: SessionDep, user: CurrentUser, access: ProjectAccess = Lead
) -> Response:
    """Assign dialogues (by their ids, one or many) to an annotator of the project."""
    form = await request.form()
    try:
        annotators = {u.id: u for u in await _annotators(db, access)}
        member = annotators.get(int(str(form.get("user_id", "0")) or 0))
        if member is None:
            raise Invalid(N_("Choose an annotator of this project."))
        ids = await _dialogue_ids(db, access, str(form.get("dialogues", "")))
        count = await service.assign(db, user, access.project, ids, member)
    except (DomainError, ValueError) as exc:
        message = exc.shown(request) if isinstance(exc, DomainError) else str(exc)
        return await _page(request, db, access, 422, error=message)
    return await _page(request, db, access, notice=count)


@router.post("/projects/{slug}/assignments/{assignment_id}/unassign")
async def unassign(
    assignment_id: int, db: SessionDep, user: CurrentUser, access: ProjectAccess = Lead
) -> Response:
    """Take an unsubmitted dialogue back from its annotator."""
    await service.unassign(db, user, await service.get(db, access.project, assignment_id))
    return RedirectResponse(f"/projects/{access.project.slug}/assignments", status_code=303)


@router.post("/projects/{slug}/assignments/{assignment_id}/reopen")
async def reopen(
    assignment_id: int, db: SessionDep, user: CurrentUser, access: ProjectAccess = Lead
) -> Response:
    """Reopen a submitted dialogue for its annotator."""
    await service.reopen(db, user, await service.get(db, access.project, assignment_id))
    return RedirectResponse(f"/projects/{access.project.slug}/assignments", status_code=303)


@api_router.post("/projects/{slug}/assignments")
async def api_assign(
    body: AssignRequest, db: SessionDep, user: CurrentUser, access: ProjectAccess = Lead
) -> dict[str, int]:
    """Assign dialogues (by internal id) to one annotator of the project."""
    annotators = {u.id for u in await _annotators(db, access)}
    if body.user_id not in annotators:
        raise Invalid(N_("Choose an annotator of this project."))
    member = await accounts.get_user(db, body.user_id)
    return {"assigned": await service.assign(db, user, access.project, body.dialogue_ids, member)}


@api_router.post("/projects/{slug}/assignments/{assignment_id}/reopen")
async def api_reopen(
    assignment_id: int, db: SessionDep, user: CurrentUser, access: ProjectAccess = Lead
) -> dict[str, str]:
    """Reopen a submitted dialogue (leads)."""
    await service.reopen(db, user, await service.get(db, access.project, assignment_id))
    return {"status": "in_progress"}


@api_router.post("/projects/{slug}/assignments/{assignment_id}/unassign")
async def api_unassign(
    assignment_id: int, db: SessionDep, user: CurrentUser, access: ProjectAccess = Lead
) -> dict[str, str]:
    """Take an unsubmitted dialogue back (leads)."""
    await service.unassign(db, user, await service.get(db, access.project, assignment_id))
    return {"status": "unassigned"}
