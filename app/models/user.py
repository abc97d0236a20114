"""Accounts, their browser sessions, API tokens, invitations and login attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, LargeBinary, func
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt

LANGUAGES = ("en", "zh")


class User(CreatedAt, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("language IN ('en', 'zh')", name="language_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    password_hash: Mapped[str]
    is_admin: Mapped[bool] = mapped_column(default=False, server_default="false")
    is_active: Mapped[bool] = mapped_column(default=True, server_default="true")
    language: Mapped[str] = mapped_column(default="en", server_default="en")
    password_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class UserSession(CreatedAt, Base):
    """A browser session; the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "user_sessions"

    id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ip: Mapped[str | None]
    user_agent: Mapped[str | None]


class ApiToken(CreatedAt, Base):
    """A personal API token; only its SHA-256 is stored, its first characters shown."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str]
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    prefix: Mapped[str]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Invitation(CreatedAt, Base):
    """An expiring, single-use link through which a person creates their own account."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str]
    is_admin: Mapped[bool] = mapped_column(default=False, server_default="false")
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]


class LoginAttempt(Base):
    """One login attempt; failures within a window rate-limit an account and an address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    email: Mapped[str]
    ip: Mapped[str]
    succeeded: Mapped[bool]
