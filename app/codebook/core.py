"""The codebook as the rest of the app reads it: seeding, loading, vocabulary, versions.

Editing rules live in `app.codebook.service`; this module is what imports, annotation and
exports depend on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import database_key
from app.formats.vocab import LABEL_ALIASES, PSY_INSIGHT_CODEBOOK
from app.models import CodebookDimension, CodebookLabel, CodebookVersion, Project


@dataclass
class DimensionView:
    dimension: CodebookDimension
    labels: list[CodebookLabel] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.dimension.key


@dataclass
class CodebookView:
    project_id: int
    version: int
    dimensions: list[DimensionView]

    def get(self, key: str) -> DimensionView | None:
        return next((d for d in self.dimensions if d.key == key), None)


async def seed_default(db: AsyncSession, project: Project, actor_id: int | None) -> None:
    """Give a new project the Psy-Insight codebook (version 1)."""
    for position, spec in enumerate(PSY_INSIGHT_CODEBOOK):
        dimension = CodebookDimension(
            project_id=project.id,
            key=spec.key,
            name_en=spec.name_en,
            name_zh=spec.name_zh,
            scope=spec.scope,
            speaker=spec.speaker,
            kind=spec.kind,
            max_labels=spec.max_labels,
            required=spec.required,
            position=position,
        )
        db.add(dimension)
        await db.flush()
        aliases = LABEL_ALIASES.get(spec.key, {})
        for label_pos, label in enumerate(spec.labels):
            db.add(
                CodebookLabel(
                    dimension_id=dimension.id,
                    value=label.value,
                    name_en=label.value,
                    name_zh=label.name_zh,
                    hotkey=label.hotkey,
                    position=label_pos,
                    aliases=[a for a, target in aliases.items() if target == label.value],
                )
            )
    await db.flush()
    await record_version(db, project, actor_id, "created from the Psy-Insight codebook")


async def load(db: AsyncSession, project: Project) -> CodebookView:
    """The project's current codebook, dimensions and labels in display order."""
    dims = (
        await db.execute(
            select(CodebookDimension)
            .where(CodebookDimension.project_id == project.id)
            .order_by(CodebookDimension.position, CodebookDimension.id)
        )
    ).scalars()
    views = {d.id: DimensionView(d) for d in dims}
    if views:
        labels = await db.execute(
            select(CodebookLabel)
            .where(CodebookLabel.dimension_id.in_(views))
            .order_by(CodebookLabel.position, CodebookLabel.id)
        )
        for label in labels.scalars():
            views[label.dimension_id].labels.append(label)
    return CodebookView(project.id, project.codebook_version, list(views.values()))


def vocabulary(codebook: CodebookView) -> dict[str, frozenset[str]]:
    """Allowed stored values per label dimension (labels and their aliases), for importers."""
    return {
        d.key: frozenset(v for label in d.labels for v in (label.value, *label.aliases))
        for d in codebook.dimensions
        if d.dimension.kind == "label"
    }


def aliases(codebook: CodebookView) -> dict[str, dict[str, str]]:
    """Alias spelling -> label value, per dimension (how imported spellings are read)."""
    return {
        d.key: {a: lb.value for lb in d.labels for a in lb.aliases} for d in codebook.dimensions
    }


def snapshot(codebook: CodebookView) -> dict[str, Any]:
    """The codebook as plain JSON: what versions store and what export/import exchange."""
    return {
        "format": "psy-annotator-codebook",
        "format_version": 1,
        "dimensions": [
            {
                "key": d.key,
                "name_en": d.dimension.name_en,
                "name_zh": d.dimension.name_zh,
                "description": d.dimension.description,
                "scope": d.dimension.scope,
                "speaker": d.dimension.speaker,
                "kind": d.dimension.kind,
                "max_labels": d.dimension.max_labels,
                "required": d.dimension.required,
                "labels": [
                    {
                        "value": label.value,
                        "name_en": label.name_en,
                        "name_zh": label.name_zh,
                        "description": label.description,
                        "hotkey": label.hotkey,
                        "aliases": list(label.aliases),
                    }
                    for label in d.labels
                ],
            }
            for d in codebook.dimensions
        ],
    }


async def record_version(
    db: AsyncSession, project: Project, actor_id: int | None, change: str
) -> int:
    """Store the current codebook as the project's next version (the first is 1).

    The project row is locked first, so concurrent changes (an edit, an import adding labels)
    take turns instead of racing for the same version number.
    """
    await db.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    latest = await db.scalar(
        select(func.max(CodebookVersion.version)).where(CodebookVersion.project_id == project.id)
    )
    version = 1 if latest is None else latest + 1
    await db.execute(
        update(Project).where(Project.id == project.id).values(codebook_version=version)
    )
    project.codebook_version = version
    codebook = await load(db, project)
    db.add(
        CodebookVersion(
            project_id=project.id,
            version=version,
            snapshot=snapshot(codebook),
            change=change,
            created_by_id=actor_id,
        )
    )
    await db.flush()
    return version


@dataclass(frozen=True)
class DimensionRule:
    """What a saved value of one dimension must satisfy."""

    key: str
    scope: str
    speaker: str
    kind: str
    max_labels: int | None
    required: bool
    values: frozenset[str]


RulesKey = tuple[str, int, int]  # (database, project id, codebook version)
_RULES: dict[RulesKey, dict[str, DimensionRule]] = {}


def compile_rules(codebook: CodebookView) -> dict[str, DimensionRule]:
    """The rules of every dimension, in display order."""
    return {
        d.key: DimensionRule(
            d.key, d.dimension.scope, d.dimension.speaker, d.dimension.kind,
            d.dimension.max_labels, d.dimension.required,
            frozenset(label.value for label in d.labels),
        )
        for d in codebook.dimensions
    }  # fmt: skip


def cached_rules(key: RulesKey) -> dict[str, DimensionRule] | None:
    """Rules compiled earlier for this database, project and codebook version.

    Every codebook change bumps the version, so a cached entry is never stale.
    """
    return _RULES.get(key)


def keep_rules(key: RulesKey, found: dict[str, DimensionRule]) -> None:
    if len(_RULES) > 256:
        _RULES.clear()
    _RULES[key] = found


async def rules(db: AsyncSession, project: Project) -> dict[str, DimensionRule]:
    """The codebook's validation rules, cached per project and codebook version."""
    key = (database_key(await db.connection()), project.id, project.codebook_version)
    found = cached_rules(key)
    if found is None:
        found = compile_rules(await load(db, project))
        keep_rules(key, found)
    return found
