"""Loading an assignment inside its project, with who may read and who may write it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from app.annotations import saving
from app.assignments import service as assignments
from app.auth.service import now
from app.db import database_key
from app.deps import CurrentUser, RawConnection, SessionDep, credential
from app.errors import Forbidden, NotFound
from app.i18n import N_
from app.models import Assignment, Role
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


class RequireOwnAssignment(RequireProjectRole):
    """`writable` for saves, in one query with the caller's session or token (`saving`).

    The same answers in the same order: 401, then the project role (404 non-member, 403 other
    role), then the assignment (404, or 403 for leads and reviewers, who only read it). The
    session is checked against the database on every request, as `load_viewer` does.
    """

    async def __call__(  # type: ignore[override]
        self, request: Request, slug: str, assignment_id: int, conn: RawConnection
    ) -> saving.SaveTarget:
        state = request.app.state
        return await saving.load_target(
            conn,
            database_key(state.sessionmaker.kw["bind"]),
            credential(request),
            slug,
            assignment_id,
            now(),
            timedelta(minutes=state.settings.session_idle_minutes),
            self.roles,
        )


OwnAssignment = Annotated[
    saving.SaveTarget, Depends(RequireOwnAssignment(Role.annotator, Role.lead, Role.reviewer))
]
