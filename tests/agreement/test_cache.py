"""The data version, the cached figures, background recomputation and drill-downs."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.agreement import service
from app.agreement.service import Filters, drilldown, params_key, recompute, report
from app.models import AgreementResult, Assignment, Project
from tests.agreement.test_service import GRID, _setup


async def _version(db: AsyncSession, project: Project) -> int:
    return await service.data_version(db, project.id)


async def test_submissions_imports_and_codebook_changes_move_the_data_version(
    db: AsyncSession,
) -> None:
    project, users, _dialogues = await _setup(db)
    start = await _version(db, project)
    assert start > 0  # inserting submitted assignments counted
    one = await db.scalar(select(Assignment).where(Assignment.user_id == users[0].id).limit(1))
    assert one is not None
    await db.execute(update(Assignment).where(Assignment.id == one.id).values(status="in_progress"))
    reopened = await _version(db, project)
    assert reopened == start + 1
    # a change that does not touch "submitted" (seconds spent, a first save) changes nothing
    await db.execute(update(Assignment).where(Assignment.id == one.id).values(seconds_spent=9))
    assert await _version(db, project) == reopened
    await db.execute(update(Assignment).where(Assignment.id == one.id).values(status="submitted"))
    assert await _version(db, project) == reopened + 1
    await db.execute(text("DELETE FROM assignments WHERE id = :i"), {"i": one.id})
    assert await _version(db, project) == reopened + 2
    await db.execute(
        update(Project)
        .where(Project.id == project.id)
        .values(codebook_version=Project.codebook_version + 1)
    )
    assert await _version(db, project) == reopened + 3
    await db.execute(text("UPDATE import_batches SET status = 'writing' WHERE project_id = :p"),
                     {"p": project.id})  # fmt: skip
    await db.execute(text("UPDATE import_batches SET status = 'succeeded' WHERE project_id = :p"),
                     {"p": project.id})  # fmt: skip
    assert await _version(db, project) == reopened + 4


async def test_the_page_reuses_the_figures_until_the_data_changes(db: AsyncSession) -> None:
    project, users, _ = await _setup(db)
    first = await report(db, project, Filters())
    assert first.fresh
    assert not first.pending
    stored = await db.get(AgreementResult, (project.id, params_key(Filters())))
    assert stored is not None
    assert stored.data_version == first.data_version
    # Tamper with the cached row: a cached read must return it as stored (no recomputation).
    marked = {"dimensions": [{"dimension": "marker"}]}
    await db.execute(update(AgreementResult).where(AgreementResult.project_id == project.id)
                     .values(result=marked))  # fmt: skip
    db.expunge_all()
    again = await report(db, project, Filters())
    assert again.dimensions == [{"dimension": "marker"}]
    # Another filter set is cached separately.
    emotion_only = await report(db, project, Filters(dimension="emotion"))
    assert [d["dimension"] for d in emotion_only.dimensions] == ["emotion"]
    # A reopened assignment moves the version: the next read recomputes (small project).
    one = await db.scalar(select(Assignment).where(Assignment.user_id == users[1].id).limit(1))
    assert one is not None
    one.status = "in_progress"
    await db.flush()
    db.expunge_all()
    fresh = await report(db, project, Filters())
    assert fresh.fresh
    assert fresh.data_version == first.data_version + 1
    assert any(d["dimension"] == "emotion" for d in fresh.dimensions)


async def test_large_projects_show_the_last_figures_and_queue_a_recomputation(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, users, _ = await _setup(db)
    await recompute(db, project, Filters())
    await db.execute(update(AgreementResult).values(duration_ms=60_000))  # it was slow
    one = await db.scalar(select(Assignment).where(Assignment.user_id == users[2].id).limit(1))
    assert one is not None
    one.status = "in_progress"
    await db.flush()
    db.expunge_all()
    stale = await report(db, project, Filters())
    assert stale.pending
    assert not stale.fresh
    assert stale.computed_at is not None
    assert stale.current_version == stale.data_version + 1
    jobs = (await db.execute(text(
        "SELECT task_name, queueing_lock, args FROM procrastinate_jobs WHERE status = 'todo'"
    ))).all()  # fmt: skip
    assert [(j[0], j[1]) for j in jobs] == [
        ("recompute_agreement", f"agreement-{project.id}-{params_key(Filters())}")
    ]
    assert jobs[0][2] == {"project_id": project.id, "params": Filters().as_dict()}
    # Asking again queues nothing more (the queueing lock), and the page still answers.
    again = await report(db, project, Filters())
    assert again.pending
    count = await db.scalar(text("SELECT count(*) FROM procrastinate_jobs"))
    assert count == 1
    # With nothing computed yet, a large project says so instead of blocking the page.
    monkeypatch.setattr(service, "INLINE_MAX_ASSIGNMENTS", 1)
    nothing = await report(db, project, Filters(dimension="strategy"))
    assert nothing.pending
    assert nothing.computed_at is None
    assert nothing.dimensions == []
    # What the job runs: the figures become current.
    done = await recompute(db, project, Filters())
    assert done.fresh
    assert done.data_version == stale.current_version


async def test_drilldown_lists_exactly_the_disagreeing_units(db: AsyncSession) -> None:
    project, users, dialogues = await _setup(db)
    every, units, _raters = await drilldown(
        db, project, Filters(), "emotion", (None, None, None, None)
    )
    # GRID columns where the given ratings are not all equal
    expected = [u for u in range(8) if len({r[u] for r in GRID if r[u] is not None}) > 1]
    assert every == len(expected)
    keys = {(u.dialogue_id, u.position) for u in units}
    assert keys == {(dialogues[u // 2], (0, 2)[u % 2]) for u in expected}
    a, b = f"user:{users[0].id}", f"user:{users[2].id}"
    pair_total, pair_units, _ = await drilldown(
        db, project, Filters(), "emotion", (a, b, None, None)
    )
    differ = [u for u in range(8) if GRID[0][u] and GRID[2][u] and GRID[0][u] != GRID[2][u]]
    assert pair_total == len(differ)
    for unit in pair_units:
        assert unit.ratings[a] != unit.ratings[b]
        assert unit.speaker == "client"
        assert unit.content in ("x", "z")
    cell_total, cell_units, _ = await drilldown(
        db, project, Filters(), "emotion", (a, b, "Sadness", "Anger")
    )
    assert cell_total == sum(
        1 for u in range(8) if GRID[0][u] == "Sadness" and GRID[2][u] == "Anger"
    )
    assert all(u.ratings[a] == ["Sadness"] and u.ratings[b] == ["Anger"] for u in cell_units)
    # the majority of the others: rater 1 against raters 0 and 2 (ties left out)
    c = f"user:{users[1].id}"
    majority_total, _, _ = await drilldown(
        db, project, Filters(), "emotion", (c, "majority", None, None)
    )
    against = 0
    for u in range(8):
        others = [GRID[r][u] for r in (0, 2) if GRID[r][u]]
        if GRID[1][u] and others and len(set(others)) == 1 and others[0] != GRID[1][u]:
            against += 1
    assert majority_total == against
    # unknown raters or labels: nothing, not an error
    assert (await drilldown(db, project, Filters(), "emotion", ("user:999999", b, None, None)))[
        0
    ] == 0
    assert (await drilldown(db, project, Filters(), "emotion", (a, b, "Nope", "Anger")))[0] == 0
    assert (await drilldown(db, project, Filters(), "no-such-dimension", (None,) * 4))[0] == 0


async def test_cached_json_is_what_was_computed(db: AsyncSession) -> None:
    project, _, _ = await _setup(db)
    computed = await recompute(db, project, Filters())
    raw = await db.scalar(
        text("SELECT result::text FROM agreement_results WHERE project_id = :p"), {"p": project.id}
    )
    assert json.loads(raw or "{}") == {"dimensions": computed.dimensions}
