"""Saving one value: the workspace's hot path, one statement on the driver connection.

A save names the change's client-generated id and the version it was made on. A retried save
returns the first answer; a save made on an older version than the stored one is refused with
the current value (409), so two editors never overwrite each other silently.

The save is one statement (`_SAVE`) that stores the value only if the change id is new, the
assignment is open, the turn exists for the dimension's speaker and the version is the one the
change was based on, and then writes the change log row. PostgreSQL runs one statement
atomically, so it needs no transaction of its own. Once the project's codebook rules are known
(`save_as`), the caller's access (session or API token, roles, assignment: the query of
`app.annotations.access`) is checked inside that same statement (`_SAVE_AS`); before, it is its
own query. When the statement stores nothing, the access is checked as on every route, and
`_explain` finds out why, in the order the rules are stated: replayed change id, read-only
assignment, invalid value, stale version. Two rare follow-ups are separate statements: the
first value starts the assignment, and a session's idle clock moves once a minute.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from app.annotations import access
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

# The place of a value that may be written: the assignment (`a`) open, the turn there for the
# dimension's speaker (:speaker NULL: any; the session needs no turn). A change id used before
# needs no look-up: the change log's unique index refuses it, and with it the whole statement
# (a replay of the same assignment's change never gets that far: its base version is gone).
_OPEN_PLACE = """
      a.status IN ('assigned', 'in_progress')
      AND (:position = -1 OR EXISTS (
          SELECT FROM turns t WHERE t.dialogue_id = a.dialogue_id AND t.position = :position
            AND (:speaker::text IS NULL OR t.speaker = :speaker)))"""
# With the caller known (`save`): the assignment by id.
_BY_ID = """
WITH place AS (
    SELECT a.dialogue_id, :user::bigint AS user_id FROM assignments a
    WHERE a.id = :aid AND"""
_PLACE = _BY_ID + _OPEN_PLACE + "\n)"
# With the caller checked in the same statement (`save_as`): the access query of
# `app.annotations.access` as `access`, and the place only for the assignment's own annotator
# holding one of the route's roles, in the project and at the codebook version whose rules
# checked the value.
_CHECKED = """
), place AS (
    SELECT a.dialogue_id, a.user_id FROM access a
    WHERE a.owner_id = a.user_id AND a.roles && :roles::varchar[] AND a.project_id = :project
      AND a.codebook_version = :codebook AND"""
_CHECKED_PLACE = ", access AS (" + access.ACCESS.format(shown="") + _CHECKED + _OPEN_PLACE + "\n)"
# The first value of its place (base version 0); a concurrent first value makes it store none.
_INSERT = """, saved AS (
    INSERT INTO annotations
        (assignment_id, dialogue_id, position, dimension, labels, text, version,
         codebook_version, updated_by_id, updated_at)
    SELECT :aid, place.dialogue_id, :position, :dimension, :labels, :text, 1, :version,
           place.user_id, :now FROM place
    ON CONFLICT (assignment_id, position, dimension) DO NOTHING
    RETURNING dialogue_id, version, updated_by_id
)"""
# A change of a stored value, only on the version it was based on (a concurrent change of the
# same value makes this one wait, then match nothing).
_UPDATE = """, saved AS (
    UPDATE annotations v
    SET labels = :labels, text = :text, version = v.version + 1, updated_by_id = place.user_id,
        updated_at = :now
    FROM place
    WHERE v.assignment_id = :aid AND v.position = :position AND v.dimension = :dimension
      AND v.version = :version
    RETURNING v.dialogue_id, v.version, v.updated_by_id
)"""
_LOG = """, logged AS (
    INSERT INTO annotation_changes
        (change_id, assignment_id, dialogue_id, position, dimension, labels, text, version,
         user_id)
    SELECT :change, :aid, saved.dialogue_id, :position, :dimension, :labels, :text,
           saved.version, saved.updated_by_id FROM saved
    RETURNING version
)
"""
_VALUE = ("aid", "change", "position", "dimension", "labels", "text", "speaker", "version", "now")
# :version is the project's codebook version for a first value, the base version for a change.
_SAVE = {
    first: access.numbered(
        _PLACE  # noqa: S608 (constant SQL; values are bound)
        + (_INSERT if first else _UPDATE)
        + _LOG
        + "SELECT version FROM logged",
        ("user", *_VALUE),
    )
    for first in (True, False)
}
# The one-statement save binds the access query's placeholders, then these.
_AS_NAMES = {
    kind: names + tuple(n for n in ("roles", "project", "codebook", *_VALUE) if n not in names)
    for kind, names in access.NAMES.items()
}
# `_SAVE` with the caller's access checked in it: the access row comes back, with the stored
# version in `saved` (NULL when nothing was stored).
_SAVE_AS = {
    (kind, first): access.numbered(
        access.WHO[kind]  # noqa: S608 (constant SQL; values are bound)
        + _CHECKED_PLACE
        + (_INSERT if first else _UPDATE)
        + _LOG
        + "SELECT a.*, (SELECT version FROM logged) AS saved FROM access a",
        _AS_NAMES[kind],
    )
    for kind in access.WHO
    for first in (True, False)
}
# The project and codebook version each project slug had when last seen (per database): the
# rules of that version check a value before the one-statement save, which stores nothing
# when the project has moved on since.
_SEEN: dict[tuple[str, str], tuple[int, int]] = {}


async def save_as(
    conn: Any, who: access.Caller, change: ValueChange, now: datetime
) -> dict[str, Any]:
    """`save` for a caller not yet checked: in one statement with the access check when the
    project's rules are known and the value fits them; otherwise, or when that statement
    stores nothing, the access query and then `save`, which answer exactly as before."""
    seen = _SEEN.get((who.database, who.slug))
    rules = cached_rules((who.database, *seen)) if seen else None
    rule = rules.get(change.dimension) if rules else None
    if seen is not None and rule is not None and fits(change, rule):
        first = change.base_version == 0
        args = who.args() | _value_args(change, rule, now, seen[1] if first else None)
        args |= {"roles": [r.value for r in who.roles], "project": seen[0], "codebook": seen[1]}
        names = _AS_NAMES[who.kind]
        row = await _attempt(conn, _SAVE_AS[who.kind, first], [args[n] for n in names], True)
        if row is not _FAILED:
            if row is not None and row["saved"] is not None:
                if row["status"] == "assigned":
                    await _start(conn, who.assignment_id, now)
                await access.touch(conn, who, row)
                return _saved(change.change_id, change.position, change.dimension,
                              change.labels, change.text, row["saved"])  # fmt: skip
            await access.touch(conn, who, row)
            target = access.check_writable(row, who)  # refusals of access answer first
            _remember(who, target)
            return await save(conn, target, change, now)
    target = await access.writable(conn, who)
    _remember(who, target)
    return await save(conn, target, change, now)


def remember(database: str, slug: str, project_id: int, codebook_version: int) -> None:
    """The project a slug names, at the codebook version last seen."""
    if len(_SEEN) > 4096:
        _SEEN.clear()
    _SEEN[database, slug] = (project_id, codebook_version)


def _remember(who: access.Caller, target: SaveTarget) -> None:
    remember(who.database, who.slug, target.project_id, target.codebook_version)


async def save(conn: Any, target: SaveTarget, change: ValueChange, now: datetime) -> dict[str, Any]:
    """Store one change; replayed ids answer as before; stale versions are refused (409)."""
    rules = await rules_for(conn, target)
    rule = rules.get(change.dimension)
    # Anything refused is answered by `_explain`, in the order the rules are stated.
    ready = target.status in OPEN and fits(change, rule)
    for _ in range(2):
        answer = None
        if ready:
            assert rule is not None
            version = await _write(conn, target, change, rule, now)
            if version is not None:
                answer = _saved(change.change_id, change.position, change.dimension,
                                change.labels, change.text, version)  # fmt: skip
        # a replay also starts an assignment whose start was cut off after its first value
        answer = answer or await _explain(conn, target, change, rules)
        if answer is not None:
            if target.status == "assigned":
                await _start(conn, target.assignment_id, now)
            return answer
        ready = True  # nothing refuses it now: what stopped it has gone (a rolled-back race)
        rule = rules.get(change.dimension)
    raise StaleValue(await _current(conn, target, change))


async def _start(conn: Any, assignment_id: int, now: datetime) -> None:
    """An assignment's first stored value starts it (once; a separate statement, so the save
    statement itself updates no assignment)."""
    await conn.execute(
        "UPDATE assignments SET status = 'in_progress', started_at = $2"
        " WHERE id = $1 AND status = 'assigned'",
        assignment_id,
        now,
    )


def _value_args(
    change: ValueChange, rule: DimensionRule, now: datetime, codebook: int | None
) -> dict[str, Any]:
    """The change's placeholders; `codebook`: the version a first value is stored at."""
    return {"change": change.change_id, "position": change.position,
            "dimension": change.dimension, "labels": change.labels, "text": change.text,
            "speaker": None if rule.speaker == "any" else rule.speaker, "now": now,
            "version": change.base_version if codebook is None else codebook}  # fmt: skip


