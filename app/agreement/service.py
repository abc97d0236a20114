"""Agreement figures for a project: gathered by set-based SQL, computed by pure numpy code,
cached per filter set under the project's data version, recomputed in the background when large.

A unit is one dimension on one turn (or on the session): the unit key is (dialogue,
position, dimension), so two different turns are never pooled. Raters are the annotators of
submitted assignments, optionally with chosen sources (imported labels, model
pre-annotations). Only label dimensions are measured; free text is not.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.agreement import compute
from app.agreement.gather import Filters, RawRatings, gather
from app.codebook import core as codebook
from app.models import AgreementResult, AnnotationSource, Dialogue, Project, Turn, User

__all__ = ["Filters", "Report", "agreement", "envelope", "recompute", "report"]

# With no earlier computation to go by, projects with more submitted assignments than this
# are computed in the background (10,000 dialogues x 3 annotators take a few seconds).
INLINE_MAX_ASSIGNMENTS = 3000
INLINE_MAX_MS = 1500  # an earlier computation slower than this: recompute in the background


@dataclass
class Report:
    """Figures for one filter set, and how current they are."""

    dimensions: list[dict[str, Any]]
    data_version: int
    current_version: int
    computed_at: datetime | None
    duration_ms: int
    pending: bool = False  # a background recomputation is queued or running

    @property
    def fresh(self) -> bool:
        return self.computed_at is not None and self.data_version == self.current_version


def envelope(found: Report, filters: Filters, names: dict[str, str]) -> dict[str, Any]:
    """The figures with when they were computed and for which filters (API and JSON)."""
    return {
        "computed_at": found.computed_at.isoformat() if found.computed_at else None,
        "duration_ms": found.duration_ms,
        "data_version": found.data_version,
        "current_data_version": found.current_version,
        "current": found.fresh,
        "recomputing": found.pending,
        "filters": filters.as_dict(),
        "rater_names": names,
        "dimensions": found.dimensions,
    }


def params_key(filters: Filters) -> str:
    blob = json.dumps(filters.as_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _build(
    dimension: codebook.DimensionView, raw: RawRatings, canonical: dict[str, dict[str, str]]
) -> compute.DimensionData:
    multi = (dimension.dimension.max_labels or 1) > 1
    labels = [lb.value for lb in dimension.labels]
    return compute.build(raw, labels, canonical.get(dimension.key, {}), multi)


async def agreement(db: AsyncSession, project: Project, filters: Filters) -> list[dict[str, Any]]:
    """The figures of every label dimension (or the filtered one), computed now, JSON-ready."""
    cb = await codebook.load(db, project)
    raw = await gather(db, project.id, filters)
    canonical = codebook.aliases(cb)
    out = []
    for d in cb.dimensions:
        if d.dimension.kind != "label" or (filters.dimension and d.key != filters.dimension):
            continue
        row: dict[str, Any] = {"dimension": d.key, "name_en": d.dimension.name_en,
                               "name_zh": d.dimension.name_zh,
                               "multi_label": (d.dimension.max_labels or 1) > 1}  # fmt: skip
        if d.key in raw:
            row.update(compute.figures(_build(d, raw[d.key], canonical)))
        out.append(row)
    return out


async def dimension_data(
    db: AsyncSession, project: Project, filters: Filters, dimension: str
) -> compute.DimensionData | None:
    """One dimension's code matrix (for drill-downs), or None without ratings."""
    cb = await codebook.load(db, project)
    found = cb.get(dimension)
    if found is None or found.dimension.kind != "label":
        return None
    raw = (await gather(db, project.id, replace(filters, dimension=dimension))).get(dimension)
    return None if raw is None else _build(found, raw, codebook.aliases(cb))


async def data_version(db: AsyncSession, project_id: int) -> int:
    value = await db.scalar(select(Project.data_version).where(Project.id == project_id))
    return int(value or 0)


async def recompute(db: AsyncSession, project: Project, filters: Filters) -> Report:
    """Compute now and store the result under the data version read before gathering."""
    version = await data_version(db, project.id)
    started = time.perf_counter()
    dimensions = await agreement(db, project, filters)
    duration = int((time.perf_counter() - started) * 1000)
    values = {"project_id": project.id, "params_key": params_key(filters),
              "params": filters.as_dict(), "data_version": version,
              "result": {"dimensions": dimensions},
              "duration_ms": duration}  # fmt: skip
    statement = insert(AgreementResult).values(**values, computed_at=text("now()"))
    upsert = statement.on_conflict_do_update(
        index_elements=["project_id", "params_key"],
        set_={
            k: statement.excluded[k]
            for k in ("params", "data_version", "result", "duration_ms", "computed_at")
        },
    )
    computed_at = (await db.execute(upsert.returning(AgreementResult.computed_at))).scalar_one()
    return Report(dimensions, version, version, computed_at, duration)


