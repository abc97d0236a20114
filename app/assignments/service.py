"""Who annotates what: "next dialogue", assignment by leads, skip, submit, reopen, progress.

"Next" hands out the least covered dialogue first (then import order), never one the person
already had, and never beyond the project's overlap even when many press it at once: the
candidate row is locked with FOR UPDATE SKIP LOCKED and its live-assignment count rises in the
same statement, so concurrent callers take different rows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.service import now
from app.errors import Conflict, Invalid, NotFound
from app.i18n import N_
from app.models import Assignment, Dialogue, Project, User

OPEN = ("assigned", "in_progress")

_NEXT = text(
    """
    WITH candidate AS (
        SELECT d.id FROM dialogues d
        WHERE d.project_id = :project AND d.assigned_count < :overlap
          AND NOT EXISTS (
              SELECT 1 FROM assignments a WHERE a.dialogue_id = d.id AND a.user_id = :user)
        ORDER BY d.assigned_count, d.id
        LIMIT 1
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE dialogues SET assigned_count = dialogues.assigned_count + 1
    FROM candidate WHERE dialogues.id = candidate.id
    RETURNING dialogues.id
    """
)


async def open_assignment(db: AsyncSession, project: Project, user: User) -> Assignment | None:
    """The person's oldest unfinished assignment in the project, if any."""
    return await db.scalar(
        select(Assignment)
        .where(
            Assignment.project_id == project.id,
            Assignment.user_id == user.id,
            Assignment.status.in_(OPEN),
        )
        .order_by(Assignment.id)
        .limit(1)
    )


async def has_work(db: AsyncSession, project: Project, user: User) -> bool:
    """Whether "next" would give this person something (open work or a dialogue in need)."""
    if await open_assignment(db, project, user) is not None:
        return True
    return await _in_need(db, project, user)


async def _in_need(db: AsyncSession, project: Project, user: User) -> bool:
    """Whether a dialogue this person never had still needs annotators (as last committed)."""
    mine = select(Assignment.id).where(
        Assignment.dialogue_id == Dialogue.id, Assignment.user_id == user.id
    )
    found = await db.scalar(
        select(Dialogue.id)
        .where(
            Dialogue.project_id == project.id,
            Dialogue.assigned_count < project.overlap,
            ~mine.exists(),
        )
        .limit(1)
    )
    return found is not None


NEXT_TRIES = 8  # looks again while others are being given the dialogues that still have room


async def next_for(db: AsyncSession, project: Project, user: User) -> Assignment | None:
    """Unfinished work first; else a new dialogue that still needs annotators (None if none)."""
    current = await open_assignment(db, project, user)
    if current is not None:
        return current
    params = {"project": project.id, "overlap": project.overlap, "user": user.id}
    for attempt in range(NEXT_TRIES):
        dialogue_id = await db.scalar(_NEXT, params)
        if dialogue_id is not None:
            break
        # SKIP LOCKED passes over the dialogues others are being given at this moment; if one
        # of them may still have room once they commit, wait a little and look again rather
        # than answer "nothing left".
        if not await _in_need(db, project, user):
            return None
        await asyncio.sleep(0.02 * (attempt + 1))
    else:
        return None
    assignment = Assignment(
        project_id=project.id,
        dialogue_id=dialogue_id,
        user_id=user.id,
        codebook_version=project.codebook_version,
    )
    db.add(assignment)
    await db.flush()
    record(db, user.id, "assignment.next", "assignment", assignment.id, project_id=project.id,
           dialogue=dialogue_id)  # fmt: skip
    return assignment


async def assign(
    db: AsyncSession, actor: User, project: Project, dialogue_ids: list[int], user: User
) -> int:
    """A lead gives dialogues to a person (already given ones are left alone); returns how many."""
    known = list(
        await db.scalars(
            select(Dialogue.id).where(
                Dialogue.project_id == project.id, Dialogue.id.in_(dialogue_ids)
            )
        )
    )
    if len(known) != len(set(dialogue_ids)):
        raise NotFound(N_("Some of these dialogues are not in this project."))
    rows = [
        {"project_id": project.id, "dialogue_id": d, "user_id": user.id, "assigned_by_id": actor.id,
         "codebook_version": project.codebook_version}
        for d in known
    ]  # fmt: skip
    created = list(
        await db.scalars(
            insert(Assignment)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(Assignment.dialogue_id)
        )
    )
    if created:
        await db.execute(
            update(Dialogue)
            .where(Dialogue.id.in_(created))
            .values(assigned_count=Dialogue.assigned_count + 1)
        )
    record(db, actor.id, "assignment.assign", "user", user.id, project_id=project.id,
           dialogues=created)  # fmt: skip
    return len(created)


async def get(db: AsyncSession, project: Project, assignment_id: int) -> Assignment:
    assignment = await db.get(Assignment, assignment_id)
    if assignment is None or assignment.project_id != project.id:
        raise NotFound(N_("No such assignment in this project."))
    return assignment


async def _release(db: AsyncSession, assignment: Assignment) -> None:
    await db.execute(
        update(Dialogue)
        .where(Dialogue.id == assignment.dialogue_id)
        .values(assigned_count=Dialogue.assigned_count - 1)
    )


async def unassign(db: AsyncSession, actor: User, assignment: Assignment) -> None:
    """A lead takes an unsubmitted dialogue back from a person (their values go with it)."""
    if assignment.status == "submitted":
        raise Conflict(N_("A submitted dialogue cannot be unassigned; reopen it first."))
    if assignment.status != "skipped":
        await _release(db, assignment)
    await db.delete(assignment)
    record(db, actor.id, "assignment.unassign", "assignment", assignment.id,
           project_id=assignment.project_id)  # fmt: skip


async def skip(db: AsyncSession, user: User, assignment: Assignment, reason: str) -> None:
    """The annotator passes on a dialogue, saying why; it goes back to the pool for others."""
    reason = reason.strip()
    if not reason:
        raise Invalid(N_("Say why you skip this dialogue."))
    if assignment.status not in OPEN:
        raise Conflict(N_("Only an open assignment can be skipped."))
    assignment.status, assignment.skip_reason, assignment.updated_at = (
        "skipped",
        reason[:500],
        now(),
    )
    await _release(db, assignment)
    record(db, user.id, "assignment.skip", "assignment", assignment.id,
           project_id=assignment.project_id, reason=reason[:500])  # fmt: skip


async def reopen(db: AsyncSession, actor: User, assignment: Assignment) -> None:
    """A lead reopens a submitted dialogue so its annotator can change it again."""
    if assignment.status != "submitted":
        raise Conflict(N_("Only a submitted dialogue can be reopened."))
    assignment.status, assignment.submitted_at, assignment.updated_at = "in_progress", None, now()
    record(db, actor.id, "assignment.reopen", "assignment", assignment.id,
           project_id=assignment.project_id)  # fmt: skip


async def add_time(db: AsyncSession, assignment: Assignment, seconds: int) -> None:
    """Time the workspace reports; one report counts at most two minutes."""
    await db.execute(
        update(Assignment)
        .where(Assignment.id == assignment.id)
        .values(seconds_spent=Assignment.seconds_spent + max(0, min(seconds, 120)))
    )


@dataclass(frozen=True)
class QueueItem:
    assignment: Assignment
    dialogue: Dialogue


async def queue(db: AsyncSession, project: Project, user: User) -> list[QueueItem]:
    """A person's assignments in a project: open ones first, then the finished ones."""
    rows = await db.execute(
        select(Assignment, Dialogue)
        .join(Dialogue, Dialogue.id == Assignment.dialogue_id)
        .where(Assignment.project_id == project.id, Assignment.user_id == user.id)
        .order_by(Assignment.status.in_(OPEN).desc(), Assignment.id)
    )
    return [QueueItem(a, d) for a, d in rows.all()]


@dataclass(frozen=True)
class Progress:
    user_id: int
    name: str
    assigned: int
    in_progress: int
    submitted: int
    skipped: int
    seconds: int


async def progress(db: AsyncSession, project: Project) -> list[Progress]:
    """Counts and time spent per annotator (set-based, one query)."""
    status = Assignment.status
    rows = await db.execute(
        select(
            User.id,
            User.name,
            func.count().filter(status == "assigned"),
            func.count().filter(status == "in_progress"),
            func.count().filter(status == "submitted"),
            func.count().filter(status == "skipped"),
            func.coalesce(func.sum(Assignment.seconds_spent), 0),
        )
        .join(User, User.id == Assignment.user_id)
        .where(Assignment.project_id == project.id)
        .group_by(User.id)
        .order_by(User.name)
    )
    return [Progress(*row) for row in rows.all()]


async def coverage(db: AsyncSession, project: Project) -> dict[str, int]:
    """Dialogues by how complete their annotation is, for the project page."""
    done = (
        select(Assignment.dialogue_id, func.count().label("n"))
        .where(Assignment.project_id == project.id, Assignment.status == "submitted")
        .group_by(Assignment.dialogue_id)
        .subquery()
    )
    row = (
        await db.execute(
            select(
                func.count(),
                func.count().filter(func.coalesce(done.c.n, 0) >= project.overlap),
                func.count().filter(Dialogue.assigned_count > 0),
            )
            .select_from(Dialogue)
            .outerjoin(done, done.c.dialogue_id == Dialogue.id)
            .where(Dialogue.project_id == project.id)
        )
    ).one()
    return {"dialogues": row[0], "complete": row[1], "started": row[2]}


@dataclass(frozen=True)
class Row:
    assignment: Assignment
    external_id: str
    annotator: str


async def recent(db: AsyncSession, project: Project, limit: int = 200) -> list[Row]:
    """The latest assignments (open and submitted first-class), for the lead's page."""
    rows = await db.execute(
        select(Assignment, Dialogue.external_id, User.name)
        .join(Dialogue, Dialogue.id == Assignment.dialogue_id)
        .join(User, User.id == Assignment.user_id)
        .where(Assignment.project_id == project.id)
        .order_by(Assignment.updated_at.desc(), Assignment.id.desc())
        .limit(limit)
    )
    return [Row(a, ext, name) for a, ext, name in rows.all()]
