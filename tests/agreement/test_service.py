"""Agreement figures from the database: units never pooled, sources as raters, filters."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agreement.service import Filters, agreement
from app.models import Annotation, AnnotationSource, Assignment, Project, SourceAnnotation, User
from tests.dialogues.data import (
    client_turn,
    counselor_turn,
    make_batch,
    make_dialogue,
    make_source,
    seed_codebook,
)
from tests.factories import make_project, make_user

EMOTIONS = ["Anxiety", "Sadness", "Fear", "Anger"]
# rater x unit (unit = client turn 0 or 2 of dialogues 0..3): the emotion each rater chose
GRID = [
    ["Anxiety", "Sadness", "Fear", "Anxiety", "Anger", "Fear", "Sadness", "Anxiety"],
    ["Anxiety", "Sadness", "Fear", "Fear", "Anger", "Fear", "Sadness", None],
    ["Anxiety", "Anger", "Fear", "Anxiety", "Anger", "Sadness", "Sadness", "Anxiety"],
]


async def _setup(db: AsyncSession) -> tuple[Project, list[User], list[int]]:
    project = await make_project(db, lead=await make_user(db))
    await seed_codebook(db, project)
    source = await make_source(db, project, "model-draft")
    batch = await make_batch(db, project, source)
    dialogues = []
    for i in range(4):
        d = await make_dialogue(db, project, batch, external_id=f"a{i}", turns=[
            client_turn("x"), counselor_turn("y"), client_turn("z")])  # fmt: skip
        dialogues.append(d.id)
    users = [await make_user(db) for _ in GRID]
    for r, user in enumerate(users):
        for i, did in enumerate(dialogues):
            assignment = Assignment(project_id=project.id, dialogue_id=did, user_id=user.id,
                                    status="submitted", codebook_version=1)  # fmt: skip
            db.add(assignment)
            await db.flush()
            for k, position in enumerate((0, 2)):
                label = GRID[r][2 * i + k]
                if label is not None:
                    db.add(Annotation(assignment_id=assignment.id, dialogue_id=did,
                                      position=position, dimension="emotion", labels=[label],
                                      version=1, codebook_version=1))  # fmt: skip
    for i, did in enumerate(dialogues):
        for k, position in enumerate((0, 2)):
            db.add(SourceAnnotation(source_id=source.id, dialogue_id=did, position=position,
                                    dimension="emotion", labels=[GRID[0][2 * i + k]],
                                    import_batch_id=batch.id))  # fmt: skip
    await db.flush()
    return project, users, dialogues


def _expected_alpha(grid: list[list[str | None]]) -> float:
    codes = np.array([[EMOTIONS.index(v) if v else np.nan for v in row] for row in grid])
    return float(krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal"))


async def test_people_only_matches_an_independent_computation(db: AsyncSession) -> None:
    project, _, _ = await _setup(db)
    result = await agreement(db, project, Filters())
    emotion = next(r for r in result if r["dimension"] == "emotion")
    # emotion allows several labels: alpha with MASI on single-label sets equals nominal alpha
    assert emotion["distance"] == "MASI"
    assert emotion["alpha"]["value"] == pytest.approx(_expected_alpha(GRID), abs=1e-9)
    assert emotion["alpha"]["n_units"] == 8  # 4 dialogues x 2 client turns, never pooled
    assert len(emotion["raters"]) == 3
    strategy = next(r for r in result if r["dimension"] == "strategy")
    assert "alpha" not in strategy  # no ratings: no figures rather than zeros


async def test_a_source_can_join_the_raters(db: AsyncSession) -> None:
    project, _, _ = await _setup(db)
    result = await agreement(db, project, Filters(sources=("model-draft",)))
    emotion = next(r for r in result if r["dimension"] == "emotion")
    source_id = await db.scalar(
        select(AnnotationSource.id).where(AnnotationSource.name == "model-draft")
    )
    assert f"source:{source_id}" in emotion["raters"]
    assert emotion["alpha"]["value"] == pytest.approx(_expected_alpha([*GRID, GRID[0]]), abs=1e-9)


async def test_filters_narrow_the_units(db: AsyncSession) -> None:
    project, _, _ = await _setup(db)
    result = await agreement(db, project, Filters(dimension="emotion", speaker="counselor"))
    assert [r["dimension"] for r in result] == ["emotion"]
    assert "alpha" not in result[0]  # emotion is only on client turns
