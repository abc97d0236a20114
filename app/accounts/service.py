"""Accounts: created by an admin or by invitation, disabled, passwords, API tokens, language."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import InvitationAccept, InvitationCreate, UserCreate
from app.audit.service import record
from app.auth.service import end_all_sessions, now
from app.errors import Conflict, Invalid, NotFound
from app.models import ApiToken, Invitation, User
from app.security import hash_password, new_api_token, new_token, token_digest, verify_password


async def create_user(db: AsyncSession, actor_id: int | None, data: UserCreate) -> User:
    """Create an account; emails are unique regardless of case."""
    user = User(
        email=data.email,
        name=data.name,
        password_hash=await hash_password(data.password),
        is_admin=data.is_admin,
    )
    try:
        async with db.begin_nested():  # a savepoint: a duplicate leaves the transaction usable
            db.add(user)
            await db.flush()
    except IntegrityError as exc:
        raise Conflict("An account with this email already exists.") from exc
    record(db, actor_id, "user.create", "user", user.id, email=user.email, admin=user.is_admin)
    return user


async def get_user(db: AsyncSession, user_id: int) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def get_user_by_email(db: AsyncSession, email: str) -> User:
    query = select(User).where(User.email == email.strip().lower())
    user = (await db.execute(query)).scalar_one_or_none()
    if user is None:
        raise NotFound("No account with this email.")
    return user


async def list_users(db: AsyncSession) -> list[User]:
    return list((await db.execute(select(User).order_by(User.name, User.id))).scalars())


async def set_active(db: AsyncSession, actor_id: int, user: User, active: bool) -> None:
    """Enable or disable an account; disabling ends all its sessions at once."""
    if user.id == actor_id and not active:
        raise Invalid("You cannot disable your own account.")
    user.is_active = active
    if not active:
        await end_all_sessions(db, user.id)
    record(db, actor_id, "user.enable" if active else "user.disable", "user", user.id)


async def change_password(db: AsyncSession, user: User, current: str, new: str) -> None:
    """Change a password after checking the current one; ends every session of the user."""
    if not await verify_password(current, user.password_hash):
        raise Invalid("The current password is wrong.")
    user.password_hash = await hash_password(new)
    user.password_changed_at = now()
    await end_all_sessions(db, user.id)
    record(db, user.id, "user.password_change", "user", user.id)


async def set_language(db: AsyncSession, user: User, lang: str) -> None:
    await db.execute(update(User).where(User.id == user.id).values(language=lang))
    user.language = lang


async def create_invitation(
    db: AsyncSession, actor_id: int, data: InvitationCreate, days: int
) -> tuple[Invitation, str]:
    """An invitation link valid for `days`; returns the raw token (shown once)."""
    exists = await db.execute(select(User.id).where(User.email == data.email))
    if exists.first() is not None:
        raise Conflict("An account with this email already exists.")
    token = new_token()
    invitation = Invitation(
        email=data.email,
        is_admin=data.is_admin,
        token_hash=token_digest(token),
        created_by_id=actor_id,
        expires_at=now() + timedelta(days=days),
    )
    db.add(invitation)
    await db.flush()
    record(db, actor_id, "invitation.create", "invitation", invitation.id, email=data.email)
    return invitation, token


async def open_invitation(db: AsyncSession, token: str) -> Invitation:
    """A usable invitation: unknown, used and expired links are all simply not found."""
    query = select(Invitation).where(
        Invitation.token_hash == token_digest(token),
        Invitation.accepted_at.is_(None),
        Invitation.expires_at > now(),
    )
    invitation = (await db.execute(query.with_for_update())).scalar_one_or_none()
    if invitation is None:
        raise NotFound("This invitation link is invalid, used or expired.")
    return invitation


async def accept_invitation(db: AsyncSession, token: str, data: InvitationAccept) -> User:
    invitation = await open_invitation(db, token)
    create = UserCreate(
        email=invitation.email, name=data.name, password=data.password, is_admin=invitation.is_admin
    )
    user = await create_user(db, None, create)
    invitation.accepted_at = now()
    record(db, user.id, "invitation.accept", "invitation", invitation.id)
    return user


async def create_api_token(db: AsyncSession, user: User, name: str) -> tuple[ApiToken, str]:
    """A personal API token; the raw value is returned once and only its digest kept."""
    raw = new_api_token()
    token = ApiToken(user_id=user.id, name=name, token_hash=token_digest(raw), prefix=raw[:10])
    db.add(token)
    await db.flush()
    record(db, user.id, "api_token.create", "api_token", token.id, name=name)
    return token, raw


async def list_api_tokens(db: AsyncSession, user: User) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    return list((await db.execute(query)).scalars())


async def revoke_api_token(db: AsyncSession, user: User, token_id: int) -> None:
    """Revoke one of the caller's own tokens; someone else's is not found."""
    token = await db.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("No such token.")
    if token.revoked_at is None:
        token.revoked_at = now()
        record(db, user.id, "api_token.revoke", "api_token", token.id)
