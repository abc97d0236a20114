"""The save's fast path (`app.annotations.saving`): everything its statements decide.

Each test goes through the HTTP route, and runs twice: with the project unknown to the save
(the access query, then the save statement) and with its codebook rules known (the access
checked inside the one save statement). Each checks that a refused save changed nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import create_api_token, revoke_api_token
from app.annotations import access, saving
from app.annotations.deps import WORKSPACE_ROLES
from app.annotations.schemas import ValueChange
from app.auth.service import now
from app.codebook.core import rules
from app.db import database_key, raw_connection
from app.deps import SESSION_COOKIE
from app.models import (
    Annotation,
    AnnotationChange,
    Assignment,
    Project,
    Role,
    User,
    UserSession,
)
from tests.annotations.helpers import edit_dimension
from tests.annotations.test_routes import Setup, _api, _take
from tests.annotations.test_routes import setup as setup  # the fixture
from tests.factories import add_member, login, make_project, make_user


@pytest.fixture(params=["unknown", "known"], autouse=True)
async def project_known(request: pytest.FixtureRequest, setup: Setup, db: AsyncSession) -> bool:
    """ "known": the save has seen the project and holds its codebook's rules."""
    if request.param == "unknown":
        return False
    project = setup.project
    await rules(db, project)  # compiled and kept for this database, project and version
    key = database_key(await db.connection())
    saving.remember(key, project.slug, project.id, project.codebook_version)
    return True


