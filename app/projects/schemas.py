"""Validated input and API output for projects and members."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from app.accounts.schemas import Email, required_text
from app.models import Role

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def _slug(value: str) -> str:
    value = value.strip().lower()
    if not _SLUG.match(value):
        raise ValueError(
            "Use 2 to 63 lowercase letters, digits and hyphens, starting with a letter or digit."
        )
    return value


def _description(value: str) -> str:
    if len(value) > 5000:
        raise ValueError("This text is too long.")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Description = Annotated[str, AfterValidator(_description)]
ProjectName = Annotated[str, required_text(200)]


class ProjectCreate(BaseModel):
    slug: Slug
    name: ProjectName
    description: Description = ""


def _overlap(value: str | int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("Enter a whole number from 1 to 50.") from None
    if not 1 <= number <= 50:
        raise ValueError("Enter a whole number from 1 to 50.")
    return number


def _optional(value: str | None) -> str | None:
    return (value or "").strip() or None


class ProjectUpdate(BaseModel):
    name: ProjectName
    description: Description = ""
    overlap: Annotated[int, BeforeValidator(_overlap)] = 2
    suggestion_source: Annotated[str | None, BeforeValidator(_optional)] = None


def _roles(values: object) -> list[Role]:
    if not isinstance(values, list) or not values:
        raise ValueError("Choose at least one role.")
    try:
        return sorted({Role(str(v)) for v in values})
    except ValueError:
        raise ValueError("Unknown role.") from None


class MemberAdd(BaseModel):
    email: Email
    roles: Annotated[list[Role], BeforeValidator(_roles)]


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
