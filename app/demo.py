"""The demo loaded on the first start in development: an admin and a project to look at."""

from __future__ import annotations

import secrets
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.codebook import core as codebook
from app.errors import Conflict
from app.imports import service
from app.imports.cli import file_digest
from app.imports.runner import Job
from app.imports.schemas import ImportRequest
from app.models import (
    Annotation,
    AnnotationSource,
    Assignment,
    Dialogue,
    ImportBatch,
    Project,
    Role,
    SourceAnnotation,
    User,
)
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
    async with database.sessionmaker() as db, db.begin():
        project = await db.get(Project, project_id)
        assert project is not None
        await seed_demo_ratings(db, project)
    return done


DEMO_ANNOTATORS = (
    ("demo-annotator-1@example.org", "Lin (demo annotator)"),
    ("demo-annotator-2@example.org", "Sam (demo annotator)"),
    ("demo-annotator-3@example.org", "Wei (demo annotator)"),
)


def _demo_choice(labels: list[str], vocabulary: list[str], key: str, rater: int) -> list[str]:
    """The people's label, or (for about one value in four) a plausible other one."""
    roll = zlib.crc32(key.encode())
    if not labels or roll % (4 + rater) != 0 or len(vocabulary) < 2:
        return labels
    first = vocabulary.index(labels[0]) if labels[0] in vocabulary else 0
    return [vocabulary[(first + 1 + roll % (len(vocabulary) - 1)) % len(vocabulary)]]


async def seed_demo_ratings(db: AsyncSession, project: Project) -> int:
    """Three demo annotators who submitted the demo dialogues (two per dialogue), starting from
    the imported labels with some changed, so the agreement dashboard has something to show.
    Runs once; returns the number of assignments made."""
    if await db.scalar(select(func.count()).select_from(Assignment)
                       .where(Assignment.project_id == project.id)):  # fmt: skip
        return 0
    source = await db.scalar(
        select(AnnotationSource).where(
            AnnotationSource.project_id == project.id, AnnotationSource.name == "demo-import"
        )
    )
    if source is None:
        return 0
    cb = await codebook.load(db, project)
    vocabulary = {d.key: [lb.value for lb in d.labels] for d in cb.dimensions}
    people = []
    for email, name in DEMO_ANNOTATORS:
        user = await db.scalar(select(User).where(User.email == email))
        if user is None:
            data = UserCreate(email=email, name=name, password=secrets.token_urlsafe(16))
            user = await create_user(db, None, data)
        await add_roles(db, None, project, user, [Role.annotator])
        people.append(user)
    project.overlap = max(project.overlap, 3)  # the demo administrator can still take one
    values = (await db.execute(
        select(SourceAnnotation).where(SourceAnnotation.source_id == source.id,
                                       SourceAnnotation.labels.is_not(None))
        .order_by(SourceAnnotation.dialogue_id, SourceAnnotation.position)
    )).scalars().all()  # fmt: skip
    by_dialogue: dict[int, list[SourceAnnotation]] = {}
    for v in values:
        by_dialogue.setdefault(v.dialogue_id, []).append(v)
    now = datetime.now(UTC)
    made = 0
    for k, (dialogue_id, rows) in enumerate(sorted(by_dialogue.items())):
        for r in (k % 3, (k + 1) % 3):
            when = now - timedelta(weeks=k % 3, hours=r)
            assignment = Assignment(project_id=project.id, dialogue_id=dialogue_id,
                                    user_id=people[r].id, status="submitted",
                                    codebook_version=project.codebook_version, started_at=when,
                                    submitted_at=when, seconds_spent=300 + 60 * r)  # fmt: skip
            db.add(assignment)
            await db.flush()
            made += 1
            for v in rows:
                key = f"{r}:{k}:{v.position}:{v.dimension}"
                labels = _demo_choice(list(v.labels or []), vocabulary.get(v.dimension, []), key, r)
                db.add(Annotation(assignment_id=assignment.id, dialogue_id=dialogue_id,
                                  position=v.position, dimension=v.dimension, labels=labels,
                                  version=1, codebook_version=project.codebook_version,
                                  updated_by_id=people[r].id))  # fmt: skip
        await db.execute(
            update(Dialogue).where(Dialogue.id == dialogue_id).values(assigned_count=2)
        )
    return made
