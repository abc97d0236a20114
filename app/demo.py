"""The demo loaded on the first start in development: an admin and a project to look at."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.errors import Conflict
from app.imports import service
from app.imports.cli import file_digest
from app.imports.runner import Job
from app.imports.schemas import ImportRequest
from app.models import ImportBatch, Project, Role, User
from app.projects.schemas import ProjectCreate
from app.projects.service import add_roles, create_project
from app.runtime import Database

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


DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
DEMO_FILES = (
    ("demo_en.json", "demo-import"),
    ("demo_zh.json", "demo-import"),
    ("demo_model_en.json", "model-draft"),
    ("demo_model_zh.json", "model-draft"),
)


async def import_demo_dialogues(database: Database, project_id: int) -> list[ImportBatch]:
    """The demo's dialogues (people's labels and a model's draft), each file imported once."""
    done = []
    for name, source in DEMO_FILES:
        path = DEMO_DATA / name
        request = ImportRequest(source=source, format="psy_insight_v7")
        try:
            async with database.sessionmaker() as db, db.begin():
                project = await db.get(Project, project_id)
                assert project is not None
                batch = await service.new_batch(db, project, None, name, request)
                batch.sha256, batch.size_bytes = file_digest(path)
                await service.refuse_duplicate(db, batch, source)
                batch_id = batch.id
        except Conflict:
            continue  # already loaded
        done.append(await Job(database, batch_id).run(path))
    return done
