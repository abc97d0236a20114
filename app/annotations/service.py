"""Annotating: the workspace's data, saving values (idempotent, versioned), submit, notes.

Saving lives in `app.annotations.saving` (the hot path, on the driver connection);
`save_value` runs it inside an ORM session.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.annotations import saving
from app.annotations.access import SaveTarget
from app.annotations.saving import READ_ONLY, SESSION, StaleValue, applies
from app.annotations.schemas import NoteCreate, SavedValue, ValueChange
from app.audit.service import record as audit
from app.auth.service import now
from app.codebook import core as codebook
from app.codebook.core import DimensionRule, DimensionView
from app.db import database_key, session_driver_connection
from app.errors import Conflict, DomainError, Invalid
from app.i18n import N_
from app.models import Annotation as Value
from app.models import AnnotationChange as Change
from app.models import (
    AnnotationSource,
    Assignment,
    Project,
    SourceAnnotation,
    Turn,
    TurnNote,
)

__all__ = ["READ_ONLY", "SESSION", "StaleValue"]


class Incomplete(DomainError):
    status_code = 422

    def __init__(self, missing: list[dict[str, Any]]) -> None:
        super().__init__(N_("Some required values are missing."), count=len(missing))
        self.missing = missing


async def _turns(db: AsyncSession, dialogue_id: int) -> list[Turn]:
    rows = await db.scalars(
        select(Turn).where(Turn.dialogue_id == dialogue_id).order_by(Turn.position)
    )
    return list(rows)


def _dimension_json(d: DimensionView) -> dict[str, Any]:
    dim = d.dimension
    return {
        "key": dim.key, "name_en": dim.name_en, "name_zh": dim.name_zh,
        "description": dim.description, "scope": dim.scope, "speaker": dim.speaker,
        "kind": dim.kind, "max_labels": dim.max_labels, "required": dim.required,
        "labels": [
            {"value": lb.value, "name_en": lb.name_en, "name_zh": lb.name_zh,
             "description": lb.description, "hotkey": lb.hotkey}
            for lb in d.labels
        ],
    }  # fmt: skip


# The dialogue, its turns, and the assignment's values and notes, built as one JSON document
# by PostgreSQL (one round trip, no ORM objects: a 200-turn dialogue is 200 rows).
_WORKSPACE = """
SELECT json_build_object(
    'dialogue', (SELECT json_build_object('id', d.id, 'external_id', d.external_id,
                                          'language', d.language, 'metadata', d.metadata)
                 FROM dialogues d WHERE d.id = $1),
    'turns', (SELECT coalesce(json_agg(json_build_object(
                  'position', t.position, 'speaker', t.speaker, 'participant', t.participant,
                  'content', t.content, 'flags', t.flags) ORDER BY t.position), '[]')
              FROM turns t WHERE t.dialogue_id = $1),
    'values', (SELECT coalesce(json_agg(json_build_object(
                   'position', v.position, 'dimension', v.dimension, 'labels', v.labels,
                   'text', v.text, 'version', v.version) ORDER BY v.id), '[]')
               FROM annotations v WHERE v.assignment_id = $2),
    'notes', (SELECT coalesce(json_agg(json_build_object(
                  'id', n.id, 'position', n.position, 'kind', n.kind, 'flag', n.flag,
                  'text', n.text) ORDER BY n.id), '[]')
              FROM turn_notes n WHERE n.assignment_id = $2))
"""


async def workspace(db: AsyncSession, project: Project, assignment: Assignment) -> dict[str, Any]:
    """Everything the screen needs, in a constant number of queries (any dialogue length)."""
    raw = await session_driver_connection(db)
    found = await raw.fetchval(_WORKSPACE, assignment.dialogue_id, assignment.id)
    if isinstance(found, str):  # SQLAlchemy's connections decode JSON already; a bare one not
        found = json.loads(found)
    book = await codebook_json(db, project)
    return {
        "assignment": {
            "id": assignment.id, "status": assignment.status,
            "dialogue_id": assignment.dialogue_id, "seconds_spent": assignment.seconds_spent,
            "codebook_version": book["version"],
        },
        "dialogue": found["dialogue"],
        "turns": found["turns"],
        "codebook": book,
        "values": found["values"],
        "suggestions": await _suggestions(db, project, assignment.dialogue_id),
        "notes": found["notes"],
        "read_only": assignment.status in READ_ONLY,
    }  # fmt: skip


_BOOKS: dict[tuple[str, int, int], dict[str, Any]] = {}


async def codebook_key(db: AsyncSession, project: Project) -> tuple[str, int, int]:
    """The project's codebook at its current version, in this database: what caches key on."""
    return (database_key(await db.connection()), project.id, project.codebook_version)


async def codebook_json(db: AsyncSession, project: Project) -> dict[str, Any]:
    """The codebook as the workspace shows it, built once per codebook version.

    Shared between requests: callers must not change it. Every codebook change bumps the
    version, so an entry is never stale; one whose version moved while it loaded is not kept.
    """
    key = await codebook_key(db, project)
    book = _BOOKS.get(key)
    if book is None:
        cb = await codebook.load(db, project)
        book = {"version": cb.version, "dimensions": [_dimension_json(d) for d in cb.dimensions]}
        now_at = await db.scalar(select(Project.codebook_version).where(Project.id == project.id))
        if now_at == project.codebook_version:
            if len(_BOOKS) > 256:
                _BOOKS.clear()
            _BOOKS[key] = book
    return book


