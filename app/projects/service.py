"""Projects and their members: admins create projects, leads manage members and settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.codebook.core import seed_default
from app.errors import Conflict, Invalid, NotFound
from app.models import AnnotationSource, Project, ProjectMembership, Role, User
from app.projects.schemas import MemberOut, ProjectCreate, ProjectUpdate


@dataclass(frozen=True)
class ProjectAccess:
    """A project as seen by one member: the project and the caller's roles in it."""

    project: Project
    roles: frozenset[Role]

    def has(self, role: Role) -> bool:
        return role in self.roles


async def roles_in(db: AsyncSession, slug: str, user_id: int) -> ProjectAccess | None:
    """The project and the user's roles, or None when the user is not a member (or no project)."""
    query = (
        select(Project, func.array_agg(ProjectMembership.role))
        .join(ProjectMembership, ProjectMembership.project_id == Project.id)
        .where(Project.slug == slug, ProjectMembership.user_id == user_id)
        .group_by(Project.id)
    )
    row = (await db.execute(query)).one_or_none()
    if row is None:
        return None
    return ProjectAccess(row[0], frozenset(Role(r) for r in row[1]))


async def list_for_user(db: AsyncSession, user_id: int) -> list[ProjectAccess]:
    query = (
        select(Project, func.array_agg(ProjectMembership.role))
        .join(ProjectMembership, ProjectMembership.project_id == Project.id)
        .where(ProjectMembership.user_id == user_id)
        .group_by(Project.id)
        .order_by(Project.name, Project.id)
    )
    rows = (await db.execute(query)).all()
    return [ProjectAccess(p, frozenset(Role(r) for r in roles)) for p, roles in rows]


async def create_project(
    db: AsyncSession, actor_id: int | None, data: ProjectCreate, lead: User | None = None
) -> Project:
    """Create a project whose first lead is `lead` (default: the creator)."""
    if lead is None and actor_id is None:
        raise Invalid("A project needs a lead.")
    project = Project(
        slug=data.slug, name=data.name, description=data.description, created_by_id=actor_id
    )
    try:
        async with db.begin_nested():  # a savepoint: a duplicate leaves the transaction usable
            db.add(project)
            await db.flush()
    except IntegrityError as exc:
        raise Conflict("A project with this slug already exists.", slug=data.slug) from exc
    lead_id = lead.id if lead else actor_id
    assert lead_id is not None
    db.add(ProjectMembership(project_id=project.id, user_id=lead_id, role=Role.lead))
    record(db, actor_id, "project.create", "project", project.slug, project_id=project.id)
    await db.flush()
    await seed_default(db, project, actor_id)
    return project


async def update_project(
    db: AsyncSession, actor_id: int, project: Project, data: ProjectUpdate
) -> None:
    if data.suggestion_source is not None:
        known = await db.scalar(
            select(AnnotationSource.id).where(
                AnnotationSource.project_id == project.id,
                AnnotationSource.name == data.suggestion_source,
            )
        )
        if known is None:
            raise Invalid("No source with this name in the project.")
    project.name = data.name
    project.description = data.description
    project.overlap = data.overlap
    project.suggestion_source = data.suggestion_source
    record(db, actor_id, "project.update", "project", project.slug, project_id=project.id)


async def list_members(db: AsyncSession, project: Project) -> list[MemberOut]:
    query = (
        select(User.id, User.name, User.email, func.array_agg(ProjectMembership.role))
        .join(ProjectMembership, ProjectMembership.user_id == User.id)
        .where(ProjectMembership.project_id == project.id)
        .group_by(User.id)
        .order_by(User.name, User.id)
    )
    rows = (await db.execute(query)).all()
    return [
        MemberOut(user_id=i, name=n, email=e, roles=sorted(Role(r) for r in roles))
        for i, n, e, roles in rows
    ]


async def add_roles(
    db: AsyncSession, actor_id: int | None, project: Project, user: User, roles: list[Role]
) -> None:
    """Give a user roles in a project (adding to those they hold)."""
    if not roles:
        raise Invalid("Choose at least one role.")
    rows = [{"project_id": project.id, "user_id": user.id, "role": r.value} for r in roles]
    await db.execute(insert(ProjectMembership).values(rows).on_conflict_do_nothing())
    record(
        db,
        actor_id,
        "member.add",
        "user",
        user.id,
        project_id=project.id,
        roles=[r.value for r in roles],
    )


async def set_roles(
    db: AsyncSession, actor_id: int, project: Project, user_id: int, roles: list[Role]
) -> None:
    """Replace a member's roles; an empty list removes them. A project keeps at least one lead."""
    current = await _member_roles(db, project.id, user_id)
    if not current:
        raise NotFound("This person is not a member of the project.")
    if Role.lead in current and Role.lead not in roles and await _lead_count(db, project.id) <= 1:
        raise Invalid("A project needs at least one lead.")
    await db.execute(
        delete(ProjectMembership).where(
            ProjectMembership.project_id == project.id, ProjectMembership.user_id == user_id
        )
    )
    if roles:
        rows = [{"project_id": project.id, "user_id": user_id, "role": r.value} for r in roles]
        await db.execute(insert(ProjectMembership).values(rows))
    record(
        db,
        actor_id,
        "member.set_roles",
        "user",
        user_id,
        project_id=project.id,
        roles=sorted(r.value for r in roles),
    )


async def _member_roles(db: AsyncSession, project_id: int, user_id: int) -> set[Role]:
    query = select(ProjectMembership.role).where(
        ProjectMembership.project_id == project_id, ProjectMembership.user_id == user_id
    )
    return {Role(r) for r in (await db.execute(query)).scalars()}


async def _lead_count(db: AsyncSession, project_id: int) -> int:
    query = select(func.count()).where(
        ProjectMembership.project_id == project_id, ProjectMembership.role == Role.lead.value
    )
    return int((await db.execute(query)).scalar_one())


async def get_by_slug(db: AsyncSession, slug: str) -> Project:
    project = (await db.execute(select(Project).where(Project.slug == slug))).scalar_one_or_none()
    if project is None:
        raise NotFound("No such project.", slug=slug)
    return project
