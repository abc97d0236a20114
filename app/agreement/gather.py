"""Set-based SQL that gathers a project's ratings as arrays, one row per dimension.

PostgreSQL aggregates each dimension's ratings into parallel arrays (dialogue, position,
rater, label string, import batch, week of submission); Python only turns them into numpy
arrays and maps the few distinct label strings through the codebook's aliases. No per-rating
Python object is made, so 10,000 dialogues x 30 turns x 3 annotators stay in the seconds.

Raters: a person is their user id (> 0), a source is minus its source id (< 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

SEP = "\x1f"  # joins a rating's labels into one string (never inside a label value)
NO_WEEK = -(2**31)
POSITION_SPAN = 1 << 16  # unit key = dialogue id * POSITION_SPAN + position + 1 (65536 in the SQL)

_PEOPLE = """
SELECT a.dimension, array_agg(a.dialogue_id * 65536 + a.position + 1),
       array_agg(array_to_string(a.labels, E'\\x1f')), array_agg(a.assignment_id)
FROM annotations a
JOIN assignments s ON s.id = a.assignment_id
{join}
WHERE s.project_id = :project AND s.status = 'submitted' AND a.labels IS NOT NULL
  AND cardinality(a.labels) > 0 {where}
GROUP BY a.dimension
"""
_SOURCES = """
SELECT a.dimension, array_agg(a.dialogue_id * 65536 + a.position + 1),
       array_agg(array_to_string(a.labels, E'\\x1f')), array_agg(-src.id)
FROM source_annotations a
JOIN annotation_sources src ON src.id = a.source_id
{join}
WHERE src.project_id = :project AND src.name = ANY(:sources) AND a.labels IS NOT NULL
  AND cardinality(a.labels) > 0 {where}
GROUP BY a.dimension
"""
# Three arrays per rating (unit key, labels, assignment or minus the source id); small side
# arrays instead of per-rating joins: the batch of each dialogue, the annotator and the week of
# each submitted assignment (Monday-based weeks since 1970-01-05).
_BATCHES = """
SELECT array_agg(id ORDER BY id), array_agg(coalesce(import_batch_id, 0) ORDER BY id)
FROM dialogues WHERE project_id = :project
"""
_ASSIGNMENTS = """
SELECT array_agg(id ORDER BY id), array_agg(user_id ORDER BY id),
       array_agg(coalesce((date_trunc('week', submitted_at AT TIME ZONE 'UTC')::date
                           - DATE '1970-01-05') / 7, -2147483648) ORDER BY id)
FROM assignments WHERE project_id = :project AND status = 'submitted'
"""


@dataclass(frozen=True)
class Filters:
    dimension: str | None = None
    speaker: Literal["client", "counselor"] | None = None
    topic: str | None = None
    batch: int | None = None
    sources: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "speaker": self.speaker, "topic": self.topic,
                "batch": self.batch, "sources": sorted(self.sources)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Filters:
        return cls(data.get("dimension"), data.get("speaker"), data.get("topic"),
                   data.get("batch"), tuple(data.get("sources") or ()))  # fmt: skip


@dataclass(frozen=True)
class RawRatings:
    """One dimension's ratings as parallel arrays (one entry per rating)."""

    unit: NDArray[np.int64]  # dialogue id * POSITION_SPAN + position + 1
    rater: NDArray[np.int64]
    labels: list[str]  # the rating's labels joined by SEP, as stored (aliases not resolved)
    batch: NDArray[np.int64]
    week: NDArray[np.int64]  # Monday-based weeks since 1970-01-05; NO_WEEK for sources


def _sql(base: str, filters: Filters) -> str:
    where, joins = [], []
    if filters.dimension:
        where.append("AND a.dimension = :dimension")
    if filters.speaker:
        joins.append("JOIN turns t ON t.dialogue_id = a.dialogue_id AND t.position = a.position")
        where.append("AND t.speaker = :speaker")
    if filters.topic or filters.batch:
        joins.append("JOIN dialogues d ON d.id = a.dialogue_id")
    if filters.topic:
        where.append("AND d.session_labels @> CAST(:topic AS jsonb)")
    if filters.batch:
        where.append("AND d.import_batch_id = :batch")
    return base.format(join=" ".join(joins), where=" ".join(where))


async def _lookup(db: AsyncSession, sql: str, project_id: int) -> list[NDArray[np.int64]]:
    row = (await db.execute(text(sql), {"project": project_id})).one()
    return [np.asarray(column or [], dtype=np.int64) for column in row]


def _look_up(keys: Any, values: Any, wanted: NDArray[np.int64], missing: int) -> Any:
    """values[keys == w] for each w (keys sorted); `missing` where absent."""
    if len(keys) == 0:
        return np.full(len(wanted), missing, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, values[at], missing)


def _concat(parts: list[list[Any]]) -> NDArray[np.int64]:
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])


async def gather(db: AsyncSession, project_id: int, filters: Filters) -> dict[str, RawRatings]:
    """Every rating of the project's submitted assignments (and chosen sources) per dimension."""
    params: dict[str, Any] = {
        "project": project_id, "dimension": filters.dimension, "speaker": filters.speaker,
        "topic": json.dumps({"topic": [filters.topic]}) if filters.topic else None,
        "batch": filters.batch, "sources": list(filters.sources),
    }  # fmt: skip
    queries = [_sql(_PEOPLE, filters)]
    if filters.sources:
        queries.append(_sql(_SOURCES, filters))
    found: dict[str, list[tuple[Any, ...]]] = {}
    for sql in queries:
        used = {k: v for k, v in params.items() if f":{k}" in sql}
        for row in (await db.execute(text(sql), used)).all():
            found.setdefault(row[0], []).append(tuple(row[1:]))
    if not found:
        return {}
    dialogue_ids, batches = await _lookup(db, _BATCHES, project_id)
    assignment_ids, annotators, weeks = await _lookup(db, _ASSIGNMENTS, project_id)
    out = {}
    for dimension, parts in found.items():
        columns = list(zip(*parts, strict=True))
        unit = _concat(list(columns[0]))
        who = _concat(list(columns[2]))  # assignment id, or minus the source id
        out[dimension] = RawRatings(
            unit=unit,
            rater=np.where(who > 0, _look_up(assignment_ids, annotators, who, 0), who),
            labels=[s for part in columns[1] for s in part],
            batch=_look_up(dialogue_ids, batches, unit // POSITION_SPAN, 0),
            week=_look_up(assignment_ids, weeks, who, NO_WEEK),
        )
    return out