async def _suggestions(
    db: AsyncSession, project: Project, dialogue_id: int
) -> list[dict[str, Any]]:
    if not project.suggestion_source:
        return []
    rows = await db.scalars(
        select(SourceAnnotation)
        .join(AnnotationSource, AnnotationSource.id == SourceAnnotation.source_id)
        .where(
            AnnotationSource.project_id == project.id,
            AnnotationSource.name == project.suggestion_source,
            SourceAnnotation.dialogue_id == dialogue_id,
        )
    )
    return [{"position": a.position, "dimension": a.dimension, "labels": a.labels,
             "text": a.text} for a in rows]  # fmt: skip


async def save_value(
    db: AsyncSession, project: Project, assignment: Assignment, user_id: int, change: ValueChange
) -> SavedValue:
    """Store one change in the session's transaction (see `saving.save`)."""
    raw = await session_driver_connection(db)
    target = SaveTarget(
        database_key(await db.connection()), user_id, project.id, project.codebook_version,
        assignment.id, assignment.dialogue_id, assignment.status,
    )  # fmt: skip
    return SavedValue.model_validate(await saving.save(raw, target, change, now()))


def missing_values(
    rules: dict[str, DimensionRule], turns: list[Turn], values: list[Value]
) -> list[dict[str, Any]]:
    """Required dimensions and fields without a non-empty value, in reading order."""
    filled = {(v.position, v.dimension) for v in values if v.labels or (v.text or "").strip()}
    required = [r for r in rules.values() if r.required]
    missing = [
        {"position": SESSION, "dimension": r.key}
        for r in required
        if applies(r, None) and (SESSION, r.key) not in filled
    ]
    for t in turns:
        missing.extend(
            {"position": t.position, "dimension": r.key}
            for r in required
            if applies(r, t.speaker) and (t.position, r.key) not in filled
        )
    return missing


async def submit(db: AsyncSession, project: Project, assignment: Assignment, user_id: int) -> None:
    """Submit when every required value is there; then the annotation is read-only."""
    if assignment.status in READ_ONLY:
        raise Conflict(N_("This dialogue is already submitted or skipped."))
    # Loaded fresh, not from the cache: submit is rare and must see `required` as it is now.
    rules = codebook.compile_rules(await codebook.load(db, project))
    turns = await _turns(db, assignment.dialogue_id)
    values = list(await db.scalars(select(Value).where(Value.assignment_id == assignment.id)))
    missing = missing_values(rules, turns, values)
    if missing:
        raise Incomplete(missing)
    assignment.status, assignment.submitted_at, assignment.updated_at = "submitted", now(), now()
    audit(db, user_id, "assignment.submit", "assignment", assignment.id, project_id=project.id)


async def add_note(
    db: AsyncSession, assignment: Assignment, user_id: int, note: NoteCreate
) -> TurnNote:
    """A flag or comment on a turn (or the session), visible to reviewers; retries store once."""
    if note.kind == "flag" and not note.flag:
        raise Invalid(N_("Choose a flag: unclear or risk content."))
    if note.kind == "comment" and not note.text.strip():
        raise Invalid(N_("A comment needs text."))
    if note.client_id is not None:
        earlier = await db.scalar(select(TurnNote).where(TurnNote.client_id == note.client_id))
        if earlier is not None:
            if earlier.assignment_id != assignment.id:
                raise Conflict(N_("This change id was already used for another dialogue."))
            return earlier
    row = TurnNote(
        assignment_id=assignment.id, dialogue_id=assignment.dialogue_id, position=note.position,
        kind=note.kind, flag=note.flag if note.kind == "flag" else "", text=note.text.strip(),
        user_id=user_id, client_id=note.client_id,
    )  # fmt: skip
    try:
        async with db.begin_nested():
            db.add(row)
            await db.flush()
    except IntegrityError:  # the same retry arrived twice at once
        stored = await db.scalar(select(TurnNote).where(TurnNote.client_id == note.client_id))
        if stored is None or stored.assignment_id != assignment.id:
            raise
        return stored
    return row


async def history(db: AsyncSession, dialogue_id: int, position: int) -> dict[int, list[Change]]:
    """Every change on one turn (or the session), per assignment, oldest first."""
    rows = await db.scalars(
        select(Change)
        .where(Change.dialogue_id == dialogue_id, Change.position == position)
        .order_by(Change.id)
    )
    out: dict[int, list[Change]] = defaultdict(list)
    for change in rows:
        out[change.assignment_id].append(change)
    return dict(out)


async def notes(db: AsyncSession, dialogue_id: int, position: int) -> list[TurnNote]:
    """Flags and comments on one turn (or the session), oldest first."""
    rows = await db.scalars(
        select(TurnNote)
        .where(TurnNote.dialogue_id == dialogue_id, TurnNote.position == position)
        .order_by(TurnNote.id)
    )
    return list(rows)


async def annotator_names(db: AsyncSession, dialogue_id: int) -> dict[int, str]:
    """Assignment id -> the annotator's name, for one dialogue."""
    from app.models import User

    rows = await db.execute(
        select(Assignment.id, User.name)
        .join(User, User.id == Assignment.user_id)
        .where(Assignment.dialogue_id == dialogue_id)
    )
    return {row[0]: row[1] for row in rows}
