"""Validated input for accounts: new users, invitations, password changes, tokens."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.security import MIN_PASSWORD_LENGTH

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value) or len(value) > 254:
        raise ValueError("Enter a valid email address.")
    return value


def _password(value: str) -> str:
    if len(value) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    if len(value) > 1024:
        raise ValueError("The password is too long.")
    return value


Email = Annotated[str, AfterValidator(_email)]
Password = Annotated[str, AfterValidator(_password)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class UserCreate(BaseModel):
    email: Email
    name: Name
    password: Password
    is_admin: bool = False


class InvitationCreate(BaseModel):
    email: Email
    is_admin: bool = False


class InvitationAccept(BaseModel):
    name: Name
    password: Password


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1)
    new_password: Password


class TokenCreate(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
