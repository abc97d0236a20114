"""The demo loaded on the first start in development: an admin and a project to look at."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.models import Project, Role, User
from app.projects.schemas import ProjectCreate
from app.projects.service import add_roles, create_project

DEMO_ADMIN_EMAIL = "admin@example.org"
DEMO_SLUG = "demo"


async def has_users(db: AsyncSession) -> bool:
    return bool((await db.execute(select(func.count()).select_from(User))).scalar_one())


async def create_demo_admin(db: AsyncSession) -> tuple[User, str]:
    """The first administrator with a random password, returned so it can be shown once."""
    password = secrets.token_urlsafe(12)
    data = UserCreate(email=DEMO_ADMIN_EMAIL, name="Demo Admin", password=password, is_admin=True)
    return await create_user(db, None, data), password


async def load_demo(db: AsyncSession, lead: User) -> Project:
    """The demo project, created once; `lead` holds every role in it."""
    existing = await db.execute(select(Project).where(Project.slug == DEMO_SLUG))
    project = existing.scalar_one_or_none()
    if project is None:
        data = ProjectCreate(
            slug=DEMO_SLUG,
            name="Demo: counseling dialogues",
            description="A small project to try the tool with.",
        )
        project = await create_project(db, None, data, lead=lead)
    await add_roles(db, None, project, lead, list(Role))
    return project
