"""Loading an assignment inside its project, with who may read and who may write it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from app.assignments import service as assignments
from app.deps import CurrentUser, SessionDep
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
