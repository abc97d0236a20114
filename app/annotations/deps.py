"""Loading an assignment inside its project, with who may read and who may write it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.annotations import access
from app.annotations.schemas import ValueChange
from app.assignments import service as assignments
from app.auth.service import now
from app.db import database_key, raw_connection, session_driver_connection
from app.deps import CurrentUser, SessionDep, credential, csrf_protect_api
from app.errors import Forbidden, NotFound
from app.i18n import N_
from app.middleware import BodyTooLarge
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
        who = _caller(request, slug, assignment_id, self.roles)  # 401 before any query
        conn = await session_driver_connection(db)  # the request's one connection
        found = await access.readable(conn, who)
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


@dataclass(frozen=True)
class OwnSave:
    """A save's caller (checked by the save itself) and the change they send."""

    who: access.Caller
    change: ValueChange


class RequireOwnAssignment(RequireProjectRole):
    """`writable` for saves, as one dependency: the API's CSRF rule, who asks (401 without a
    credential), and the body, a `ValueChange`.

    The caller is checked against the database by the save itself (`saving.save_as`): in the
    statement that stores the value when it can be, else by `access.writable`, with the same
    answers in the same order as `writable`. An invalid body is answered (422) only after that
    check, as on every other route. One plain dependency instead of three (CSRF, caller, a
    connection held by a generator) and no body parameter, because FastAPI's per-dependency
    and per-parameter work was a fifth of a save's CPU.
    """

    async def __call__(  # type: ignore[override]
        self, request: Request, slug: str, assignment_id: int
    ) -> OwnSave:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > SAVE_BODY_LIMIT:
            raise BodyTooLarge
        body = await request.body()  # kept: the CSRF check may read a form from it
        await csrf_protect_api(request)
        who = _caller(request, slug, assignment_id, self.roles)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        errors: list[Any] = [_NOT_JSON]
        if kind == "application/json" or kind.endswith("+json"):
            try:
                return OwnSave(who, ValueChange.model_validate_json(body))
            except ValidationError as exc:
                errors = [e | {"loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        async with raw_connection(request.app.state.sessionmaker.kw["bind"]) as conn:
            await access.writable(conn, who)  # refusals of access answer first
        raise RequestValidationError(errors)


SAVE_BODY_LIMIT = 256 * 1024  # a value of MAX_TEXT characters, each \u-escaped, fits
_NOT_JSON = {
    "type": "content_type",
    "loc": ("body",),
    "msg": "Send the change as JSON (Content-Type: application/json).",
    "input": None,
}


def _caller(
    request: Request, slug: str, assignment_id: int, roles: frozenset[Role]
) -> access.Caller:
    """Who asks for this assignment, as the request says; 401 without a credential."""
    idle = timedelta(minutes=request.app.state.settings.session_idle_minutes)
    bind = request.app.state.sessionmaker.kw["bind"]
    return access.caller(database_key(bind), credential(request), slug, assignment_id, now(),
                         idle, roles)  # fmt: skip


WORKSPACE_ROLES = (Role.annotator, Role.lead, Role.reviewer)
ReadableView = Annotated[AssignmentAccess, Depends(RequireReadableAssignment(*WORKSPACE_ROLES))]
OwnAssignment = Annotated[OwnSave, Depends(RequireOwnAssignment(*WORKSPACE_ROLES))]
