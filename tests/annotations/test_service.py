"""Assignment and saving rules against real PostgreSQL, including concurrent callers."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.annotations import service
from app.annotations.schemas import ValueChange
from app.assignments import service as assignments
from app.errors import Conflict, Invalid
from app.models import AnnotationChange, Assignment, Dialogue, Project, User
from tests.annotations.helpers import edit_dimension
from tests.factories import password_hash
from tests.imports.helpers import Env, make_env, v7_bytes, v7_record


@pytest.fixture
async def env(fresh_db_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    async for e in make_env(fresh_db_url, tmp_path):
        batch = await e.run(v7_bytes([v7_record(f"d{i}", turns=4) for i in range(5)]))
        assert batch.status == "succeeded"
        yield e


async def _users(env: Env, n: int) -> list[int]:
    async with env.database.sessionmaker() as db, db.begin():
        users = [User(email=f"a{i}-{uuid.uuid4().hex[:6]}@example.org", name=f"A{i}",
                      password_hash=password_hash()) for i in range(n)]  # fmt: skip
        db.add_all(users)
        await db.flush()
        return [u.id for u in users]


async def _next(env: Env, user_id: int) -> int | None:
    async with env.database.sessionmaker() as db, db.begin():
        project = await db.get(Project, env.project_id)
        user = await db.get(User, user_id)
        assert project is not None
        assert user is not None
        got = await assignments.next_for(db, project, user)
        return got.dialogue_id if got else None


@pytest.mark.parametrize("attempt", range(4))  # a race: each run is another chance to lose it
async def test_twenty_annotators_at_once_never_exceed_the_overlap(env: Env, attempt: int) -> None:
    users = await _users(env, 20)
    got = await asyncio.gather(*(_next(env, u) for u in users))
    handed = [d for d in got if d is not None]
    # 5 dialogues x overlap 2, all handed out: nobody is told "nothing left" because the
    # dialogues with room were locked by others being served at that moment
    assert len(handed) == 10
    assert set(Counter(handed).values()) == {2}
    async with env.database.sessionmaker() as db:
        pairs = (await db.execute(select(Assignment.dialogue_id, Assignment.user_id))).all()
        counts = dict((await db.execute(select(Dialogue.id, Dialogue.assigned_count))).all())
    assert len(pairs) == len(set(pairs)) == 10
    assert set(counts.values()) == {2}


async def test_next_is_fair_and_never_repeats_a_dialogue(env: Env) -> None:
    a, b = await _users(env, 2)
    first = await _next(env, a)
    assert await _next(env, a) == first  # unfinished work comes back first
    second = await _next(env, b)
    assert second != first  # the least covered dialogue goes first
    async with env.database.sessionmaker() as db, db.begin():
        await db.execute(update(Assignment).values(status="submitted"))
    seen = {first}
    for _ in range(4):
        got = await _next(env, a)
        async with env.database.sessionmaker() as db, db.begin():
            await db.execute(
                update(Assignment).where(Assignment.user_id == a).values(status="submitted")
            )
        assert got not in seen
        seen.add(got)
    assert await _next(env, a) is None  # had them all


async def _open(env: Env) -> tuple[int, int]:
    (user,) = await _users(env, 1)
    got = await _next(env, user)
    async with env.database.sessionmaker() as db:
        assignment_id = await db.scalar(
            select(Assignment.id).where(Assignment.dialogue_id == got, Assignment.user_id == user)
        )
    assert assignment_id is not None
    return user, assignment_id


async def _save(env: Env, assignment_id: int, user: int, change: ValueChange) -> object:
    async with env.database.sessionmaker() as db, db.begin():
        project = await db.get(Project, env.project_id)
        assignment = await db.get(Assignment, assignment_id)
        assert project is not None
        assert assignment is not None
        try:
            return await service.save_value(db, project, assignment, user, change)
        except Conflict as exc:
            return exc


def _change(base: int = 0, **kw: object) -> ValueChange:
    values: dict[str, object] = {
        "change_id": uuid.uuid4(),
        "position": 0,
        "dimension": "emotion",
        "labels": ["Anxiety"],
        "base_version": base,
    }
    values.update(kw)
    return ValueChange.model_validate(values)


async def test_two_writers_on_one_value_one_wins_one_conflicts(env: Env) -> None:
    user, aid = await _open(env)
    results = await asyncio.gather(
        _save(env, aid, user, _change(labels=["Fear"])),
        _save(env, aid, user, _change(labels=["Anger"])),
    )
    conflicts = [r for r in results if isinstance(r, service.StaleValue)]
    saved = [r for r in results if not isinstance(r, Conflict)]
    assert len(conflicts) == 1
    assert len(saved) == 1
    assert conflicts[0].current["version"] == 1
    assert conflicts[0].current["labels"] == saved[0].labels  # type: ignore[attr-defined]


async def test_two_writers_on_a_stored_value_one_wins_one_conflicts(env: Env) -> None:
    user, aid = await _open(env)
    first = await _save(env, aid, user, _change(labels=["Fear"]))
    assert first.version == 1  # type: ignore[attr-defined]
    results = await asyncio.gather(
        _save(env, aid, user, _change(base=1, labels=["Anger"])),
        _save(env, aid, user, _change(base=1, labels=["Sadness"])),
    )
    conflicts = [r for r in results if isinstance(r, service.StaleValue)]
    saved = [r for r in results if not isinstance(r, Conflict)]
    assert (len(conflicts), len(saved)) == (1, 1)
    assert conflicts[0].current == {"labels": saved[0].labels, "text": None, "version": 2}  # type: ignore[attr-defined]


async def test_one_change_sent_twice_at_once_is_stored_once(env: Env) -> None:
    user, aid = await _open(env)
    for base in (0, 1):  # a first value, then a change of it
        change = _change(base=base, labels=["Fear"] if base else ["Anger"])
        results = await asyncio.gather(*(_save(env, aid, user, change) for _ in range(3)))
        assert all(r == results[0] for r in results), results
        assert results[0].version == base + 1  # type: ignore[attr-defined]
    async with env.database.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(AnnotationChange)) == 2


async def test_retried_change_is_stored_once(env: Env) -> None:
    user, aid = await _open(env)
    change = _change()
    first = await _save(env, aid, user, change)
    again = await _save(env, aid, user, change)
    assert first == again
    async with env.database.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(AnnotationChange)) == 1
    stale = await _save(env, aid, user, _change(base=0, labels=["Fear"]))
    assert isinstance(stale, service.StaleValue)
    assert stale.current == {"labels": ["Anxiety"], "text": None, "version": 1}
    newer = await _save(env, aid, user, _change(base=1, labels=["Fear", "Anger"]))
    assert newer.version == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dimension": "mood"}, "Unknown dimension"),
        ({"labels": ["Bliss"]}, "Unknown label “Bliss”"),
        ({"dimension": "strategy", "labels": ["Question"]}, "does not apply here"),
        ({"position": 99}, "no turn at position 99"),
        ({"labels": None, "text": "x"}, "takes labels"),
        (
            {"position": -1, "dimension": "topic", "labels": ["Job Crisis", "Sleep Problems"]},
            "at most 1",
        ),
    ],
)
async def test_invalid_values_are_refused(
    env: Env, overrides: dict[str, object], message: str
) -> None:
    user, aid = await _open(env)
    with pytest.raises(Invalid, match=message):
        await _save(env, aid, user, _change(**overrides))


async def test_submit_checks_required_values_then_locks(env: Env) -> None:
    user, aid = await _open(env)
    async with env.database.sessionmaker() as db, db.begin():
        project = await db.get(Project, env.project_id)
        assert project is not None
        for key in ("emotion", "topic"):
            await edit_dimension(db, project, user, key, required=True)

    async def submit() -> object:
        async with env.database.sessionmaker() as db, db.begin():
            project = await db.get(Project, env.project_id)
            assignment = await db.get(Assignment, aid)
            assert project is not None
            assert assignment is not None
            try:
                await service.submit(db, project, assignment, user)
            except service.Incomplete as exc:
                return exc.missing
            return "ok"

    missing = await submit()
    assert missing == [
        {"position": -1, "dimension": "topic"},
        {"position": 0, "dimension": "emotion"},
        {"position": 2, "dimension": "emotion"},
    ]
    await _save(env, aid, user, _change(position=-1, dimension="topic", labels=["Job Crisis"]))
    await _save(env, aid, user, _change(position=0))
    await _save(env, aid, user, _change(position=2, labels=["Fear"]))
    assert await submit() == "ok"
    refused = await _save(env, aid, user, _change(position=0, base=1, labels=["Anger"]))
    assert isinstance(refused, Conflict)
    assert "read-only" in str(refused)


async def test_skip_returns_the_dialogue_to_the_pool(env: Env) -> None:
    user, aid = await _open(env)
    async with env.database.sessionmaker() as db, db.begin():
        assignment = await db.get(Assignment, aid)
        person = await db.get(User, user)
        assert assignment is not None
        assert person is not None
        with pytest.raises(Invalid):
            await assignments.skip(db, person, assignment, "  ")
        await assignments.skip(db, person, assignment, "Too distressing to read today")
        dialogue_id = assignment.dialogue_id
    async with env.database.sessionmaker() as db:
        assert (
            await db.scalar(select(Dialogue.assigned_count).where(Dialogue.id == dialogue_id)) == 0
        )
    assert await _next(env, user) != dialogue_id  # never handed twice to one person


async def test_rows_of_an_assignment_name_its_dialogue_and_go_with_it(env: Env) -> None:
    """(assignment, dialogue) is one key: another dialogue is refused; deleting the dialogue
    removes the assignment's values, change log and notes through it."""
    import sqlalchemy.exc

    from app.models import Annotation, TurnNote

    user, aid = await _open(env)
    await _save(env, aid, user, _change(labels=["Fear"]))
    async with env.database.sessionmaker() as db:
        assignment = await db.get(Assignment, aid)
        assert assignment is not None
        own = assignment.dialogue_id
        other = await db.scalar(select(Dialogue.id).where(Dialogue.id != own).limit(1))
    assert other is not None
    rows = [
        Annotation(assignment_id=aid, dialogue_id=other, position=1, dimension="emotion",
                   labels=["Fear"], version=1, codebook_version=1),
        AnnotationChange(change_id=uuid.uuid4(), assignment_id=aid, dialogue_id=other,
                         position=1, dimension="emotion", labels=["Fear"], version=1),
        TurnNote(assignment_id=aid, dialogue_id=other, position=1, kind="flag", flag="unclear"),
    ]  # fmt: skip
    for row in rows:
        with pytest.raises(sqlalchemy.exc.IntegrityError, match="assignment_id_dialogue_id"):
            async with env.database.sessionmaker() as db, db.begin():
                db.add(row)
    async with env.database.sessionmaker() as db, db.begin():
        db.add(TurnNote(assignment_id=aid, dialogue_id=own, position=1, kind="flag",
                        flag="unclear"))  # fmt: skip
    async with env.database.sessionmaker() as db, db.begin():
        await db.delete(await db.get(Dialogue, own))
    async with env.database.sessionmaker() as db:
        for model in (Annotation, AnnotationChange, TurnNote):
            assert await db.scalar(select(func.count()).select_from(model)) == 0