async def _write(
    conn: Any, target: SaveTarget, change: ValueChange, rule: DimensionRule, now: datetime
) -> int | None:
    first = change.base_version == 0
    args = _value_args(change, rule, now, target.codebook_version if first else None)
    args |= {"aid": target.assignment_id, "user": target.user_id}
    version = await _attempt(conn, _SAVE[first], [args[n] for n in ("user", *_VALUE)], False)
    return None if version is _FAILED else version


_FAILED = object()  # the statement broke a constraint: a change id used before (the log's unique
# index), or the assignment removed meanwhile
_CONSTRAINTS: tuple[type[Exception], ...] = (
    asyncpg.UniqueViolationError,
    asyncpg.ForeignKeyViolationError,
)


async def _attempt(conn: Any, sql: str, args: list[Any], row: bool) -> Any:
    """One save statement (its record if `row`, else its value), or `_FAILED`.

    With `row` (the statement that also checks the caller), a value the driver or server
    refuses (`DataError`) fails too, so the caller is checked on their own before anything is
    said about the value; the schema is meant to refuse such values first."""
    inside = conn.is_in_transaction()  # only when the caller opened one (tests do)
    if inside:
        await conn.execute("SAVEPOINT save_value")
    failing = _CONSTRAINTS + ((asyncpg.DataError,) if row else ())
    try:
        found = await (conn.fetchrow(sql, *args) if row else conn.fetchval(sql, *args))
    except failing:
        if inside:
            await conn.execute("ROLLBACK TO SAVEPOINT save_value")
        return _FAILED
    if inside:
        await conn.execute("RELEASE SAVEPOINT save_value")
    return found


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
