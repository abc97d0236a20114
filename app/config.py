"""One settings class, read from `PSY_ANNOTATOR_*` environment variables (plus `DATABASE_URL`)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT_DIR = Path(__file__).resolve().parent.parent
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "please-change-me"})
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """Raised when the configuration cannot work; the message says what to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PSY_ANNOTATOR_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PSY_ANNOTATOR_DATABASE_URL", "DATABASE_URL"),
    )
    secret_key: SecretStr | None = None
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8000
    session_idle_minutes: int = Field(default=120, ge=1)
    session_absolute_hours: int = Field(default=24 * 7, ge=1)
    upload_limit_mb: int = Field(default=200, ge=1)
    default_language: Literal["en", "zh"] = "en"
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=30, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    invitation_days: int = Field(default=7, ge=1)
    secure_cookies: bool | None = None  # None: decided per request (https => Secure)
    demo: bool | None = None  # None: load the demo on the first start in development only
    # FastAPI's OpenTelemetry spans, metrics and logs, for a deployment that configures an
    # OpenTelemetry SDK; off, requests skip the per-request provider look-ups.
    telemetry: bool = False

    @property
    def upload_limit_bytes(self) -> int:
        """The largest request body: the upload limit plus room for the form's other fields."""
        return self.upload_limit_mb * 1024 * 1024 + 64 * 1024

    @property
    def embedded(self) -> bool:
        return not self.database_url

    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    def resolve_secret(self) -> str:
        """The signing secret; generated once and kept in the data dir when running embedded."""
        given = self.secret_key.get_secret_value() if self.secret_key else ""
        if given and given.lower() not in PLACEHOLDER_SECRETS and len(given) >= MIN_SECRET_LENGTH:
            return given
        if self.env != "production":
            return given or self._stored_secret()
        raise ConfigError(
            "PSY_ANNOTATOR_SECRET_KEY is missing or a placeholder. Outside development set it to "
            f"a random value of at least {MIN_SECRET_LENGTH} characters, for example the output "
            'of: python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )

    def _stored_secret(self) -> str:
        path = self.resolved_data_dir() / "secret_key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
