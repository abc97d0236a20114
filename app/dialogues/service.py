"""Browsing a project's dialogues: filtered keyset pages, and one dialogue with its sources.

Every query is scoped to the project; a dialogue of another project does not exist here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, case, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.codebook.core import CodebookView
from app.dialogues import search
from app.dialogues.schemas import DialogueFilters, encode_cursor
from app.errors import NotFound
from app.formats.model import PSYCHOTHERAPY, TOPIC
from app.models import (
    AnnotationSource,
    Assignment,
    Dialogue,
    ImportBatch,
    Project,
    SourceAnnotation,
    Turn,
)

PAGE_SIZE = 50
SESSION = -1  # SourceAnnotation.position of a session-level value
CONTEXT_KEYS = ("theme", "stage", "background")  # metadata shown above the turns
STAGE_DIRECTION_KEYS = ("labels", "reference_labels")  # turn extras holding stage directions


@dataclass(frozen=True)
class LabelName:
    value: str
    name_en: str
    name_zh: str

    def shown(self, lang: str) -> str:
        if lang == "zh" and self.name_zh:
            return self.name_zh
        return self.name_en or self.value


@dataclass
class LabelNames:
    """Codebook names of dimensions and labels in both languages; raw values pass through."""

    dimensions: dict[str, LabelName] = field(default_factory=dict)
    labels: dict[str, list[LabelName]] = field(default_factory=dict)
    spelled: dict[str, dict[str, LabelName]] = field(default_factory=dict)

    def dimension(self, key: str, lang: str) -> str:
        found = self.dimensions.get(key)
        return found.shown(lang) if found else key

    def label(self, key: str, value: str, lang: str) -> str:
        found = self.spelled.get(key, {}).get(value)
        return found.shown(lang) if found else value

    def rank(self, key: str) -> int:
        keys = list(self.dimensions)
        return keys.index(key) if key in keys else len(keys)

    def spellings(self, key: str, value: str) -> list[str]:
        """A label value and the aliases the data may store it under (e.g. CBT's two names)."""
        found = self.spelled.get(key, {}).get(value)
        if found is None:
            return [value]
        return [v for v, label in self.spelled[key].items() if label == found]


def label_names(codebook: CodebookView) -> LabelNames:
    names = LabelNames()
    for view in codebook.dimensions:
        dim = view.dimension
        names.dimensions[dim.key] = LabelName(dim.key, dim.name_en, dim.name_zh)
        names.labels[dim.key] = []
        names.spelled[dim.key] = {}
        for label in view.labels:
            shown = LabelName(label.value, label.name_en, label.name_zh)
            names.labels[dim.key].append(shown)
            for spelling in (label.value, *label.aliases):
                names.spelled[dim.key].setdefault(spelling, shown)
    return names


@dataclass(frozen=True)
class BatchRef:
    id: int
    file_name: str


@dataclass(frozen=True)
class DialogueRow:
    id: int
    external_id: str
    language: str
    turn_count: int
    session_labels: dict[str, Any]
    batch: BatchRef
    status: str  # unassigned, in_progress or complete (`schemas.STATUSES`)
    submitted: int
    skipped: int

    def labels(self, key: str) -> list[str]:
        values = self.session_labels.get(key)
        return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


@dataclass(frozen=True)
class DialoguePage:
    rows: list[DialogueRow]
    next_cursor: str | None
    total: int


async def list_batches(db: AsyncSession, project: Project) -> list[BatchRef]:
    """The project's finished imports, newest first: the choices of the batch filter."""
    query = (
        select(ImportBatch.id, ImportBatch.file_name)
        .where(ImportBatch.project_id == project.id, ImportBatch.status == "succeeded")
        .order_by(ImportBatch.id.desc())
    )
    return [BatchRef(i, name) for i, name in (await db.execute(query)).all()]


def _conditions(
    project: Project, filters: DialogueFilters, names: LabelNames
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Dialogue.project_id == project.id]
    if filters.language:
        conditions.append(Dialogue.language == filters.language)
    for key, value in ((TOPIC, filters.topic), (PSYCHOTHERAPY, filters.psychotherapy)):
        if value:
            # `@>` on the GIN-indexed column; one test per spelling the data may use.
            tests = [
                Dialogue.session_labels.contains({key: [s]}) for s in names.spellings(key, value)
            ]
            conditions.append(or_(*tests))
    if filters.batch is not None:
        conditions.append(Dialogue.import_batch_id == filters.batch)
    if filters.status == "skipped":
        conditions.append(_count("skipped") > 0)
    elif filters.status:
        conditions.append(_status(project) == filters.status)
    if filters.q:
        expression = search.query(filters.q)
        # Text with nothing searchable in it (only punctuation or emoji) matches nothing.
        conditions.append(
            false()
            if expression is None
            else Dialogue.search.bool_op("@@")(func.to_tsquery("simple", expression))
        )
    return conditions


def _count(status: str) -> ScalarSelect[int]:
    """How many of the dialogue's assignments have this status."""
    return (
        select(func.count())
        .where(Assignment.dialogue_id == Dialogue.id, Assignment.status == status)
        .scalar_subquery()
    )


def _status(project: Project) -> ColumnElement[str]:
    """Where a dialogue's annotation stands (`schemas.STATUSES` but "skipped"): the one rule
    the filter and the shown status both use."""
    return case(
        (_count("submitted") >= project.overlap, "complete"),
        (Dialogue.assigned_count > 0, "in_progress"),
        else_="unassigned",
    )


async def list_dialogues(
    db: AsyncSession, project: Project, filters: DialogueFilters, names: LabelNames
) -> DialoguePage:
    """One page of matching dialogues in id order (keyset, no OFFSET) and the total matched."""
    conditions = _conditions(project, filters, names)
    query = (
        select(
            Dialogue.id,
            Dialogue.external_id,
            Dialogue.language,
            Dialogue.turn_count,
            Dialogue.session_labels,
            ImportBatch.id,
            ImportBatch.file_name,
            _status(project),
            _count("submitted"),
            _count("skipped"),
        )
        .join(ImportBatch, ImportBatch.id == Dialogue.import_batch_id)
        .where(*conditions, Dialogue.id > filters.after_id)
        .order_by(Dialogue.id)
        .limit(PAGE_SIZE + 1)
    )
    found = (await db.execute(query)).all()
    rows = [
        DialogueRow(i, ext, lang, turns, labels or {}, BatchRef(batch_id, file_name),
                    status, submitted, skipped)
        for i, ext, lang, turns, labels, batch_id, file_name, status, submitted, skipped
        in found[:PAGE_SIZE]
    ]  # fmt: skip
    more = len(found) > PAGE_SIZE
    total = await db.scalar(select(func.count()).select_from(Dialogue).where(*conditions))
    return DialoguePage(rows, encode_cursor(rows[-1].id) if more else None, int(total or 0))


async def get_dialogue(db: AsyncSession, project: Project, dialogue_id: int) -> Dialogue:
    """A dialogue of this project; any other id (another project's too) is NotFound."""
    query = (
        select(Dialogue)
        .options(defer(Dialogue.search, raiseload=True))
        .where(Dialogue.id == dialogue_id, Dialogue.project_id == project.id)
    )
    dialogue = (await db.execute(query)).scalar_one_or_none()
    if dialogue is None:
        raise NotFound("No such dialogue in this project.")
    return dialogue


@dataclass(frozen=True)
class SourceValue:
    source: str
    position: int
    dimension: str
    labels: list[str] | None
    text: str | None


# Source name -> that source's values at one place (a turn or the session), in codebook order.
SourceGroups = list[tuple[str, list[SourceValue]]]


@dataclass(frozen=True)
class TurnView:
    turn: Turn
    sources: SourceGroups
    stage_directions: list[str]
    other_extras: list[tuple[str, str]]


@dataclass(frozen=True)
class DialogueView:
    dialogue: Dialogue
    batch: BatchRef
    context: list[tuple[str, str]]
    other_metadata: list[tuple[str, str]]
    turns: list[TurnView]
    session: SourceGroups
    values: list[SourceValue]


async def read_dialogue(
    db: AsyncSession, project: Project, dialogue_id: int, names: LabelNames
) -> DialogueView:
    """A dialogue with its turns and every source's values, in a fixed number of queries."""
    dialogue = await get_dialogue(db, project, dialogue_id)
    batch = (
        await db.execute(
            select(ImportBatch.id, ImportBatch.file_name).where(
                ImportBatch.id == dialogue.import_batch_id
            )
        )
    ).one()
    turns = (
        await db.execute(
            select(Turn).where(Turn.dialogue_id == dialogue.id).order_by(Turn.position)
        )
    ).scalars()
    values = await _source_values(db, dialogue.id, names)
    by_position: dict[int, list[SourceValue]] = defaultdict(list)
    for value in values:
        by_position[value.position].append(value)
    context, other = _metadata(dialogue.meta)
    return DialogueView(
        dialogue=dialogue,
        batch=BatchRef(batch[0], batch[1]),
        context=context,
        other_metadata=other,
        turns=[_turn_view(t, _grouped(by_position.get(t.position, []))) for t in turns],
        session=_grouped(by_position.get(SESSION, [])),
        values=values,
    )


async def _source_values(
    db: AsyncSession, dialogue_id: int, names: LabelNames
) -> list[SourceValue]:
    query = (
        select(AnnotationSource.name, SourceAnnotation)
        .join(AnnotationSource, AnnotationSource.id == SourceAnnotation.source_id)
        .where(SourceAnnotation.dialogue_id == dialogue_id)
        .order_by(SourceAnnotation.position, AnnotationSource.name, AnnotationSource.id)
    )
    values = [
        SourceValue(name, a.position, a.dimension, a.labels, a.text)
        for name, a in (await db.execute(query)).all()
    ]
    # Stable: keeps position and source order, puts dimensions in codebook order.
    values.sort(key=lambda v: (v.position, v.source, names.rank(v.dimension), v.dimension))
    return values


def _grouped(values: list[SourceValue]) -> SourceGroups:
    groups: dict[str, list[SourceValue]] = {}
    for value in values:
        groups.setdefault(value.source, []).append(value)
    return list(groups.items())


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _metadata(meta: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Session context (theme, stage, background when filled in) and every other key."""
    context = [(k, _shown(meta[k])) for k in CONTEXT_KEYS if meta.get(k) not in (None, "")]
    other = [(k, _shown(v)) for k, v in meta.items() if k not in CONTEXT_KEYS]
    return context, other


def _turn_view(turn: Turn, sources: SourceGroups) -> TurnView:
    directions: list[str] = []
    for key in STAGE_DIRECTION_KEYS:
        directions.extend(_stage_directions(turn.extras.get(key)))
    other = [(k, _shown(v)) for k, v in turn.extras.items() if k not in STAGE_DIRECTION_KEYS]
    return TurnView(turn, sources, directions, other)


def _stage_directions(value: Any) -> list[str]:
    """`reference_labels` (a string or strings) or `labels` ({"label": ...} objects) as text."""
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        text = item.get("label") if isinstance(item, dict) else item
        if text not in (None, ""):
            found.append(_shown(text))
    return found
