"""Who is asking, and may they read or write this assignment: one query.

The caller's session (or API token), their roles in the project and the assignment are read
together, then checked in the order the workspace's dependencies state them: 401 without a
live session or token; 404 for a non-member (or no such project), 403 for a member without
one of the route's roles; 404 for an assignment not in the project, or another person's to
someone who is neither lead nor reviewer. Only its own annotator writes (403 for the others).
The session is checked against the database on every request, as `load_viewer` does; its idle
clock (a token's last use) moves once a minute, by a statement of its own (`touch`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.auth.service import TOUCH_EVERY
from app.errors import Forbidden, NotAuthenticated, NotFound
from app.i18n import N_
from app.models import Role
from app.security import token_digest

INT64 = 2**63 - 1


def numbered(sql: str, names: Sequence[str]) -> str:
    """`sql` with its `:name` placeholders as the driver's `$n`, numbered in `names`' order."""
    index = {name: f"${i}" for i, name in enumerate(names, start=1)}
    return re.sub(r"(?<![:\w]):([a-z_]+)\b", lambda m: index[m.group(1)], sql)


# A live session (inside both timeouts) of an active user, and when it was last seen.
_SESSION_WHO = """
WITH who AS (
    SELECT s.user_id, s.last_seen_at AS seen FROM user_sessions s JOIN users u ON u.id = s.user_id
    WHERE s.id = :digest AND s.expires_at > :now AND s.last_seen_at > :idle AND u.is_active
)"""
# A live API token of an active user, and when it was last used.
_TOKEN_WHO = """
WITH who AS (
    SELECT t.user_id, t.last_used_at AS seen
    FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = :digest AND t.revoked_at IS NULL AND u.is_active
)"""  # noqa: S105 (SQL, not a password)
WHO = {"session": _SESSION_WHO, "token": _TOKEN_WHO}
# The placeholders each kind of caller binds, in order (`Caller.args`).
NAMES = {
    "session": ("digest", "now", "slug", "aid", "idle"),
    "token": ("digest", "slug", "aid"),
}
# The idle clock of a session, and the last use of a token, move once a minute (`touch`).
_TOUCH = {
    "session": "UPDATE user_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $3",
    "token": "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1"
    " AND (last_used_at IS NULL OR last_used_at < $3)",
}

# What the checks need: the caller, their roles in the project, the assignment.
ACCESS = """
SELECT who.user_id, who.seen, p.id AS project_id, p.codebook_version,
       ARRAY(SELECT m.role FROM project_memberships m
             WHERE m.project_id = p.id AND m.user_id = who.user_id) AS roles,
       a.user_id AS owner_id, a.dialogue_id, a.status{shown}
FROM who
LEFT JOIN projects p ON p.slug = :slug
LEFT JOIN assignments a ON a.id = :aid AND a.project_id = p.id"""
# What a page or the API shows of the project and the assignment besides (not needed to save).
_SHOWN = """, p.slug, p.name, p.description, p.overlap, p.suggestion_source, a.seconds_spent,
       a.codebook_version AS assignment_codebook_version"""
_STATEMENTS = {
    (kind, shown): numbered(WHO[kind] + ACCESS.format(shown=_SHOWN if shown else ""), NAMES[kind])
    for kind in WHO
    for shown in (False, True)
}


@dataclass(frozen=True)
class Caller:
    """Who asks for which assignment, as the request says (nothing checked against the
    database yet): a session cookie's or an API token's secret, the project, the assignment."""

    database: str  # which database (process-wide caches key on it)
    kind: str  # "session" or "token"
    secret: str
    slug: str
    assignment_id: int
    now: datetime
    idle: timedelta
    roles: frozenset[Role]

    def args(self) -> dict[str, Any]:
        """The values of the access query's placeholders (`NAMES[kind]`)."""
        aid = self.assignment_id if 0 < self.assignment_id <= INT64 else 0  # 0: no such row
        found = {"digest": token_digest(self.secret), "now": self.now, "slug": self.slug,
                 "aid": aid}  # fmt: skip
        if self.kind == "session":
            found["idle"] = self.now - self.idle
        return found


def caller(
    database: str,
    credential: tuple[str, str] | None,
    slug: str,
    assignment_id: int,
    now: datetime,
    idle: timedelta,
    roles: frozenset[Role],
) -> Caller:
    """The caller of a request; 401 without a session cookie or API token to check."""
    if credential is None:
        raise NotAuthenticated("Please log in.")
    kind, secret = credential
    return Caller(database, kind, secret, slug, assignment_id, now, idle, roles)


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


async def readable(conn: Any, who: Caller, shown: bool = True) -> Found:
    """The assignment, for its annotator and the project's leads and reviewers (`shown`: with
    what a page shows of the project and the assignment)."""
    return check_readable(await _access_row(conn, who, shown), who)


async def _access_row(conn: Any, who: Caller, shown: bool) -> Any:
    """The access query's record for `who` (None: no live session or token), touched."""
    args = who.args()
    row = await conn.fetchrow(_STATEMENTS[who.kind, shown], *(args[n] for n in NAMES[who.kind]))
    await touch(conn, who, row)
    return row


async def touch(conn: Any, who: Caller, row: Any) -> None:
    """Move the idle clock of the caller's session (or the last use of their token) when it
    is over a minute old: a separate statement, so the access query itself writes nothing."""
    if row is not None and (row["seen"] is None or row["seen"] < who.now - TOUCH_EVERY):
        digest, since = token_digest(who.secret), who.now - TOUCH_EVERY
        await conn.execute(_TOUCH[who.kind], digest, who.now, since)


def check_readable(row: Any, who: Caller) -> Found:
    """The access query's answer for `who`, checked in the order the module states."""
    if row is None:
        if who.kind == "token":
            raise NotAuthenticated("Invalid or revoked API token.")
        raise NotAuthenticated("Please log in.")
    held = frozenset(Role(r) for r in row["roles"])
    if row["project_id"] is None or not held:
        raise NotFound("No such project.")
    if not who.roles & held:
        raise Forbidden("Your role in this project does not allow this.")
    if row["owner_id"] is None:
        raise NotFound(N_("No such assignment in this project."))
    owner = row["owner_id"] == row["user_id"]
    if not owner and not held & {Role.lead, Role.reviewer}:
        raise NotFound(N_("No such assignment in this project."))
    return Found(row, held, owner)


async def writable(conn: Any, who: Caller) -> SaveTarget:
    """The assignment, for its own annotator only (leads and reviewers get 403)."""
    return check_writable(await _access_row(conn, who, False), who)


def check_writable(row: Any, who: Caller) -> SaveTarget:
    """`check_readable`, then only the assignment's own annotator."""
    found = check_readable(row, who)
    if not found.is_owner:
        raise Forbidden(N_("Only the annotator of this dialogue can change it."))
    row = found.row
    return SaveTarget(
        who.database, row["user_id"], row["project_id"], row["codebook_version"],
        who.assignment_id, row["dialogue_id"], row["status"],
    )  # fmt: skip