async def _should_wait(db: AsyncSession, project_id: int, earlier: AgreementResult | None) -> bool:
    """Whether computing now would keep the page waiting too long."""
    if earlier is not None:
        return earlier.duration_ms > INLINE_MAX_MS
    slowest = await db.scalar(
        select(AgreementResult.duration_ms)
        .where(AgreementResult.project_id == project_id)
        .order_by(AgreementResult.duration_ms.desc())
        .limit(1)
    )
    if slowest is not None:
        return slowest > INLINE_MAX_MS
    submitted = await db.scalar(
        text("SELECT count(*) FROM assignments WHERE project_id = :p AND status = 'submitted'"),
        {"p": project_id},
    )
    return int(submitted or 0) > INLINE_MAX_ASSIGNMENTS


async def defer_recompute(db: AsyncSession, project_id: int, filters: Filters) -> None:
    """Queue a recomputation unless one for the same project and filters is already queued."""
    lock = f"agreement-{project_id}-{params_key(filters)}"
    args = json.dumps({"project_id": project_id, "params": filters.as_dict()})
    try:
        async with db.begin_nested():
            await db.execute(
                text(
                    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('agreement', "
                    "'recompute_agreement', 0, NULL, :lock, CAST(:args AS jsonb), NULL)]"
                    "::procrastinate_job_to_defer_v1[])"
                ),
                {"lock": lock, "args": args},
            )
    except IntegrityError:
        pass  # already queued: that job will see the newest data


async def report(db: AsyncSession, project: Project, filters: Filters) -> Report:
    """Cached figures when current; otherwise computed now, or in the background when large
    (then the last figures are shown, marked with when they were computed)."""
    version = await data_version(db, project.id)
    key = (project.id, params_key(filters))
    cached = await db.get(AgreementResult, key, populate_existing=True)
    if cached is not None and cached.data_version == version:
        return Report(cached.result["dimensions"], cached.data_version, version,
                      cached.computed_at, cached.duration_ms)  # fmt: skip
    if not await _should_wait(db, project.id, cached):
        return await recompute(db, project, filters)
    await defer_recompute(db, project.id, filters)
    if cached is None:
        return Report([], -1, version, None, 0, pending=True)
    return Report(cached.result["dimensions"], cached.data_version, version,
                  cached.computed_at, cached.duration_ms, pending=True)  # fmt: skip


@dataclass
class Disagreement:
    dialogue_id: int
    external_id: str
    position: int
    speaker: str | None
    content: str
    ratings: dict[str, list[str]] = field(default_factory=dict)  # rater key -> labels


async def drilldown(
    db: AsyncSession,
    project: Project,
    filters: Filters,
    dimension: str,
    cell: tuple[str | None, str | None, str | None, str | None],
    limit: int = 200,
) -> tuple[int, list[Disagreement], list[str]]:
    """The units behind a dashboard cell: (how many, the first `limit`, the raters)."""
    data = await dimension_data(db, project, filters, dimension)
    if data is None:
        return 0, [], []
    a, b, row, col = cell
    if (a is not None and a not in data.raters) or (
        b not in (None, "majority") and b not in data.raters
    ):
        return 0, [], data.raters
    if (row is not None and row not in data.labels) or (col is not None and col not in data.labels):
        return 0, [], data.raters
    hits = compute.disagreements(data, a, b, row, col)
    shown = hits[:limit]
    keys = [data.unit(int(i)) for i in shown]
    dialogue_ids = sorted({k[0] for k in keys})
    dialogues = dict(
        (await db.execute(
            select(Dialogue.id, Dialogue.external_id).where(Dialogue.id.in_(dialogue_ids))
        )).all()
    )  # fmt: skip
    wanted = select(Turn).where(tuple_(Turn.dialogue_id, Turn.position).in_(keys))
    turns = {(t.dialogue_id, t.position): t for t in (await db.scalars(wanted)).all()}
    out = []
    for i, (dialogue_id, position) in zip(shown, keys, strict=True):
        turn = turns.get((dialogue_id, position))
        ratings = {
            data.raters[r]: sorted(data.categories[int(code)], key=data.labels.index)
            for r, code in enumerate(data.codes[:, int(i)])
            if code >= 0
        }
        out.append(Disagreement(dialogue_id, dialogues.get(dialogue_id, "?"), position,
                                turn.speaker if turn else None,
                                turn.content if turn else "", ratings))  # fmt: skip
    return len(hits), out, data.raters


def rater_keys(rows: list[dict[str, Any]]) -> set[str]:
    """Every rater of these dimensions' figures (`rater_names` names them)."""
    return {r for row in rows for r in row.get("raters", [])}


async def rater_names(db: AsyncSession, keys: set[str]) -> dict[str, str]:
    """Display names for rater keys ("user:ID", "source:ID")."""
    users = [int(k[5:]) for k in keys if k.startswith("user:")]
    sources = [int(k[7:]) for k in keys if k.startswith("source:")]
    names: dict[str, str] = {}
    if users:
        for uid, name, email in (
            await db.execute(select(User.id, User.name, User.email).where(User.id.in_(users)))
        ).all():
            names[f"user:{uid}"] = name or email
    if sources:
        for sid, name in (
            await db.execute(
                select(AnnotationSource.id, AnnotationSource.name).where(
                    AnnotationSource.id.in_(sources)
                )
            )
        ).all():
            names[f"source:{sid}"] = name
    return names
