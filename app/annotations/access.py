"""Who is asking, and may they read or write this assignment: one query.

The caller's session (or API token), their roles in the project and the assignment are read
together, then checked in the order the workspace's dependencies state them: 401 without a
live session or token; 404 for a non-member (or no such project), 403 for a member without
one of the route's roles; 404 for an assignment not in the project, or another person's to
someone who is neither lead nor reviewer. Only its own annotator writes (403 for the others).
The session is checked against the database on every request, as `load_viewer` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.auth.service import TOUCH_EVERY
from app.errors import Forbidden, NotAuthenticated, NotFound
from app.i18n import N_
from app.models import Role
from app.security import token_digest

INT64 = 2**63 - 1

_SELECT = """
SELECT who.user_id, p.id AS project_id, p.codebook_version,
       ARRAY(SELECT m.role FROM project_memberships m
             WHERE m.project_id = p.id AND m.user_id = who.user_id) AS roles,
       a.user_id AS owner_id, a.dialogue_id, a.status"""
# What a page or the API shows of the project and the assignment besides (not needed to save).
_SHOWN = """, p.slug, p.name, p.description, p.overlap, p.suggestion_source, a.seconds_spent,
       a.codebook_version AS assignment_codebook_version"""
_FROM = """
FROM who
LEFT JOIN projects p ON p.slug = $3
LEFT JOIN assignments a ON a.id = $4 AND a.project_id = p.id
"""


def _statements(who: str) -> dict[bool, str]:
    """The access query for a caller found by `who`: to save (False), or to show (True)."""
    return {shown: who + _SELECT + (_SHOWN if shown else "") + _FROM for shown in (False, True)}


# A live session (inside both timeouts) of an active user; its idle clock moves once a minute.
_SESSION_WHO = """
WITH who AS (
    SELECT s.user_id FROM user_sessions s JOIN users u ON u.id = s.user_id
    WHERE s.id = $1 AND s.expires_at > $2 AND s.last_seen_at > $5 AND u.is_active
), touched AS (
    UPDATE user_sessions SET last_seen_at = $2
    WHERE id = $1 AND last_seen_at < $6 AND EXISTS (SELECT FROM who)
)"""
_BY_SESSION = _statements(_SESSION_WHO)
# A live API token of an active user; its last use moves once a minute.
_BEARER_WHO = """
WITH who AS (
    SELECT t.id, t.user_id, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.is_active
), touched AS (
    UPDATE api_tokens SET last_used_at = $2
    WHERE id IN (SELECT id FROM who WHERE last_used_at IS NULL OR last_used_at < $5)
)"""
_BY_TOKEN = _statements(_BEARER_WHO)


@dataclass(frozen=True)
class Found:
    """What the query found for a caller who may read the assignment."""

    row: Any  # the query's record
    roles: frozenset[Role]
    is_owner: bool


@dataclass(frozen=True)
class SaveTarget:
    """An assignment its own annotator may write, as one query found it."""

    database: str  # which database (process-wide caches key on it)
    user_id: int
    project_id: int
    codebook_version: int
    assignment_id: int
    dialogue_id: int
    status: str


async def readable(
    conn: Any,
    credential: tuple[str, str] | None,
    slug: str,
    assignment_id: int,
    now: datetime,
    idle: timedelta,
    roles: frozenset[Role],
    shown: bool = True,
) -> Found:
    """The assignment, for its annotator and the project's leads and reviewers (`shown`: with
    what a page shows of the project and the assignment)."""
    if credential is None:
        raise NotAuthenticated("Please log in.")
    kind, secret = credential
    args: list[Any] = [token_digest(secret), now, slug, assignment_id]
    if not 0 < assignment_id <= INT64:
        args[3] = 0  # no such row (and no overflow)
    if kind == "token":
        row = await conn.fetchrow(_BY_TOKEN[shown], *args, now - TOUCH_EVERY)
    else:
        row = await conn.fetchrow(_BY_SESSION[shown], *args, now - idle, now - TOUCH_EVERY)
    if row is None:
        if kind == "token":
            raise NotAuthenticated("Invalid or revoked API token.")
        raise NotAuthenticated("Please log in.")
    held = frozenset(Role(r) for r in row["roles"])
    if row["project_id"] is None or not held:
        raise NotFound("No such project.")
    if not roles & held:
        raise Forbidden("Your role in this project does not allow this.")
    if row["owner_id"] is None:
        raise NotFound(N_("No such assignment in this project."))
    owner = row["owner_id"] == row["user_id"]
    if not owner and not held & {Role.lead, Role.reviewer}:
        raise NotFound(N_("No such assignment in this project."))
    return Found(row, held, owner)


async def writable(
    conn: Any,
    database: str,
    credential: tuple[str, str] | None,
    slug: str,
    assignment_id: int,
    now: datetime,
    idle: timedelta,
    roles: frozenset[Role],
) -> SaveTarget:
    """The assignment, for its own annotator only (leads and reviewers get 403)."""
    found = await readable(conn, credential, slug, assignment_id, now, idle, roles, shown=False)
    if not found.is_owner:
        raise Forbidden(N_("Only the annotator of this dialogue can change it."))
    row = found.row
    return SaveTarget(
        database, row["user_id"], row["project_id"], row["codebook_version"], assignment_id,
        row["dialogue_id"], row["status"],
    )  # fmt: skip