class Counting:
    """The asyncpg connection, counting the statements sent through it."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.statements = conn, 0

    def is_in_transaction(self) -> bool:
        return bool(self.conn.is_in_transaction())

    async def fetchrow(self, *args: Any) -> Any:
        self.statements += 1
        return await self.conn.fetchrow(*args)

    async def fetchval(self, *args: Any) -> Any:
        self.statements += 1
        return await self.conn.fetchval(*args)

    async def fetch(self, *args: Any) -> Any:
        self.statements += 1
        return await self.conn.fetch(*args)

    async def execute(self, sql: str, *args: Any) -> Any:
        if sql.split()[0] not in ("SAVEPOINT", "RELEASE", "ROLLBACK"):  # the tests' savepoints
            self.statements += 1
        return await self.conn.execute(sql, *args)


async def test_a_save_of_a_known_project_is_one_statement(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession, project_known: bool
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    assert isinstance(aid, int)
    bind = await db.connection()
    secret = client.cookies.get(SESSION_COOKIE)
    assert secret is not None
    who = access.caller(database_key(bind), ("session", secret), setup.project.slug, aid, now(),
                        timedelta(hours=1), frozenset(WORKSPACE_ROLES))  # fmt: skip
    async with raw_connection(bind) as conn:
        counted = Counting(conn)
        first = await saving.save_as(counted, who, ValueChange(**_change()), now())
        # Unknown: the access query, the codebook's rules, the save; known: the save alone;
        # and the first value starts the assignment.
        assert counted.statements == (2 if project_known else 4)
        counted.statements = 0
        again = ValueChange(**_change(1, labels=["Fear"]))
        assert (await saving.save_as(counted, who, again, now()))["version"] == 2
        assert counted.statements == 1  # now known either way
    assert first["version"] == 1
    assert await _counts(db) == (2, 1)


def _change(base: int = 0, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "change_id": str(uuid.uuid4()),
        "position": 0,
        "dimension": "emotion",
        "labels": ["Anxiety"],
        "base_version": base,
    }
    body.update(kw)
    return body


async def _counts(db: AsyncSession) -> tuple[int, int]:
    changes = await db.scalar(select(func.count()).select_from(AnnotationChange))
    values = await db.scalar(select(func.count()).select_from(Annotation))
    return int(changes or 0), int(values or 0)


async def _save(
    client: httpx.AsyncClient, setup: Setup, aid: object, body: dict[str, Any], **headers: str
) -> httpx.Response:
    sent = {"X-CSRF-Token": setup.token, **headers}
    return await client.post(_api(setup, f"/{aid}/values"), json=body, headers=sent)


async def test_first_save_starts_the_assignment_and_logs_the_change(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    ws = await _take(client, setup)
    aid = ws["assignment"]["id"]  # type: ignore[index]
    assert ws["assignment"]["status"] == "assigned"  # type: ignore[index]
    body = _change(position=-1, dimension="topic", labels=["Job Crisis"])
    saved = await _save(client, setup, aid, body)
    assert saved.status_code == 200
    assert saved.json() == {"change_id": body["change_id"], "position": -1, "dimension": "topic",
                            "labels": ["Job Crisis"], "text": None, "version": 1}  # fmt: skip
    row = (await db.execute(select(Assignment).where(Assignment.id == aid))).scalar_one()
    await db.refresh(row)
    assert row.status == "in_progress"
    assert row.started_at is not None
    logged = (await db.execute(select(AnnotationChange))).scalar_one()
    assert (logged.user_id, logged.assignment_id, logged.version) == (setup.annotator.id, aid, 1)
    value = (await db.execute(select(Annotation))).scalar_one()
    assert value.codebook_version == setup.project.codebook_version
    assert value.updated_by_id == setup.annotator.id
    started = row.started_at
    text = await _save(client, setup, aid, _change(dimension="observation", labels=None, text="x"))
    assert text.status_code == 200
    assert text.json()["text"] == "x"
    await db.refresh(row)
    assert (row.status, row.started_at) == ("in_progress", started)  # started once


async def test_a_changed_value_moves_its_version_and_keeps_its_history(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    for base, labels in ((0, ["Fear"]), (1, ["Anger"]), (2, ["Sadness"])):
        answer = await _save(client, setup, aid, _change(base, labels=labels))
        assert answer.json()["version"] == base + 1
    assert await _counts(db) == (3, 1)
    value = (await db.execute(select(Annotation))).scalar_one()
    await db.refresh(value)
    assert (value.labels, value.version) == (["Sadness"], 3)


async def test_stale_and_early_versions_are_refused_with_the_current_value(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    ahead = await _save(client, setup, aid, _change(base=3))  # no value yet, made on version 3
    assert ahead.status_code == 409
    assert ahead.json()["current"] == {"labels": None, "text": None, "version": 0}
    assert (await _save(client, setup, aid, _change(0, labels=["Fear"]))).status_code == 200
    for base in (0, 2):
        stale = await _save(client, setup, aid, _change(base, labels=["Anger"]))
        assert stale.status_code == 409
        assert stale.json()["current"] == {"labels": ["Fear"], "text": None, "version": 1}
    assert await _counts(db) == (1, 1)


async def test_a_replayed_change_answers_as_before_even_after_later_changes(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    first = _change(labels=["Fear"])
    answered = (await _save(client, setup, aid, first)).json()
    assert (await _save(client, setup, aid, _change(1, labels=["Anger"]))).status_code == 200
    again = await _save(client, setup, aid, first)
    assert again.status_code == 200
    assert again.json() == answered
    await client.post(_api(setup, f"/{aid}/submit"), headers={"X-CSRF-Token": setup.token})
    # A replay of a stored change is answered even once the dialogue is read-only.
    assert (await _save(client, setup, aid, first)).json() == answered
    assert await _counts(db) == (2, 1)


async def test_a_change_id_of_another_assignment_is_refused(
    app: object, client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    used = _change()
    assert (await _save(client, setup, aid, used)).status_code == 200
    other = await make_user(db)
    await add_member(db, setup.project, other, Role.annotator)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        token = await login(c, other)
        theirs = (await c.post(_api(setup, "/next"), headers={"X-CSRF-Token": token})).json()
        refused = await c.post(
            _api(setup, f"/{theirs['assignment']['id']}/values"),
            json={**used, "labels": ["Anger"]},
            headers={"X-CSRF-Token": token},
        )
    assert refused.status_code == 409
    assert "already used for another dialogue" in refused.json()["detail"]
    assert await _counts(db) == (1, 1)


async def test_a_submitted_assignment_takes_no_new_value(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    assert (await _save(client, setup, aid, _change())).status_code == 200
    headers = {"X-CSRF-Token": setup.token}
    assert (await client.post(_api(setup, f"/{aid}/submit"), headers=headers)).status_code == 200
    for body in (_change(1, labels=["Fear"]), _change(0, position=2), _change(1, labels=["Bliss"])):
        refused = await _save(client, setup, aid, body)
        assert refused.status_code == 409
        assert "read-only" in refused.json()["detail"]
    assert await _counts(db) == (1, 1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dimension": "mood"}, "Unknown dimension"),
        ({"labels": ["Bliss"]}, "Unknown label “Bliss”"),
        ({"dimension": "strategy", "labels": ["Question"]}, "does not apply here"),
        ({"position": 1}, "does not apply here"),  # emotion is for the client's turns
        ({"position": 99}, "no turn at position 99"),
        ({"position": 99, "labels": ["Bliss"]}, "no turn at position 99"),
        ({"position": 0, "dimension": "topic", "labels": ["Job Crisis"]}, "does not apply here"),
        ({"position": -1}, "does not apply here"),
        ({"labels": None, "text": "x"}, "takes labels"),
        ({"labels": ["Fear", "Fear"]}, "given twice"),
    ],
)
async def test_invalid_values_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    setup: Setup,
    db: AsyncSession,
    overrides: dict[str, Any],
    message: str,
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    refused = await _save(client, setup, aid, _change(**overrides))
    assert refused.status_code == 422
    assert message in refused.json()["detail"]
    assert await _counts(db) == (0, 0)
    status = await db.scalar(select(Assignment.status).where(Assignment.id == aid))
    assert status == "assigned"


@pytest.mark.parametrize(
    ("body", "where", "kind"),
    [
        (b'{"change_id": ', ("body",), "json_invalid"),
        (b"[1, 2]", ("body",), "model_type"),
        (
            b'{"position": 0, "dimension": "emotion", "labels": ["Fear"], "base_version": 0}',
            ("body", "change_id"),
            "missing",
        ),
        (
            b'{"change_id": "not-a-uuid", "position": 0, "dimension": "emotion", "labels": [],'
            b' "base_version": 0}',
            ("body", "change_id"),
            "uuid_parsing",
        ),
        (
            b'{"change_id": "%s", "position": "zero", "dimension": "emotion", "labels": [],'
            b' "base_version": 0}',
            ("body", "position"),
            "int_parsing",
        ),
        (
            b'{"change_id": "%s", "position": 0, "dimension": "emotion", "labels": ["Fear"],'
            b' "text": "x", "base_version": 0}',
            ("body",),
            "value_error",
        ),
    ],
)
async def test_malformed_bodies_are_refused_after_the_access_check(
    app: object,
    client: httpx.AsyncClient,
    setup: Setup,
    db: AsyncSession,
    body: bytes,
    where: tuple[str, ...],
    kind: str,
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    if b"%s" in body:
        body = body % str(uuid.uuid4()).encode()
    headers = {"X-CSRF-Token": setup.token, "Content-Type": "application/json"}
    answer = await client.post(_api(setup, f"/{aid}/values"), content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    assert (tuple(error["loc"]), error["type"]) == (where, kind)
    # Someone who may not write this assignment learns that first, whatever the body.
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        token = await login(other, await make_user(db))
        url = _api(setup, f"/{aid}/values")
        refused = await other.post(url, content=body, headers=headers | {"X-CSRF-Token": token})
    assert (refused.status_code, refused.json()["detail"]) == (404, "No such project.")
    assert await _counts(db) == (0, 0)


@pytest.mark.parametrize(
    "overrides",
    [
        {"position": 2**31},
        {"base_version": 2**31},
        {"labels": None, "text": "a\u0000b", "dimension": "observation"},
        {"labels": ["Fear\u0000"]},
    ],
    ids=["position", "version", "nul-text", "nul-label"],
)
async def test_values_the_database_cannot_hold_are_refused_after_the_access_check(
    app: object, client: httpx.AsyncClient, setup: Setup, db: AsyncSession,
    overrides: dict[str, Any],
) -> None:  # fmt: skip
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    assert (await _save(client, setup, aid, _change())).status_code == 200  # project now known
    body = _change(1, **overrides)
    mine = await _save(client, setup, aid, body)
    assert mine.status_code == 422, mine.text
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        token = await login(other, await make_user(db))
        url = _api(setup, f"/{aid}/values")
        outsider = await other.post(url, json=body, headers={"X-CSRF-Token": token})
        stranger = await other.post(url, json=body, headers={"Authorization": "Bearer psy_no"})
    assert (outsider.status_code, outsider.json()["detail"]) == (404, "No such project.")
    assert stranger.status_code == 401
    assert await _counts(db) == (1, 1)


async def test_a_save_must_be_json(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    url = _api(setup, f"/{aid}/values")
    raw = json.dumps(_change())
    headers = {"X-CSRF-Token": setup.token, "Content-Type": "text/plain"}
    plain = await client.post(url, content=raw, headers=headers)
    assert plain.status_code == 422
    assert plain.json()["detail"][0]["type"] == "content_type"
    # a form carrying the CSRF token in its field: read once, answered, never a 500
    form = await client.post(url, data={"csrf_token": setup.token, "position": "0"})
    assert form.status_code == 422
    assert form.json()["detail"][0]["type"] == "content_type"
    assert await _counts(db) == (0, 0)


async def test_a_replay_starts_an_assignment_whose_start_was_cut_off(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    change = _change()
    assert (await _save(client, setup, aid, change)).status_code == 200
    # as if the connection broke after the save statement, before the start
    await db.execute(update(Assignment).where(Assignment.id == aid).values(status="assigned"))
    again = await _save(client, setup, aid, change)
    assert (again.status_code, again.json()["version"]) == (200, 1)
    status = await db.scalar(select(Assignment.status).where(Assignment.id == aid))
    assert status == "in_progress"
    assert await _counts(db) == (1, 1)


async def test_who_may_save(
    app: object, client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    cases: list[tuple[User, int, str]] = []
    annotator = await make_user(db)
    await add_member(db, setup.project, annotator, Role.annotator)
    cases.append((annotator, 404, "No such assignment in this project."))
    reviewer = await make_user(db)
    await add_member(db, setup.project, reviewer, Role.reviewer)
    cases.append((reviewer, 403, "Only the annotator of this dialogue can change it."))
    cases.append((setup.lead, 403, "Only the annotator of this dialogue can change it."))
    exporter = await make_user(db)
    await add_member(db, setup.project, exporter, Role.exporter)
    cases.append((exporter, 403, "Your role in this project does not allow this."))
    cases.append((await make_user(db), 404, "No such project."))
    for person, status, detail in cases:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            token = await login(c, person)
            answer = await c.post(
                _api(setup, f"/{aid}/values"), json=_change(), headers={"X-CSRF-Token": token}
            )
        assert (answer.status_code, answer.json()["detail"]) == (status, detail), person.email
    assert await _counts(db) == (0, 0)


async def test_an_assignment_of_another_project_is_not_found(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    elsewhere = await make_project(db, lead=setup.lead)
    await add_member(db, elsewhere, setup.annotator, Role.annotator)
    url = f"/api/v1/projects/{elsewhere.slug}/assignments/{aid}/values"
    for path in (url, _api(setup, "/0/values"), _api(setup, f"/{2**70}/values")):
        answer = await client.post(path, json=_change(), headers={"X-CSRF-Token": setup.token})
        assert answer.status_code == 404, path
        assert answer.json()["detail"] == "No such assignment in this project."
    assert await _counts(db) == (0, 0)


async def test_a_revoked_or_idle_session_saves_nothing_on_the_next_request(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    assert (await _save(client, setup, aid, _change())).status_code == 200
    mine = UserSession.user_id == setup.annotator.id
    await db.execute(update(UserSession).where(mine).values(last_seen_at=now() - timedelta(days=1)))
    idle = await _save(client, setup, aid, _change(1, labels=["Fear"]))
    assert (idle.status_code, idle.json()) == (401, {"detail": "Please log in."})
    await db.execute(update(UserSession).where(mine).values(last_seen_at=now()))
    assert (await _save(client, setup, aid, _change(1, labels=["Fear"]))).status_code == 200
    await db.execute(update(User).where(User.id == setup.annotator.id).values(is_active=False))
    disabled = await _save(client, setup, aid, _change(2, labels=["Anger"]))
    assert disabled.status_code == 401
    await db.execute(update(User).where(User.id == setup.annotator.id).values(is_active=True))
    await client.post("/logout", data={"csrf_token": setup.token})
    gone = await _save(client, setup, aid, _change(2, labels=["Anger"]))
    assert gone.status_code in (401, 403)  # logged out: no session, so no valid CSRF token
    assert await _counts(db) == (2, 1)


async def test_the_session_idle_clock_moves_once_a_minute(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    mine = UserSession.user_id == setup.annotator.id
    old = now() - timedelta(minutes=5)
    await db.execute(update(UserSession).where(mine).values(last_seen_at=old))
    assert (await _save(client, setup, aid, _change())).status_code == 200
    seen = await db.scalar(select(UserSession.last_seen_at).where(mine))
    assert seen is not None
    assert seen > now() - timedelta(seconds=30)
    recent = now() - timedelta(seconds=20)
    await db.execute(update(UserSession).where(mine).values(last_seen_at=recent))
    assert (await _save(client, setup, aid, _change(1, labels=["Fear"]))).status_code == 200
    assert await db.scalar(select(UserSession.last_seen_at).where(mine)) == recent


async def test_api_tokens_save_without_csrf_and_stop_when_revoked(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    token, raw = await create_api_token(db, setup.annotator, "script")
    client.cookies.clear()
    auth = {"Authorization": f"Bearer {raw}"}
    url = _api(setup, f"/{aid}/values")
    assert (await client.post(url, json=_change(), headers=auth)).status_code == 200
    await db.refresh(token)
    assert token.last_used_at is not None
    wrong = await client.post(url, json=_change(1), headers={"Authorization": "Bearer psy_x"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid or revoked API token."})
    await revoke_api_token(db, setup.annotator, token.id)
    await db.flush()
    revoked = await client.post(url, json=_change(1), headers=auth)
    assert revoked.status_code == 401
    no_csrf = await client.post(url, json=_change(1))  # neither token nor session
    assert no_csrf.status_code == 403
    assert await _counts(db) == (1, 1)


async def test_rules_follow_the_codebook_version(
    client: httpx.AsyncClient, setup: Setup, db: AsyncSession
) -> None:
    aid = (await _take(client, setup))["assignment"]["id"]  # type: ignore[index]
    topic = _change(position=-1, dimension="topic", labels=["Job Crisis"])
    assert (await _save(client, setup, aid, topic)).status_code == 200  # rules now cached
    project = await db.get(Project, setup.project.id)
    assert project is not None
    two = _change(labels=["Fear", "Anger"])
    await edit_dimension(db, project, setup.lead.id, "emotion", max_labels=1)
    refused = await _save(client, setup, aid, two)
    assert refused.status_code == 422
    assert "at most 1 labels" in refused.json()["detail"]
    await edit_dimension(db, project, setup.lead.id, "emotion", max_labels=2)
    assert (await _save(client, setup, aid, two)).status_code == 200
    value = (await db.execute(select(Annotation).where(Annotation.position == -1))).scalar_one()
    assert value.codebook_version < project.codebook_version  # set when first stored
    counselor = _change(position=1, dimension="observation", labels=None, text="calm")
    assert (await _save(client, setup, aid, counselor)).status_code == 422
    await edit_dimension(db, project, setup.lead.id, "observation", speaker="any")
    assert (await _save(client, setup, aid, counselor)).status_code == 200
