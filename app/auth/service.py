"""Logging in and out: rate limits, server-side sessions with idle and absolute timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.audit.service import record
from app.config import Settings
from app.models import ApiToken, LoginAttempt, User, UserSession
from app.security import new_token, token_digest, verify_password

TOUCH_EVERY = timedelta(seconds=60)


class LoginFailure(StrEnum):
    invalid = "invalid"
    disabled = "disabled"
    rate_limited = "rate_limited"


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    failure: LoginFailure | None = None


def normalize_email(email: str) -> str:
    return email.strip().lower()


def now() -> datetime:
    return datetime.now(UTC)


async def _recent_failures(
    db: AsyncSession, column: InstrumentedAttribute[str], value: str, since: datetime
) -> int:
    query = select(func.count()).where(
        column == value,
        LoginAttempt.at > since,
        LoginAttempt.succeeded.is_(False),
    )
    return int((await db.execute(query)).scalar_one())


async def is_rate_limited(db: AsyncSession, email: str, ip: str, settings: Settings) -> bool:
    """Too many recent failures for this account or from this address."""
    since = now() - timedelta(minutes=settings.login_window_minutes)
    by_account = await _recent_failures(db, LoginAttempt.email, email, since)
    if by_account >= settings.login_max_failures_per_account:
        return True
    by_address = await _recent_failures(db, LoginAttempt.ip, ip, since)
    return by_address >= settings.login_max_failures_per_address


async def authenticate(
    db: AsyncSession, email: str, password: str, ip: str, settings: Settings
) -> LoginResult:
    """Check credentials under the rate limit; every attempt is recorded."""
    email = normalize_email(email)
    if await is_rate_limited(db, email, ip, settings):
        db.add(LoginAttempt(email=email, ip=ip, succeeded=False))
        return LoginResult(None, LoginFailure.rate_limited)
    user = (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()
    ok = await verify_password(password, user.password_hash if user else None)
    db.add(LoginAttempt(email=email, ip=ip, succeeded=ok))
    if not ok or user is None:
        return LoginResult(None, LoginFailure.invalid)
    if not user.is_active:
        return LoginResult(None, LoginFailure.disabled)
    return LoginResult(user)


async def create_session(
    db: AsyncSession, user: User, settings: Settings, ip: str | None, user_agent: str | None
) -> str:
    """Start a session; returns the cookie value (only its digest is stored)."""
    token = new_token()
    db.add(
        UserSession(
            id=token_digest(token),
            user_id=user.id,
            expires_at=now() + timedelta(hours=settings.session_absolute_hours),
            ip=ip,
            user_agent=(user_agent or "")[:300],
        )
    )
    record(db, user.id, "login", "user", user.id)
    await db.flush()
    return token


async def resolve_session(db: AsyncSession, token: str, settings: Settings) -> User | None:
    """The active user of a live session (inside both timeouts), refreshing its idle clock."""
    t = now()
    idle_cutoff = t - timedelta(minutes=settings.session_idle_minutes)
    digest = token_digest(token)
    query = (
        select(User, UserSession.last_seen_at)  # the session as a column: one entity to load
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            UserSession.id == digest,
            UserSession.expires_at > t,
            UserSession.last_seen_at > idle_cutoff,
            User.is_active.is_(True),
        )
    )
    row = (await db.execute(query)).one_or_none()
    if row is None:
        return None
    user, last_seen_at = row
    if t - last_seen_at > TOUCH_EVERY:
        await db.execute(update(UserSession).where(UserSession.id == digest).values(last_seen_at=t))
    return user


async def end_session(db: AsyncSession, token: str) -> None:
    await db.execute(delete(UserSession).where(UserSession.id == token_digest(token)))


async def end_all_sessions(db: AsyncSession, user_id: int) -> int:
    """Revoke every session of a user (on disable or password change)."""
    result = await db.execute(delete(UserSession).where(UserSession.user_id == user_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def resolve_api_token(db: AsyncSession, raw: str) -> User | None:
    """The active owner of a live API token."""
    query = (
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_hash == token_digest(raw),
            ApiToken.revoked_at.is_(None),
            User.is_active.is_(True),
        )
    )
    row = (await db.execute(query)).one_or_none()
    if row is None:
        return None
    token, user = row
    if token.last_used_at is None or now() - token.last_used_at > TOUCH_EVERY:
        await db.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now()))
    return user


async def purge_expired(db: AsyncSession, settings: Settings) -> dict[str, int]:
    """Delete dead sessions and login attempts older than a day (run by the job queue)."""
    t = now()
    idle_cutoff = t - timedelta(minutes=settings.session_idle_minutes)
    sessions = await db.execute(
        delete(UserSession).where(
            (UserSession.expires_at <= t) | (UserSession.last_seen_at <= idle_cutoff)
        )
    )
    attempts = await db.execute(delete(LoginAttempt).where(LoginAttempt.at < t - timedelta(days=1)))
    return {
        "sessions": int(sessions.rowcount),  # type: ignore[attr-defined]
        "login_attempts": int(attempts.rowcount),  # type: ignore[attr-defined]
    }


async def list_sessions(db: AsyncSession, user_id: int) -> list[UserSession]:
    query = (
        select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.expires_at > now())
        .order_by(UserSession.last_seen_at.desc())
    )
    return list((await db.execute(query)).scalars())


async def revoke_session(db: AsyncSession, user_id: int, session_hex: str) -> None:
    """End one of the caller's own sessions, identified by its digest."""
    try:
        digest = bytes.fromhex(session_hex)
    except ValueError:
        digest = b""
    result = await db.execute(
        delete(UserSession).where(UserSession.id == digest, UserSession.user_id == user_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        from app.errors import NotFound

        raise NotFound("No such session.")
    record(db, user_id, "session.revoke", "user", user_id)
