"""Settings: environment variables, and the refusal of a missing or placeholder secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, Settings


def test_production_refuses_a_missing_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PSY_ANNOTATOR_SECRET_KEY is missing or a placeholder"):
        Settings(env="production", data_dir=tmp_path).resolve_secret()


@pytest.mark.parametrize("secret", ["change-me", "CHANGEME", "short-but-real"])
def test_production_refuses_a_placeholder_secret(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError):
        Settings(env="production", data_dir=tmp_path, secret_key=secret).resolve_secret()


def test_production_accepts_a_real_secret(tmp_path: Path) -> None:
    secret = "k" * 48
    assert (
        Settings(env="production", data_dir=tmp_path, secret_key=secret).resolve_secret() == secret
    )


def test_development_generates_and_keeps_a_secret(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).resolve_secret()
    second = Settings(data_dir=tmp_path).resolve_secret()
    assert first == second
    assert len(first) >= 48
    stored = tmp_path / "secret_key"
    assert stored.read_text() == first
    assert stored.stat().st_mode & 0o777 == 0o600


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.internal/psy")
    monkeypatch.setenv("PSY_ANNOTATOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PSY_ANNOTATOR_UPLOAD_LIMIT_MB", "5")
    monkeypatch.setenv("PSY_ANNOTATOR_DEFAULT_LANGUAGE", "zh")
    settings = Settings()
    assert settings.database_url == "postgresql://db.internal/psy"
    assert not settings.embedded
    assert settings.resolved_data_dir() == tmp_path.resolve()
    assert settings.upload_limit_mb == 5
    assert settings.default_language == "zh"
    monkeypatch.setenv("PSY_ANNOTATOR_DEFAULT_LANGUAGE", "fr")
    with pytest.raises(ValueError, match="default_language"):
        Settings()


@pytest.mark.parametrize("on", [False, True])
def test_fastapi_telemetry_follows_the_setting(tmp_path: Path, on: bool) -> None:
    from app.main import create_app

    app = create_app(Settings(data_dir=tmp_path, telemetry=on))
    config = app._telemetry  # what FastAPI checks on every request
    assert [config.get(k) for k in ("tracing", "metrics", "logs")] == (
        [True, True, True] if on else [False, False, False]
    )
