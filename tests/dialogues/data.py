"""Typed helpers that insert dialogue data directly (no import pipeline involved)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.codebook.core import seed_default
from app.dialogues import search
from app.models import AnnotationSource, Dialogue, ImportBatch, Project, SourceAnnotation, Turn


@dataclass(frozen=True)
class TurnSpec:
    speaker: str  # "client" or "counselor"
    content: str
    participant: str = ""
    flags: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)


def client_turn(content: str, participant: str = "Client", **kw: Any) -> TurnSpec:
    return TurnSpec("client", content, participant, **kw)


def counselor_turn(content: str, participant: str = "Therapist", **kw: Any) -> TurnSpec:
    return TurnSpec("counselor", content, participant, **kw)


async def seed_codebook(db: AsyncSession, project: Project) -> None:
    """The default Psy-Insight codebook (make_project does not create one)."""
    await seed_default(db, project, None)


async def make_source(
    db: AsyncSession, project: Project, name: str = "psy-insight"
) -> AnnotationSource:
    source = AnnotationSource(project_id=project.id, name=name)
    db.add(source)
    await db.flush()
    return source


async def make_batch(
    db: AsyncSession,
    project: Project,
    source: AnnotationSource,
    file_name: str = "data.json",
    status: str = "succeeded",
) -> ImportBatch:
    batch = ImportBatch(
        project_id=project.id,
        source_id=source.id,
        file_name=file_name,
        sha256=hashlib.sha256(uuid.uuid4().bytes).digest(),
        size_bytes=1234,
        status=status,
    )
    db.add(batch)
    await db.flush()
    return batch


def _dialogue(
    project: Project,
    batch: ImportBatch,
    *,
    external_id: str | None,
    language: str,
    turns: Sequence[TurnSpec],
    meta: dict[str, Any] | None,
    session_labels: dict[str, list[str]] | None,
) -> Dialogue:
    meta = meta or {}
    external_id = external_id or uuid.uuid4().hex[:12]
    # What the importer indexes (app.imports.writer): id, background, theme and the turns.
    shown = [meta.get(k) for k in ("background", "theme")]
    texts = [external_id, *(v for v in shown if isinstance(v, str)), *(t.content for t in turns)]
    digest = hashlib.sha256()
    for t in turns:
        digest.update(f"{t.speaker}\x1f{t.content}\x1e".encode())
    return Dialogue(
        project_id=project.id,
        external_id=external_id,
        language=language,
        meta=meta,
        source_format="psy-insight-v7",
        turn_count=len(turns),
        fingerprint=digest.digest(),
        import_batch_id=batch.id,
        session_labels=session_labels or {},
        search=func.to_tsvector("simple", search.document(texts)),
    )


async def make_dialogue(
    db: AsyncSession,
    project: Project,
    batch: ImportBatch,
    *,
    external_id: str | None = None,
    language: str = "en",
    turns: Sequence[TurnSpec] = (),
    meta: dict[str, Any] | None = None,
    session_labels: dict[str, list[str]] | None = None,
) -> Dialogue:
    """A dialogue with its turns; `search` is built as the importer builds it."""
    dialogue = _dialogue(
        project,
        batch,
        external_id=external_id,
        language=language,
        turns=turns,
        meta=meta,
        session_labels=session_labels,
    )
    db.add(dialogue)
    await db.flush()
    db.add_all(
        Turn(
            dialogue_id=dialogue.id,
            position=i,
            speaker=t.speaker,
            participant=t.participant,
            content=t.content,
            original_id=f"u-{i}",
            extras=t.extras,
            flags=list(t.flags),
        )
        for i, t in enumerate(turns)
    )
    await db.flush()
    return dialogue


async def make_dialogues(
    db: AsyncSession, project: Project, batch: ImportBatch, count: int, language: str = "en"
) -> list[Dialogue]:
    """Many turnless dialogues in one flush (for paging tests)."""
    made = [
        _dialogue(
            project,
            batch,
            external_id=None,
            language=language,
            turns=(),
            meta=None,
            session_labels=None,
        )
        for _ in range(count)
    ]
    db.add_all(made)
    await db.flush()
    return made


async def annotate(
    db: AsyncSession,
    source: AnnotationSource,
    dialogue: Dialogue,
    position: int,
    dimension: str,
    *,
    labels: list[str] | None = None,
    text: str | None = None,
) -> SourceAnnotation:
    """One source value at a turn position (-1: the session)."""
    value = SourceAnnotation(
        source_id=source.id,
        dialogue_id=dialogue.id,
        position=position,
        dimension=dimension,
        labels=labels,
        text=text,
        import_batch_id=dialogue.import_batch_id,
    )
    db.add(value)
    await db.flush()
    return value
