"""The JSON API, `/api/v1`: token or session auth, the same role rules as the pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.deps import CurrentUser, SessionDep, csrf_protect
from app.projects import service
from app.projects.deps import ProjectLead, ProjectMember
from app.projects.schemas import MemberOut, ProjectOut
from app.projects.service import ProjectAccess

router = APIRouter(prefix="/api/v1", tags=["v1"], dependencies=[Depends(csrf_protect)])


class MeOut(BaseModel):
    id: int
    email: str
    name: str
    is_admin: bool
    language: str


def _project_out(access: ProjectAccess) -> ProjectOut:
    p = access.project
    return ProjectOut(
        slug=p.slug,
        name=p.name,
        description=p.description,
        created_at=p.created_at,
        my_roles=sorted(access.roles),
    )


@router.get("/me")
async def me(user: CurrentUser) -> MeOut:
    """The caller's account."""
    return MeOut(
        id=user.id, email=user.email, name=user.name, is_admin=user.is_admin, language=user.language
    )


@router.get("/projects")
async def list_projects(user: CurrentUser, db: SessionDep) -> list[ProjectOut]:
    """Projects the caller is a member of, with the caller's roles."""
    return [_project_out(a) for a in await service.list_for_user(db, user.id)]


@router.get("/projects/{slug}")
async def get_project(access: ProjectMember) -> ProjectOut:
    """One project (members only; others get 404)."""
    return _project_out(access)


@router.get("/projects/{slug}/members")
async def list_members(access: ProjectLead, db: SessionDep) -> list[MemberOut]:
    """A project's members and roles (leads only)."""
    return await service.list_members(db, access.project)
