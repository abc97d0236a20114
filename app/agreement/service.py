"""Agreement figures for a project: set-based SQL gathers the ratings, pure metrics compute.

A unit is one dimension on one turn (or on the session): the unit key is
(dialogue, position, dimension), so two different turns are never pooled. Raters are the
annotators of submitted assignments, optionally with chosen sources (imported labels, model
pre-annotations) as extra raters. Only label dimensions are measured; free text is not.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.agreement import metrics as m
from app.codebook import core as codebook
from app.models import Project

N_BOOT = 200

_PEOPLE = """
SELECT a.dialogue_id, a.position, a.dimension, 'user:' || s.user_id AS rater, a.labels
FROM annotations a
JOIN assignments s ON s.id = a.assignment_id
JOIN dialogues d ON d.id = a.dialogue_id
{speaker_join}
WHERE s.project_id = :project AND s.status = 'submitted' AND a.labels IS NOT NULL
  AND cardinality(a.labels) > 0 {where}
"""
_SOURCES = """
SELECT v.dialogue_id, v.position, v.dimension, 'source:' || src.name AS rater, v.labels
FROM source_annotations v
JOIN annotation_sources src ON src.id = v.source_id
JOIN dialogues d ON d.id = v.dialogue_id
{speaker_join}
WHERE src.project_id = :project AND src.name = ANY(:sources) AND v.labels IS NOT NULL
  AND cardinality(v.labels) > 0 {where}
"""


@dataclass(frozen=True)
class Filters:
    dimension: str | None = None
    speaker: Literal["client", "counselor"] | None = None
    topic: str | None = None
    batch: int | None = None
    sources: tuple[str, ...] = ()


@dataclass
class DimensionFigures:
    key: str
    name_en: str
    name_zh: str
    multi_label: bool
    figures: dict[str, Any] = field(default_factory=dict)


def _coef(c: m.Coefficient) -> dict[str, Any]:
    return {"value": c.value, "undefined_reason": c.reason, "n_units": c.n_units,
            "n_units_single_rater": c.n_units_dropped_single_rater, "n_raters": c.n_raters,
            "n_ratings": c.n_ratings}  # fmt: skip


def _query(base: str, filters: Filters) -> str:
    where, join = [], ""
    if filters.dimension:
        where.append("AND {t}.dimension = :dimension")
    if filters.speaker:
        join = "JOIN turns t ON t.dialogue_id = d.id AND t.position = {t}.position"
        where.append("AND t.speaker = :speaker")
    if filters.topic:
        where.append("AND d.session_labels @> CAST(:topic AS jsonb)")
    if filters.batch:
        where.append("AND d.import_batch_id = :batch")
    alias = "a" if "annotations a" in base else "v"
    return base.format(speaker_join=join.format(t=alias), where=" ".join(where).format(t=alias))


async def gather(
    db: AsyncSession, project: Project, filters: Filters, cb: codebook.CodebookView
) -> dict[str, list[tuple[tuple[int, int], str, frozenset[str]]]]:
    """(unit, rater, label set) rows per dimension, alias spellings resolved."""
    import json

    params: dict[str, Any] = {
        "project": project.id, "dimension": filters.dimension, "speaker": filters.speaker,
        "topic": json.dumps({"topic": [filters.topic]}) if filters.topic else None,
        "batch": filters.batch, "sources": list(filters.sources),
    }  # fmt: skip
    canonical = codebook.aliases(cb)
    queries = [_query(_PEOPLE, filters)]
    if filters.sources:
        queries.append(_query(_SOURCES, filters))
    out: dict[str, list[tuple[tuple[int, int], str, frozenset[str]]]] = defaultdict(list)
    for sql in queries:
        used = {k: v for k, v in params.items() if f":{k}" in sql}
        result = await db.stream(text(sql), used)
        async for dialogue_id, position, dimension, rater, labels in result:
            aliases = canonical.get(dimension, {})
            values = frozenset(aliases.get(v, v) for v in labels)
            out[dimension].append(((dialogue_id, position), rater, values))
    return out


def figures_for(
    rows: list[tuple[tuple[int, int], str, frozenset[str]]], multi_label: bool, labels: list[str]
) -> dict[str, Any]:
    """Every figure of one dimension from its ratings (pure computation)."""
    table = m.pivot_ratings(rows)
    raters = [str(r) for r in table.raters]
    sets = table.matrix
    if multi_label:
        alpha = m.krippendorff_alpha_set(sets, "masi")
        ci = m.bootstrap_alpha_set_ci(sets, "masi", n_boot=N_BOOT, seed=7)
        per_label = m.per_label_agreement(sets, labels)
        flat = [[("|".join(sorted(v)) if v is not None else None) for v in row] for row in sets]
        extra: dict[str, Any] = {
            "distance": "MASI",
            "per_label": {
                k: {
                    "alpha": _coef(v.alpha),
                    "percent_agreement": _coef(v.percent_agreement),
                    "n_positive": v.n_positive,
                }
                for k, v in per_label.items()
            },
        }
    else:
        flat = [[(next(iter(v)) if v else None) for v in row] for row in sets]
        alpha = m.krippendorff_alpha(flat, "nominal")
        ci = m.bootstrap_alpha_ci(flat, "nominal", n_boot=N_BOOT, seed=7)
        extra = {"distance": "nominal"}
    fleiss = m.fleiss_kappa(flat)
    pairwise = m.pairwise_matrix(flat, "cohen_kappa")
    per_rater = m.rater_agreement(flat)
    return {
        "raters": raters,
        "percent_agreement": _coef(m.percent_agreement(flat)),
        "alpha": _coef(alpha),
        "alpha_ci95": {"low": ci.low, "high": ci.high, "undefined_reason": ci.reason},
        "fleiss_kappa": _coef(fleiss),
        "mean_pairwise_cohen_kappa": _coef(m.mean_pairwise_cohen_kappa(flat)),
        "pairwise_cohen_kappa": [[c.value for c in row] for row in pairwise],
        "per_rater": [
            {
                "rater": raters[r.rater],
                "with_others": r.with_others.value,
                "with_majority": r.with_majority.value,
            }
            for r in per_rater
        ],
        **extra,
    }


async def agreement(db: AsyncSession, project: Project, filters: Filters) -> list[DimensionFigures]:
    """The figures of every label dimension (or the filtered one) of the project."""
    cb = await codebook.load(db, project)
    rows = await gather(db, project, filters, cb)
    out = []
    for d in cb.dimensions:
        if d.dimension.kind != "label" or (filters.dimension and d.key != filters.dimension):
            continue
        multi = (d.dimension.max_labels or 1) > 1
        found = DimensionFigures(d.key, d.dimension.name_en, d.dimension.name_zh, multi)
        if rows.get(d.key):
            labels = [lb.value for lb in d.labels]
            found.figures = figures_for(rows[d.key], multi, labels)
        out.append(found)
    return out


def as_json(result: list[DimensionFigures]) -> list[dict[str, Any]]:
    return [{"dimension": r.key, "name_en": r.name_en, "name_zh": r.name_zh,
             "multi_label": r.multi_label, **r.figures} for r in result]  # fmt: skip
