"""The production shape: docker-compose.yml and the Dockerfile agree with the app.

No Docker engine runs here, so these check what can be checked without one: the structure of
the compose file, that every variable it sets is a real setting, and that every command the
containers run exists in the CLI with the options given.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.config import ROOT_DIR, Settings


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT_DIR / "docker-compose.yml").read_text())
    return data


def _setting_names() -> set[str]:
    names = {f"PSY_ANNOTATOR_{name.upper()}" for name in Settings.model_fields}
    return names | {"DATABASE_URL"}


def test_services_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "migrate", "app", "worker"}
    db = services["db"]
    assert db["image"] == "postgres:17"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "the database lives in a named volume"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("app", "worker"):
        assert (
            services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )
    assert services["app"]["ports"] == ["8000:8000"]


def test_environment_uses_real_settings(compose: dict[str, Any]) -> None:
    known = _setting_names()
    for name in ("migrate", "app", "worker"):
        env = compose["services"][name]["environment"]
        assert set(env) <= known, f"{name}: unknown variables {set(env) - known}"
        assert env["PSY_ANNOTATOR_ENV"] == "production"
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert ":?" in env["PSY_ANNOTATOR_SECRET_KEY"], "the secret must be required, not defaulted"


def test_readme_documents_every_setting() -> None:
    readme = (ROOT_DIR / "README.md").read_text()
    missing = [name for name in sorted(_setting_names()) if f"`{name}`" not in readme]
    assert missing == []


@pytest.mark.parametrize("service", ["migrate", "app", "worker"])
def test_container_commands_exist(compose: dict[str, Any], service: str) -> None:
    command = compose["services"][service]["command"]
    assert command[0] == "psy-annotator"
    result = CliRunner().invoke(cli, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_dockerfile_runs_the_app_without_the_in_process_worker() -> None:
    dockerfile = (ROOT_DIR / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert (
        'CMD ["psy-annotator", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]'
        in dockerfile
    )
    assert "USER psy" in dockerfile
    for folder in ("app", "migrations", "templates", "static"):
        assert f"COPY {folder} ./{folder}" in dockerfile
