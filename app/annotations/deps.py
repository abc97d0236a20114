"""Loading an assignment inside its project, with who may read and who may write it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from app.annotations import access
from app.annotations.access import SaveTarget
from app.assignments import service as assignments
from app.auth.service import now
from app.db import database_key, session_driver_connection
from app.deps import CurrentUser, RawConnection, SessionDep, credential
from app.errors import Forbidden, NotFound
from app.i18n import N_
from app.models import Assignment, Project, Role
from app.projects.deps import RequireProjectRole
from app.projects.service import ProjectAccess


@dataclass(frozen=True)
class AssignmentAccess:
    access: ProjectAccess
    assignment: Assignment
    is_owner: bool


async def readable(
    assignment_id: int,
    db: SessionDep,
    user: CurrentUser,
    access: ProjectAccess = Depends(RequireProjectRole(Role.annotator, Role.lead, Role.reviewer)),
) -> AssignmentAccess:
    """Its annotator, and the project's leads and reviewers; to others it does not exist."""
    assignment = await assignments.get(db, access.project, assignment_id)
    owner = assignment.user_id == user.id
    if not owner and not (access.has(Role.lead) or access.has(Role.reviewer)):
        raise NotFound(N_("No such assignment in this project."))
    return AssignmentAccess(access, assignment, owner)


async def writable(found: Annotated[AssignmentAccess, Depends(readable)]) -> AssignmentAccess:
    """Only the assignment's own annotator changes its values."""
    if not found.is_owner:
        raise Forbidden(N_("Only the annotator of this dialogue can change it."))
    return found


Readable = Annotated[AssignmentAccess, Depends(readable)]
Writable = Annotated[AssignmentAccess, Depends(writable)]


class RequireReadableAssignment(RequireProjectRole):
    """`readable` in one query with the caller's session or token (`access.readable`).

    The same answers in the same order; the project and assignment come back as detached
    copies to read (routes that change them use `Writable`).
    """

    async def __call__(  # type: ignore[override]
        self, request: Request, slug: str, assignment_id: int, db: SessionDep
    ) -> AssignmentAccess:
        conn = await session_driver_connection(db)  # the request's one connection
        found = await access.readable(
            conn, credential(request), slug, assignment_id, now(), _idle(request), self.roles
        )
        row = found.row
        project = Project(
            id=row["project_id"], slug=row["slug"], name=row["name"],
            description=row["description"], codebook_version=row["codebook_version"],
            overlap=row["overlap"], suggestion_source=row["suggestion_source"],
        )  # fmt: skip
        assignment = Assignment(
            id=assignment_id, project_id=row["project_id"], dialogue_id=row["dialogue_id"],
            user_id=row["owner_id"], status=row["status"], seconds_spent=row["seconds_spent"],
            codebook_version=row["assignment_codebook_version"],
        )  # fmt: skip
        return AssignmentAccess(ProjectAccess(project, found.roles), assignment, found.is_owner)


class RequireOwnAssignment(RequireProjectRole):
    """`writable` for saves, in one query with the caller's session or token (`access`)."""

    async def __call__(  # type: ignore[override]
        self, request: Request, slug: str, assignment_id: int, conn: RawConnection
    ) -> SaveTarget:
        return await access.writable(
            conn,
            database_key(request.app.state.sessionmaker.kw["bind"]),
            credential(request),
            slug,
            assignment_id,
            now(),
            _idle(request),
            self.roles,
        )


def _idle(request: Request) -> timedelta:
    return timedelta(minutes=request.app.state.settings.session_idle_minutes)


WORKSPACE_ROLES = (Role.annotator, Role.lead, Role.reviewer)
ReadableView = Annotated[AssignmentAccess, Depends(RequireReadableAssignment(*WORKSPACE_ROLES))]
OwnAssignment = Annotated[SaveTarget, Depends(RequireOwnAssignment(*WORKSPACE_ROLES))]
