"""Load-or-404 for projects, with the caller's role checked in the same dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.deps import CurrentUser, SessionDep
from app.errors import Forbidden, NotFound
from app.models import Role
from app.projects.service import ProjectAccess, roles_in


class RequireProjectRole:
    """Dependency: a non-member gets 404, a member without one of `roles` gets 403.

    `roles` empty means any member. Route-table tests find this object in each route's
    dependency tree to know which role a route needs.
    """

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, slug: str, db: SessionDep, user: CurrentUser) -> ProjectAccess:
        access = await roles_in(db, slug, user.id)
        if access is None:
            raise NotFound("No such project.")
        if self.roles and not (self.roles & access.roles):
            raise Forbidden("Your role in this project does not allow this.")
        return access


ProjectMember = Annotated[ProjectAccess, Depends(RequireProjectRole())]
ProjectLead = Annotated[ProjectAccess, Depends(RequireProjectRole(Role.lead))]
