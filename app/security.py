"""Password hashing, random tokens and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache

from passlib.context import CryptContext
from starlette.concurrency import run_in_threadpool

_passwords = CryptContext(schemes=["argon2"], argon2__type="ID")


@cache
def _dummy_hash() -> str:
    """Verified against when an email is unknown, so both paths take the same time."""
    value: str = _passwords.hash(secrets.token_urlsafe(16))
    return value


MIN_PASSWORD_LENGTH = 10
API_TOKEN_PREFIX = "psy_"  # noqa: S105 (a prefix, not a secret)


def hash_password_sync(password: str) -> str:
    value: str = _passwords.hash(password)
    return value


async def hash_password(password: str) -> str:
    return await run_in_threadpool(hash_password_sync, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Check a password in a worker thread; an unknown user still costs one verification."""
    target = password_hash or _dummy_hash()
    ok: bool = await run_in_threadpool(_passwords.verify, password, target)
    return ok and password_hash is not None


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> bytes:
    """What is stored for a session, API token or invitation: never the token itself."""
    return hashlib.sha256(token.encode()).digest()


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def csrf_token(secret: str, binding: str) -> str:
    """A CSRF token bound to a cookie value (session or anonymous) by an HMAC."""
    return hmac.digest(secret.encode(), f"csrf:{binding}".encode(), "sha256").hex()


def csrf_valid(secret: str, supplied: str | None, bindings: list[str]) -> bool:
    if not supplied:
        return False
    return any(hmac.compare_digest(csrf_token(secret, b), supplied) for b in bindings)
