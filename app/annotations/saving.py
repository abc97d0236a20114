"""Saving one value: the workspace's hot path, in two statements on the driver connection.

A save names the change's client-generated id and the version it was made on. A retried save
returns the first answer; a save made on an older version than the stored one is refused with
the current value (409), so two editors never overwrite each other silently.

The request's access (session or API token, membership, assignment) is one query
(`app.annotations.access`); the save itself is one statement (`_UPSERT_NEW` or
`_UPDATE_SEEN`) that stores the value only if the change id is new, the assignment is open,
the turn exists for the dimension's speaker and the version is the one the change was based
on, and then writes the change log row and starts the assignment. PostgreSQL runs one
statement atomically, so it needs no transaction of its own. When the statement stores
nothing, `_explain` finds out why, checking in the order the rules are stated: replayed
change id, read-only assignment, invalid value, stale version.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from app.annotations.access import SaveTarget
from app.annotations.schemas import ValueChange
from app.codebook.core import DimensionRule, cached_rules, keep_rules
from app.errors import Conflict, Invalid, NotFound
from app.i18n import N_

SESSION = -1
READ_ONLY = ("submitted", "skipped")
OPEN = ("assigned", "in_progress")


class StaleValue(Conflict):
    """The value changed since the editor loaded it; carries the current value."""

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__(N_("This value was changed elsewhere since you loaded it."))
        self.current = current


# --- the rules a value must satisfy -------------------------------------------------------------

_RULES = """
SELECT p.codebook_version, d.key, d.scope, d.speaker, d.kind, d.max_labels, d.required,
       ARRAY(SELECT l.value FROM codebook_labels l WHERE l.dimension_id = d.id) AS vals
