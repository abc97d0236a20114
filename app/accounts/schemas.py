"""Validated input for accounts: new users, invitations, password changes, tokens."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel

from app.security import MIN_PASSWORD_LENGTH

assert MIN_PASSWORD_LENGTH == 10, "keep the message in _password in step"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value) or len(value) > 254:
        raise ValueError("Enter a valid email address.")
    return value


def _password(value: str) -> str:
    if len(value) < MIN_PASSWORD_LENGTH:
        raise ValueError("The password must have at least 10 characters.")
    if len(value) > 1024:
        raise ValueError("The password is too long.")
    return value


def required_text(max_length: int) -> AfterValidator:
    """Stripped text that must not be empty, with messages the interface can translate."""

    def check(value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("This field is required.")
        if len(value) > max_length:
            raise ValueError("This text is too long.")
        return value

    return AfterValidator(check)


Email = Annotated[str, AfterValidator(_email)]
Password = Annotated[str, AfterValidator(_password)]
Name = Annotated[str, required_text(200)]


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
    current_password: Annotated[str, required_text(1024)]
    new_password: Password


class TokenCreate(BaseModel):
    name: Annotated[str, required_text(100)]
