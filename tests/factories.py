"""Typed factory helpers for tests (no fixture files)."""

from __future__ import annotations

import re
import uuid
from functools import cache

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Project, ProjectMembership, Role, User
from app.security import hash_password_sync

TEST_SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"


@cache
def password_hash() -> str:
    """Hashing with argon2 costs ~0.1 s; tests share one hash of PASSWORD."""
    return hash_password_sync(PASSWORD)


async def make_user(
    db: AsyncSession,
    *,
    name: str | None = None,
    email: str | None = None,
    admin: bool = False,
    active: bool = True,
    language: str = "en",
) -> User:
    tag = uuid.uuid4().hex[:8]
    user = User(
        email=email or f"user-{tag}@example.org",
        name=name or f"User {tag}",
        password_hash=password_hash(),
        is_admin=admin,
        is_active=active,
        language=language,
    )
    db.add(user)
    await db.flush()
    return user


async def make_project(
    db: AsyncSession, *, lead: User | None = None, slug: str | None = None, name: str | None = None
) -> Project:
    tag = uuid.uuid4().hex[:8]
    project = Project(slug=slug or f"p-{tag}", name=name or f"Project {tag}")
    db.add(project)
    await db.flush()
    if lead is not None:
        await add_member(db, project, lead, Role.lead)
    return project


async def add_member(db: AsyncSession, project: Project, user: User, *roles: Role) -> None:
    for role in roles:
        db.add(ProjectMembership(project_id=project.id, user_id=user.id, role=role.value))
    await db.flush()


CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


async def csrf_token(client: httpx.AsyncClient, path: str = "/login") -> str:
    """The CSRF token a page hands this client (bound to its current cookies)."""
    response = await client.get(path)
    match = CSRF_META.search(response.text)
    assert match, f"no csrf meta tag on {path} (status {response.status_code})"
    return match.group(1)


async def login(client: httpx.AsyncClient, user: User, password: str = PASSWORD) -> str:
    """Log `client` in as `user`; returns the CSRF token for the new session."""
    token = await csrf_token(client)
    response = await client.post(
        "/login", data={"email": user.email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return await csrf_token(client, "/account")