FROM projects p JOIN codebook_dimensions d ON d.project_id = p.id
WHERE p.id = $1
ORDER BY d.position, d.id
"""


async def rules_for(conn: Any, target: SaveTarget) -> dict[str, DimensionRule]:
    """The codebook's rules at the project's version, compiled once per version."""
    found = cached_rules((target.database, target.project_id, target.codebook_version))
    if found is not None:
        return found
    rows = await conn.fetch(_RULES, target.project_id)
    # The version read with the rows (one snapshot) keys them, whatever changed since.
    version = rows[0]["codebook_version"] if rows else target.codebook_version
    found = {
        r["key"]: DimensionRule(
            r["key"], r["scope"], r["speaker"], r["kind"], r["max_labels"], r["required"],
            frozenset(r["vals"]),
        )
        for r in rows
    }  # fmt: skip
    keep_rules((target.database, target.project_id, version), found)
    return found


def applies(rule: DimensionRule, speaker: str | None) -> bool:
    if speaker is None:
        return rule.scope == "session"
    return rule.scope == "turn" and rule.speaker in ("any", speaker)


def fits(change: ValueChange, rule: DimensionRule | None) -> bool:
    """Whether the value fits its dimension and the place's kind (the turn's speaker aside)."""
    if rule is None or (change.position == SESSION) != (rule.scope == "session"):
        return False
    try:
        _check_content(change, rule)
    except Invalid:
        return False
    return True


def check(
    change: ValueChange, rule: DimensionRule | None, speaker: str | None, turn_known: bool
) -> None:
    """The value fits the codebook: known dimension, right place, kind, vocabulary, count."""
    if rule is None:
        raise Invalid(N_("Unknown dimension “%(dimension)s”."), dimension=change.dimension)
    if not turn_known:
        raise Invalid(N_("This dialogue has no turn at position %(position)s."),
                      position=change.position)  # fmt: skip
    if not applies(rule, speaker):
        raise Invalid(N_("“%(dimension)s” does not apply here."), dimension=change.dimension)
    _check_content(change, rule)


def _check_content(change: ValueChange, rule: DimensionRule) -> None:
    if rule.kind == "text":
        if change.text is None:
            raise Invalid(N_("“%(dimension)s” takes text."), dimension=change.dimension)
        return
    if change.labels is None:
        raise Invalid(N_("“%(dimension)s” takes labels."), dimension=change.dimension)
    unknown = [v for v in change.labels if v not in rule.values]
    if unknown:
        raise Invalid(N_("Unknown label “%(label)s” for “%(dimension)s”."),
                      label=unknown[0], dimension=change.dimension)  # fmt: skip
    if len(set(change.labels)) != len(change.labels):
        raise Invalid(N_("A label is given twice."))
    limit = rule.max_labels or 1
    if len(change.labels) > limit:
        raise Invalid(N_("“%(dimension)s” takes at most %(max)s labels."),
                      dimension=change.dimension, max=limit)  # fmt: skip


# --- the save: one statement --------------------------------------------------------------------

# $1 assignment, $2 change id, $3 position, $4 dimension, $5 labels, $6 text, $7 user,
# $8 now, $9 the speaker the dimension is for (NULL: any; unused for the session), $10 the
# project's codebook version (new values) or the base version (changed values).
_PLACE = """
WITH place AS (
    SELECT a.dialogue_id FROM assignments a
    WHERE a.id = $1 AND a.status IN ('assigned', 'in_progress')
      AND NOT EXISTS (SELECT FROM annotation_changes c WHERE c.change_id = $2)
      AND ($3 = -1 OR EXISTS (
          SELECT FROM turns t WHERE t.dialogue_id = a.dialogue_id AND t.position = $3
            AND ($9::text IS NULL OR t.speaker = $9)))
)"""
_LOG = """, logged AS (
    INSERT INTO annotation_changes
        (change_id, assignment_id, dialogue_id, position, dimension, labels, text, version,
         user_id)
    SELECT $2, $1, saved.dialogue_id, $3, $4, $5, $6, saved.version, $7 FROM saved
    RETURNING version
), started AS (
    UPDATE assignments SET status = 'in_progress', started_at = $8
    WHERE id = $1 AND status = 'assigned' AND EXISTS (SELECT FROM logged)
)
SELECT version FROM logged
"""
# The first value of its place (base version 0); a concurrent first value makes it store none.
_UPSERT_NEW = (
    _PLACE  # noqa: S608 (constant SQL; values are bound)
    + """, saved AS (
    INSERT INTO annotations
        (assignment_id, dialogue_id, position, dimension, labels, text, version,
         codebook_version, updated_by_id, updated_at)
    SELECT $1, place.dialogue_id, $3, $4, $5, $6, 1, $10, $7, $8 FROM place
    ON CONFLICT (assignment_id, position, dimension) DO NOTHING
    RETURNING dialogue_id, version
)"""
    + _LOG
)
# A change of a stored value, only on the version it was based on (a concurrent change of the
# same value makes this one wait, then match nothing).
_UPDATE_SEEN = (
    _PLACE  # noqa: S608 (constant SQL; values are bound)
    + """, saved AS (
    UPDATE annotations v
    SET labels = $5, text = $6, version = v.version + 1, updated_by_id = $7, updated_at = $8
    FROM place
    WHERE v.assignment_id = $1 AND v.position = $3 AND v.dimension = $4 AND v.version = $10
    RETURNING v.dialogue_id, v.version
)"""
    + _LOG
)


async def save(conn: Any, target: SaveTarget, change: ValueChange, now: datetime) -> dict[str, Any]:
    """Store one change; replayed ids answer as before; stale versions are refused (409)."""
    rules = await rules_for(conn, target)
    rule = rules.get(change.dimension)
    # Anything refused is answered by `_explain`, in the order the rules are stated.
    ready = target.status in OPEN and fits(change, rule)
    for _ in range(2):
        if ready:
            assert rule is not None
            version = await _write(conn, target, change, rule, now)
            if version is not None:
                return _saved(change.change_id, change.position, change.dimension,
                              change.labels, change.text, version)  # fmt: skip
        replay = await _explain(conn, target, change, rules)
        if replay is not None:
            return replay
        ready = True  # nothing refuses it now: what stopped it has gone (a rolled-back race)
        rule = rules.get(change.dimension)
    raise StaleValue(await _current(conn, target, change))


async def _write(
    conn: Any, target: SaveTarget, change: ValueChange, rule: DimensionRule, now: datetime
) -> int | None:
    sql, last = (
        (_UPSERT_NEW, target.codebook_version)
        if change.base_version == 0
        else (_UPDATE_SEEN, change.base_version)
    )
    speaker = None if rule.speaker == "any" else rule.speaker
    args = (target.assignment_id, change.change_id, change.position, change.dimension,
            change.labels, change.text, target.user_id, now, speaker, last)  # fmt: skip
    inside = conn.is_in_transaction()  # only when the caller opened one (tests do)
    if inside:
        await conn.execute("SAVEPOINT save_value")
    try:
        version: int | None = await conn.fetchval(sql, *args)
    except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError):
        # The same change id stored concurrently, or the assignment removed meanwhile.
        if inside:
            await conn.execute("ROLLBACK TO SAVEPOINT save_value")
        return None
    if inside:
        await conn.execute("RELEASE SAVEPOINT save_value")
    return version


async def _explain(
    conn: Any, target: SaveTarget, change: ValueChange, rules: dict[str, DimensionRule]
) -> dict[str, Any] | None:
    """Why a change was not stored: the earlier answer of a replay, or the refusal."""
    earlier = await conn.fetchrow(
        "SELECT assignment_id, position, dimension, labels, text, version"
        " FROM annotation_changes WHERE change_id = $1",
        change.change_id,
    )
    if earlier is not None:
        if earlier["assignment_id"] != target.assignment_id:
            raise Conflict(N_("This change id was already used for another dialogue."))
        return _saved(change.change_id, earlier["position"], earlier["dimension"],
                      earlier["labels"], earlier["text"], earlier["version"])  # fmt: skip
    status = await conn.fetchval(
        "SELECT status FROM assignments WHERE id = $1", target.assignment_id
    )
    if status is None:
        raise NotFound(N_("No such assignment in this project."))
    if status in READ_ONLY:
        raise Conflict(N_("This dialogue is submitted and read-only until a lead reopens it."))
    speaker: str | None = None
    if change.position != SESSION:
        speaker = await conn.fetchval(
            "SELECT speaker FROM turns WHERE dialogue_id = $1 AND position = $2",
            target.dialogue_id,
            change.position,
        )
    check(change, rules.get(change.dimension), speaker,
          change.position == SESSION or speaker is not None)  # fmt: skip
    current = await _current(conn, target, change)
    if current["version"] != change.base_version:
        raise StaleValue(current)
    return None


async def _current(conn: Any, target: SaveTarget, change: ValueChange) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT labels, text, version FROM annotations"
        " WHERE assignment_id = $1 AND position = $2 AND dimension = $3",
        target.assignment_id,
        change.position,
        change.dimension,
    )
    if row is None:
        return {"labels": None, "text": None, "version": 0}
    return {"labels": row["labels"], "text": row["text"], "version": row["version"]}


def _saved(
    change_id: uuid.UUID,
    position: int,
    dimension: str,
    labels: list[str] | None,
    text: str | None,
    version: int,
) -> dict[str, Any]:
    """What a save answers (the shape of `SavedValue`, as JSON)."""
    return {"change_id": str(change_id), "position": position, "dimension": dimension,
            "labels": labels, "text": text, "version": version}  # fmt: skip
