"""Rebuilding dialogues with one source's labels, streamed in chunks, for the format writers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.formats import psy_insight
from app.formats.model import Dialogue, SourceAnnotation, Turn
from app.models import AnnotationSource, Project
from app.models import Dialogue as DialogueRow
from app.models import SourceAnnotation as AnnotationRow
from app.models import Turn as TurnRow

CHUNK = 200


async def find_source(db: AsyncSession, project: Project, name: str) -> AnnotationSource:
    source = await db.scalar(
        select(AnnotationSource).where(
            AnnotationSource.project_id == project.id, AnnotationSource.name == name
        )
    )
    if source is None:
        raise NotFound(f"No source named {name!r} in this project.")
    return source


async def languages(db: AsyncSession, project: Project, source: AnnotationSource) -> list[str]:
    query = (
        select(DialogueRow.language)
        .where(DialogueRow.project_id == project.id, _has_source(source))
        .distinct()
        .order_by(DialogueRow.language)
    )
    return list(await db.scalars(query))


def _has_source(source: AnnotationSource) -> Any:
    return (
        select(AnnotationRow.id)
        .where(AnnotationRow.dialogue_id == DialogueRow.id, AnnotationRow.source_id == source.id)
        .exists()
    )


async def dialogues(
    db: AsyncSession, project: Project, source: AnnotationSource, language: str
) -> AsyncIterator[Dialogue]:
    """The project's dialogues in one language that carry the source's labels, in import order."""
    after = 0
    while True:
        rows = list(
            await db.scalars(
                select(DialogueRow)
                .where(
                    DialogueRow.project_id == project.id,
                    DialogueRow.language == language,
                    DialogueRow.id > after,
                    _has_source(source),
                )
                .order_by(DialogueRow.id)
                .limit(CHUNK)
            )
        )
        if not rows:
            return
        for dialogue in await _rebuild(db, rows, source):
            yield dialogue
        after = rows[-1].id


async def _rebuild(
    db: AsyncSession, rows: Sequence[DialogueRow], source: AnnotationSource
) -> list[Dialogue]:
    ids = [r.id for r in rows]
    turns: dict[int, list[TurnRow]] = defaultdict(list)
    for turn in await db.scalars(
        select(TurnRow)
        .where(TurnRow.dialogue_id.in_(ids))
        .order_by(TurnRow.dialogue_id, TurnRow.position)
    ):
        turns[turn.dialogue_id].append(turn)
    notes: dict[tuple[int, int], list[SourceAnnotation]] = defaultdict(list)
    for ann in await db.scalars(
        select(AnnotationRow)
        .where(AnnotationRow.dialogue_id.in_(ids), AnnotationRow.source_id == source.id)
        .order_by(AnnotationRow.id)
    ):
        notes[(ann.dialogue_id, ann.position)].append(
            SourceAnnotation(ann.dimension, tuple(ann.labels or ()), ann.text, ann.scalar)
        )
    return [
        Dialogue(
            external_id=r.external_id,
            language=r.language,
            metadata=r.meta,
            turns=tuple(
                Turn(
                    position=t.position,
                    speaker="client" if t.speaker == "client" else "counselor",
                    participant=t.participant,
                    content=t.content,
                    source_id=t.original_id,
                    annotations=tuple(notes[(r.id, t.position)]),
                    extras=t.extras,
                    layout=tuple(t.layout),
                    flags=tuple(t.flags),
                )
                for t in turns[r.id]
            ),
            annotations=tuple(notes[(r.id, -1)]),
            source_format=r.source_format,
            layout=tuple(r.layout),
        )
        for r in rows
    ]


async def write_psy_insight(
    db: AsyncSession, project: Project, source_name: str, out_dir: Path
) -> list[tuple[Path, int]]:
    """One Psy-Insight v7 file per language from a source's labels; returns files and counts."""
    source = await find_source(db, project, source_name)
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (CLI and worker, not a request)
    written = []
    for language in await languages(db, project, source):
        path = out_dir / f"{project.slug}-{_safe(source.name)}-{language}.json"
        count = 0
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = psy_insight.writer(out)
            async for dialogue in dialogues(db, project, source, language):
                writer.write(dialogue)
                count += 1
            writer.close()
        written.append((path, count))
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
