"""Building import files and running imports against a throwaway database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.codebook.core import seed_default
from app.imports import service
from app.imports.cli import file_digest
from app.imports.runner import Job
from app.imports.schemas import ImportRequest
from app.models import Dialogue, ImportBatch, Project, SourceAnnotation, Turn
from app.runtime import Database, init_database, use_database

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "psy-insight"


def v7_record(
    dialog_id: str,
    *,
    emotion: list[str] | None = None,
    turns: int = 2,
    content: str = "I have not slept well for weeks.",
) -> dict[str, Any]:
    """A valid Psy-Insight v7 session, with keys in the released order."""
    dialog = []
    for i in range(turns):
        if i % 2 == 0:
            dialog.append(
                {
                    "speaker": "Seeker",
                    "participant": "Client",
                    "content": f"{content} {i}",
                    "id": f"1-{i}",
                    "observation": "tired",
                    "emotional label": emotion or ["Anxiety"],
                }
            )
        else:
            dialog.append(
                {
                    "speaker": "Supporter",
                    "participant": "Counselor",
                    "content": f"Tell me more. {i}",
                    "id": f"1-{i}",
                    "reasoning": "explore",
                    "strategy": ["Question"],
                }
            )
    return {
        "dialog_id": dialog_id,
        "theme": "Sleep",
        "psychotherapy": "Cognitive Behavioral Therapy",
        "topic": "Sleep Problems",
        "stage": "1st Session",
        "guide": "",
        "is_same_qa": 0,
        "is_same_session": 0,
        "background": "A student.",
        "reasoning": "r",
        "dialog": dialog,
        "summary": "s",
    }


def v7_bytes(records: list[dict[str, Any]]) -> bytes:
    return json.dumps(records, ensure_ascii=False, indent=4).encode()


@dataclass
class Env:
    database: Database
    project_id: int
    tmp: Path

    async def run(
        self,
        data: bytes | Path,
        *,
        source: str = "file.json",
        fmt: str | None = None,
        add_new_labels: bool = False,
        name: str = "file.json",
    ) -> ImportBatch:
        """Create a batch the way the CLI does and run it; returns the finished batch."""
        path = data if isinstance(data, Path) else self.tmp / name
        if not isinstance(data, Path):
            path.write_bytes(data)
        request = ImportRequest(source=source, format=fmt, add_new_labels=add_new_labels)
        async with self.database.sessionmaker() as db, db.begin():
            project = await db.get(Project, self.project_id)
            assert project is not None
            batch = await service.new_batch(db, project, None, path.name, request)
            batch.sha256, batch.size_bytes = file_digest(path)
            await service.refuse_duplicate(db, batch, source)
            batch_id = batch.id
        return await Job(self.database, batch_id).run(path)

    async def counts(self) -> tuple[int, int, int]:
        async with self.database.sessionmaker() as db:
            return tuple(  # type: ignore[return-value]
                [
                    await db.scalar(select(func.count()).select_from(t))
                    for t in (Dialogue, Turn, SourceAnnotation)
                ]
            )


async def make_env(url: str, tmp: Path) -> AsyncIterator[Env]:
    database = init_database(url, pool_size=3)
    async with database.sessionmaker() as db, db.begin():
        project = Project(slug="imp", name="Imports")
        db.add(project)
        await db.flush()
        await seed_default(db, project, None)
        project_id = project.id
    yield Env(database, project_id, tmp)
    await database.engine.dispose()
    use_database(None)


def require_shared() -> Path:
    if not (SHARED / "en_data_version7.json").exists():
        pytest.skip(f"the Psy-Insight files are not in {SHARED} (../shared beside the repo)")
    return SHARED
