"""Login, logout, rate limits, timeouts and session revocation."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import now
from app.models import LoginAttempt, User, UserSession
from tests.factories import PASSWORD, csrf_token, login, make_user


async def _attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )


async def test_login_success_sets_httponly_lax_cookie(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    response = await _attempt(client, user.email.upper(), PASSWORD)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("psy_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http in tests
    page = await client.get("/projects")
    assert page.status_code == 200
    assert user.name in page.text


async def test_secure_cookie_behind_https(app: object, db: AsyncSession) -> None:
    user = await make_user(db)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await _attempt(client, user.email, PASSWORD)
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


async def test_wrong_password_is_refused_and_recorded(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    response = await _attempt(client, user.email, "not the password")
    assert response.status_code == 401
    assert "Wrong email or password." in response.text
    assert "psy_session" not in response.headers.get("set-cookie", "")
    failures = await db.scalar(
        select(func.count()).where(LoginAttempt.email == user.email, ~LoginAttempt.succeeded)
    )
    assert failures == 1
    assert (await client.get("/projects")).status_code == 303


async def test_unknown_email_gets_the_same_answer(client: httpx.AsyncClient) -> None:
    response = await _attempt(client, "nobody@example.org", PASSWORD)
    assert response.status_code == 401
    assert "Wrong email or password." in response.text


async def test_disabled_user_cannot_log_in(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db, active=False)
    response = await _attempt(client, user.email, PASSWORD)
    assert response.status_code == 403
    assert "This account is disabled" in response.text


async def test_rate_limit_per_account_blocks_even_the_right_password(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    for _ in range(5):
        assert (await _attempt(client, user.email, "wrong password")).status_code == 401
    response = await _attempt(client, user.email, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed attempts" in response.text
    other = await make_user(db)
    assert (await _attempt(client, other.email, PASSWORD)).status_code == 303


async def test_rate_limit_per_address(
    client: httpx.AsyncClient, db: AsyncSession, settings: object
) -> None:
    users = [await make_user(db) for _ in range(3)]
    db.add_all(
        LoginAttempt(email=f"spray{i}@example.org", ip="127.0.0.1", succeeded=False)
        for i in range(30)
    )
    await db.flush()
    response = await _attempt(client, users[0].email, PASSWORD)
    assert response.status_code == 429


async def test_old_failures_do_not_count(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    long_ago = now() - timedelta(hours=1)
    db.add_all(
        LoginAttempt(email=user.email, ip="10.0.0.1", succeeded=False, at=long_ago)
        for _ in range(10)
    )
    await db.flush()
    assert (await _attempt(client, user.email, PASSWORD)).status_code == 303


async def test_logout_ends_the_session(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    token = await login(client, user)
    session_cookie = client.cookies["psy_session"]
    response = await client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    count = await db.scalar(select(func.count()).where(UserSession.user_id == user.id))
    assert count == 0
    client.cookies.set("psy_session", session_cookie)  # replaying the old cookie does not work
    assert (await client.get("/projects")).status_code == 303


async def test_disabling_a_user_ends_their_sessions(
    app: object, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    admin = await make_user(db, admin=True)
    victim = await make_user(db)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, victim)
        assert (await other.get("/projects")).status_code == 200
        admin_token = await login(client, admin)
        response = await client.post(
            f"/admin/users/{victim.id}/disable", data={"csrf_token": admin_token}
        )
        assert response.status_code == 303
        assert (await other.get("/projects")).status_code == 303
        assert (await other.get("/projects")).headers["location"].startswith("/login")
    assert (await db.get(User, victim.id)) is not None


async def test_idle_timeout(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    await login(client, user)
    await db.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id)
        .values(last_seen_at=now() - timedelta(minutes=121))
    )
    assert (await client.get("/projects")).status_code == 303


async def test_absolute_timeout(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    await login(client, user)
    await db.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id)
        .values(expires_at=now() - timedelta(seconds=1))
    )
    assert (await client.get("/projects")).status_code == 303


async def test_next_parameter_is_local_only(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    token = await csrf_token(client)
    response = await client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert response.headers["location"] == "/projects"
