"""Account page, password change, API tokens, administration and invitations."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
from bs4 import BeautifulSoup
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import now
from app.models import ApiToken, AuditEvent, Invitation, User, UserSession
from tests.factories import PASSWORD, csrf_token, login, make_user


async def test_password_change_ends_other_sessions(
    app: object, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as laptop:
        await login(laptop, user)
        token = await login(client, user)
        response = await client.post(
            "/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": "a much newer secret",
                "csrf_token": token,
            },
        )
        assert response.status_code == 303
        assert (await laptop.get("/projects")).status_code == 303  # the other browser is out
        assert (await client.get("/projects")).status_code == 200  # this one got a new session
    sessions = await db.scalar(select(func.count()).where(UserSession.user_id == user.id))
    assert sessions == 1


async def test_password_change_needs_the_current_password(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    token = await login(client, user)
    response = await client.post(
        "/account/password",
        data={
            "current_password": "wrong",
            "new_password": "a much newer secret",
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    assert "The current password is wrong." in response.text
    short = await client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "short", "csrf_token": token},
    )
    assert short.status_code == 422
    assert "at least 10 characters" in short.text


async def test_api_token_lifecycle(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    token = await login(client, user)
    response = await client.post(
        "/account/tokens",
        data={"name": "notebook", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.select_one("section#tokens") is not None
    assert soup.select_one("header.topbar") is None  # a fragment, not a page
    raw = soup.select_one("#new-token").get_text()  # type: ignore[union-attr]
    assert raw.startswith("psy_")
    stored = (await db.execute(select(ApiToken).where(ApiToken.user_id == user.id))).scalar_one()
    assert stored.prefix == raw[:10]
    assert stored.token_hash == hashlib.sha256(raw.encode()).digest()  # only the digest is kept

    api = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    me = await api.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200
    assert me.json()["email"] == user.email

    revoke = await client.post(f"/account/tokens/{stored.id}/revoke", data={"csrf_token": token})
    assert revoke.status_code == 200
    again = await api.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert again.status_code == 401
    await api.aclose()


async def test_cannot_revoke_someone_elses_token(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    owner = await make_user(db)
    db.add(ApiToken(user_id=owner.id, name="t", token_hash=b"x" * 32, prefix="psy_abc"))
    await db.flush()
    foreign_id = await db.scalar(select(ApiToken.id).where(ApiToken.user_id == owner.id))
    token = await login(client, await make_user(db))
    response = await client.post(f"/account/tokens/{foreign_id}/revoke", data={"csrf_token": token})
    assert response.status_code == 404
    assert await db.scalar(select(ApiToken.revoked_at).where(ApiToken.id == foreign_id)) is None


async def test_admin_pages_are_for_admins(client: httpx.AsyncClient, db: AsyncSession) -> None:
    token = await login(client, await make_user(db))
    assert (await client.get("/admin/users")).status_code == 403
    response = await client.post(
        "/admin/users",
        data={
            "email": "x@example.org",
            "name": "X",
            "password": "long enough pw",
            "csrf_token": token,
        },
    )
    assert response.status_code == 403
    assert await db.scalar(select(func.count()).where(User.email == "x@example.org")) == 0


async def test_admin_creates_user_and_duplicate_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    token = await login(client, await make_user(db, admin=True))
    form = {
        "email": "New@Example.org",
        "name": "New",
        "password": "long enough pw",
        "csrf_token": token,
    }
    assert (await client.post("/admin/users", data=form)).status_code == 303
    created = (await db.execute(select(User).where(User.email == "new@example.org"))).scalar_one()
    assert created.password_hash.startswith("$argon2id$")
    assert not created.is_admin
    duplicate = await client.post("/admin/users", data={**form, "email": "NEW@example.org"})
    assert duplicate.status_code == 422
    assert "already exists" in duplicate.text
    bad = await client.post("/admin/users", data={**form, "email": "not-an-email"})
    assert bad.status_code == 422
    assert "valid email" in bad.text


async def test_admin_cannot_disable_themselves(client: httpx.AsyncClient, db: AsyncSession) -> None:
    admin = await make_user(db, admin=True)
    token = await login(client, admin)
    response = await client.post(f"/admin/users/{admin.id}/disable", data={"csrf_token": token})
    assert response.status_code == 422
    assert (await db.get(User, admin.id)).is_active  # type: ignore[union-attr]


async def test_invitation_flow(app: object, client: httpx.AsyncClient, db: AsyncSession) -> None:
    admin = await make_user(db, admin=True)
    token = await login(client, admin)
    response = await client.post(
        "/admin/invitations", data={"email": "guest@example.org", "csrf_token": token}
    )
    assert response.status_code == 200
    link = BeautifulSoup(response.text, "html.parser").select_one("#invite-link").get_text()  # type: ignore[union-attr]
    path = "/invite/" + link.rsplit("/invite/", 1)[1]
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as guest:
        form_token = await csrf_token(guest, path)
        accepted = await guest.post(
            path,
            data={"name": "Guest 客人", "password": "guest password 1", "csrf_token": form_token},
        )
        assert accepted.status_code == 303
        assert (await guest.get(path)).status_code == 404  # single use
        created = (
            await db.execute(select(User).where(User.email == "guest@example.org"))
        ).scalar_one()
        assert created.name == "Guest 客人"
        await login(guest, created, "guest password 1")
    actions = set((await db.execute(select(AuditEvent.action))).scalars())
    assert {"invitation.create", "invitation.accept", "user.create"} <= actions


async def test_expired_invitation_is_not_found(client: httpx.AsyncClient, db: AsyncSession) -> None:
    from app.security import token_digest

    db.add(
        Invitation(
            email="late@example.org",
            token_hash=token_digest("late-token"),
            expires_at=now() - timedelta(minutes=1),
        )
    )
    await db.flush()
    assert (await client.get("/invite/late-token")).status_code == 404
    await db.execute(update(Invitation).values(expires_at=now() + timedelta(days=1)))
    assert (await client.get("/invite/late-token")).status_code == 200


async def test_revoke_one_of_my_sessions(
    app: object, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as phone:
        await login(phone, user)
        token = await login(client, user)
        page = BeautifulSoup((await client.get("/account")).text, "html.parser")
        forms = page.select("form[action^='/account/sessions/']")
        assert len(forms) == 1  # the other browser; this one is marked as current
        response = await client.post(str(forms[0]["action"]), data={"csrf_token": token})
        assert response.status_code == 303
        assert (await phone.get("/projects")).status_code == 303
        assert (await client.get("/projects")).status_code == 200
