"""Project pages: list, overview, settings and members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from app.accounts import service as accounts
from app.deps import CurrentUser, SessionDep, csrf_protect
from app.errors import DomainError, Forbidden
from app.forms import read_form
from app.models import Role
from app.projects import service
from app.projects.deps import ProjectLead, ProjectMember
from app.projects.schemas import MemberAdd, ProjectCreate, ProjectUpdate
from app.projects.service import ProjectAccess
from app.templating import render, translate

router = APIRouter(dependencies=[Depends(csrf_protect)])


def _shown(request: Request, errors: dict[str, str]) -> dict[str, str]:
    return {k: translate(request, v) for k, v in errors.items()}


@router.get("/")
async def home(user: CurrentUser) -> Response:
    return RedirectResponse("/projects", status_code=303)


async def _list_page(
    request: Request, db: SessionDep, user: CurrentUser, status_code: int = 200, **extra: Any
) -> Response:
    context = {"projects": await service.list_for_user(db, user.id), "values": {}, "errors": {}}
    return render(request, "projects/list.html", {**context, **extra}, status_code=status_code)


@router.get("/projects")
async def project_list(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    """The projects the caller is a member of."""
    return await _list_page(request, db, user)


@router.post("/projects")
async def create_project(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    """Administrators create projects; the creator becomes the first lead."""
    if not user.is_admin:
        raise Forbidden("Only administrators can create projects.")
    data, values, errors = await read_form(request, ProjectCreate)
    if data is not None:
        try:
            project = await service.create_project(db, user.id, data)
        except DomainError as exc:
            errors = {"slug": exc.message}
        else:
            return RedirectResponse(f"/projects/{project.slug}", status_code=303)
    return await _list_page(request, db, user, 422, values=values, errors=_shown(request, errors))


@router.get("/projects/{slug}")
async def project_overview(request: Request, access: ProjectMember, db: SessionDep) -> Response:
    """A project's front page for any member."""
    return render(request, "projects/overview.html", {"access": access})


def _settings_page(
    request: Request, access: ProjectAccess, status_code: int = 200, **extra: Any
) -> Response:
    p = access.project
    values = {
        "name": p.name,
        "description": p.description,
        "overlap": p.overlap,
        "suggestion_source": p.suggestion_source or "",
    }
    context: dict[str, Any] = {"access": access, "values": values, "errors": {}, **extra}
    return render(request, "projects/settings.html", context, status_code=status_code)


@router.get("/projects/{slug}/settings")
async def project_settings(request: Request, access: ProjectLead) -> Response:
    """Project settings (leads)."""
    return _settings_page(request, access)


@router.post("/projects/{slug}/settings")
async def update_settings(
    request: Request, access: ProjectLead, user: CurrentUser, db: SessionDep
) -> Response:
    data, values, errors = await read_form(request, ProjectUpdate)
    if data is None:
        return _settings_page(request, access, 422, values=values, errors=_shown(request, errors))
    try:
        await service.update_project(db, user.id, access.project, data)
    except DomainError as exc:
        errors = {"suggestion_source": exc.shown(request)}
        return _settings_page(request, access, 422, values=values, errors=errors)
    return RedirectResponse(f"/projects/{access.project.slug}/settings?saved=1", status_code=303)


async def _members_page(
    request: Request, access: ProjectAccess, db: SessionDep, status_code: int = 200, **extra: Any
) -> Response:
    context: dict[str, Any] = {
        "access": access,
        "members": await service.list_members(db, access.project),
        "roles": list(Role),
        "values": {},
        "errors": {},
        **extra,
    }
    return render(
        request, "projects/members.html", context, status_code=status_code, block="members"
    )


@router.get("/projects/{slug}/members")
async def members_page(request: Request, access: ProjectLead, db: SessionDep) -> Response:
    """Members and their roles (leads)."""
    return await _members_page(request, access, db)


@router.post("/projects/{slug}/members")
async def add_member(
    request: Request, access: ProjectLead, user: CurrentUser, db: SessionDep
) -> Response:
    """Leads add an existing account to the project with one or more roles."""
    data, values, errors = await read_form(request, MemberAdd)
    if data is not None:
        try:
            member = await accounts.get_user_by_email(db, data.email)
            await service.add_roles(db, user.id, access.project, member, data.roles)
        except DomainError as exc:
            errors = {"email": exc.message}
    if errors:
        shown = _shown(request, errors)
        return await _members_page(request, access, db, 422, values=values, errors=shown)
    return await _members_page(request, access, db)


@router.post("/projects/{slug}/members/{user_id}/roles")
async def set_member_roles(
    request: Request, user_id: int, access: ProjectLead, user: CurrentUser, db: SessionDep
) -> Response:
    """Leads change a member's roles; no roles removes the member; one lead must remain."""
    form = await request.form()
    try:
        roles = [Role(str(r)) for r in form.getlist("roles")]
    except ValueError:
        return await _members_page(
            request, access, db, 422, row_error=(user_id, translate(request, "Unknown role."))
        )
    try:
        await service.set_roles(db, user.id, access.project, user_id, roles)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return await _members_page(
            request,
            access,
            db,
            exc.status_code,
            row_error=(user_id, translate(request, exc.message)),
        )
    return await _members_page(request, access, db)
