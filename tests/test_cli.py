"""The command line, run as a real subprocess against a throwaway database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.factories import TEST_SECRET

COMMANDS = [
    [],
    ["serve"],
    ["migrate"],
    ["worker"],
    ["create-user"],
    ["token", "create"],
    ["project", "create"],
    ["project", "add-member"],
    ["demo"],
]


def _env(url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "PSY_ANNOTATOR_SECRET_KEY": TEST_SECRET,
        "PSY_ANNOTATOR_ENV": "test",
    }


def run_in_process(url: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """The same commands through Typer's runner: fast enough for the many bad-input cases."""
    result = CliRunner().invoke(cli, list(args), input=stdin, env=_env(url))
    return result.exit_code, result.stdout, result.stderr


def run(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """A real subprocess, as a user runs it."""
    env = {**os.environ, **_env(url)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help(command: list[str]) -> None:
    code, out, err = run_in_process("postgresql://unused/db", *command, "--help")
    assert code == 0, err
    assert "Usage" in out


def test_help_as_a_real_process() -> None:
    result = run("postgresql://unused/db", "--help")
    assert result.returncode == 0, result.stderr
    assert "create-user" in result.stdout


def test_user_token_project_member_flow(fresh_db_url: str) -> None:
    created = run(
        fresh_db_url,
        "create-user",
        "--email",
        "Lead@Example.org",
        "--name",
        "Lead 负责人",
        "--password-stdin",
        "--admin",
        stdin="long enough password\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created user lead@example.org" in created.stdout
    run(
        fresh_db_url,
        "create-user",
        "--email",
        "ann@example.org",
        "--name",
        "Ann",
        "--password-stdin",
        stdin="another long password\n",
    )

    token = run(fresh_db_url, "token", "create", "--email", "lead@example.org")
    assert token.returncode == 0, token.stderr
    raw = token.stdout.strip()
    assert raw.startswith("psy_")
    assert len(raw) > 40

    project = run(fresh_db_url, "project", "create", "pilot", "--name", "Pilot")
    assert project.returncode == 0, project.stderr
    member = run(
        fresh_db_url,
        "project",
        "add-member",
        "pilot",
        "--email",
        "ann@example.org",
        "--role",
        "annotator",
        "--role",
        "reviewer",
    )
    assert member.returncode == 0, member.stderr

    with psycopg.connect(fresh_db_url) as conn:
        rows = conn.execute(
            "SELECT u.email, m.role FROM project_memberships m JOIN users u ON u.id = m.user_id "
            "ORDER BY 1, 2"
        ).fetchall()
        hashes = conn.execute("SELECT password_hash FROM users").fetchall()
        stored = conn.execute(
            "SELECT count(*) FROM api_tokens WHERE prefix = %s", (raw[:10],)
        ).fetchone()
    assert rows == [
        ("ann@example.org", "annotator"),
        ("ann@example.org", "reviewer"),
        ("lead@example.org", "lead"),
    ]
    assert all(h[0].startswith("$argon2id$") for h in hashes)
    assert stored == (1,)


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["create-user", "--email", "a@example.org", "--name", "A"], "", 2, "--password-stdin"),
        (
            ["create-user", "--email", "a@example.org", "--name", "A", "--password-stdin"],
            "short\n",
            2,
            "at least 10 characters",
        ),
        (
            ["create-user", "--email", "nope", "--name", "A", "--password-stdin"],
            "long enough pw\n",
            2,
            "valid email",
        ),
        (["token", "create", "--email", "ghost@example.org"], "", 1, "No account with this email."),
        (["project", "create", "Bad Slug", "--name", "X"], "", 2, "invalid slug"),
        (["project", "create", "pilot", "--name", "X"], "", 1, "no administrator exists yet"),
        (
            ["project", "add-member", "nope", "--email", "a@example.org", "--role", "annotator"],
            "",
            1,
            "No such project.",
        ),
        (
            ["project", "add-member", "nope", "--email", "a@example.org", "--role", "owner"],
            "",
            2,
            "unknown role",
        ),
    ],
)
def test_bad_input_exits_non_zero(
    fresh_db_url: str, args: list[str], stdin: str, code: int, message: str
) -> None:
    exit_code, out, err = run_in_process(fresh_db_url, *args, stdin=stdin)
    assert exit_code == code, out + err
    assert message in err
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM projects").fetchone() == (0,)


def test_duplicate_user_is_refused(fresh_db_url: str) -> None:
    args = ["create-user", "--email", "d@example.org", "--name", "D", "--password-stdin"]
    assert run_in_process(fresh_db_url, *args, stdin="long enough pw\n")[0] == 0
    code, _, err = run_in_process(fresh_db_url, *args, stdin="long enough pw\n")
    assert code == 1
    assert "already exists" in err


def test_agreement_command(fresh_db_url: str) -> None:
    run_in_process(fresh_db_url, "create-user", "--email", "l@example.org", "--name", "L",
                   "--password-stdin", "--admin", stdin="long enough pw\n")  # fmt: skip
    assert run_in_process(fresh_db_url, "project", "create", "agr", "--name", "A")[0] == 0
    code, out, err = run_in_process(fresh_db_url, "agreement", "--project", "agr")
    assert code == 0, err
    assert "emotion: no ratings" in out
    code, out, _ = run_in_process(fresh_db_url, "agreement", "--project", "agr", "--json")
    assert {row["dimension"] for row in json.loads(out)["dimensions"]} == {
        "psychotherapy",
        "topic",
        "emotion",
        "strategy",
    }
    assert run_in_process(fresh_db_url, "agreement", "--project", "agr", "--raters", "x")[0] == 2
