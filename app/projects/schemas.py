"""Validated input and API output for projects and members."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.accounts.schemas import Email
from app.models import Role

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def _slug(value: str) -> str:
    value = value.strip().lower()
    if not _SLUG.match(value):
        raise ValueError(
            "Use 2 to 63 lowercase letters, digits and hyphens, starting with a letter or digit."
        )
    return value


Slug = Annotated[str, AfterValidator(_slug)]
ProjectName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ProjectCreate(BaseModel):
    slug: Slug
    name: ProjectName
    description: Annotated[str, StringConstraints(max_length=5000)] = ""


class ProjectUpdate(BaseModel):
    name: ProjectName
    description: Annotated[str, StringConstraints(max_length=5000)] = ""


class MemberAdd(BaseModel):
    email: Email
    roles: list[Role]


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    slug: str
    name: str
    description: str
    created_at: datetime
    my_roles: list[Role]


class MemberOut(BaseModel):
    user_id: int
    name: str
    email: str
    roles: list[Role]
