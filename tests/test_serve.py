"""`serve` on the embedded default: first start, demo, worker, and CLI beside it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.config import ROOT_DIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSY_ANNOTATOR_")}
    env.pop("DATABASE_URL", None)
    env["PSY_ANNOTATOR_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    log = data_dir.parent / "serve.log"
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=embedded_env(data_dir),
            cwd=ROOT_DIR,
        )
    served = Served(f"http://127.0.0.1:{port}", data_dir, log, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(served.url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.terminate()
        pytest.fail("serve did not answer within 60 s:\n" + served.output())
    yield served
    process.terminate()
    process.wait(timeout=30)


def test_first_start_prints_credentials_once_and_they_work(served: Served) -> None:
    output = served.output()
    assert f"data folder: {served.data_dir.resolve()}" in output
    match = re.search(r"email:\s+(\S+)\n\s+password:\s+(\S+)", output)
    assert match, output
    email, password = match.groups()
    with httpx.Client(base_url=served.url) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
        login = client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )
        assert login.status_code == 303
        projects = client.get("/projects")
        assert "Demo: counseling dialogues" in projects.text
    secret = (served.data_dir / "secret_key").read_text()
    assert password not in secret
    for path in served.data_dir.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            assert password.encode() not in path.read_bytes(), f"password in clear in {path}"


def test_cli_works_beside_the_running_server(served: Served) -> None:
    env = embedded_env(served.data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "app", "project", "create", "second", "--name", "Second"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert httpx.get(served.url + "/healthz").status_code == 200  # the server kept running


def test_in_process_worker_runs_jobs(served: Served) -> None:
    import psycopg

    from app.embedded import DATABASE_NAME, start_server

    url = start_server(served.data_dir).get_uri(DATABASE_NAME)
    with psycopg.connect(url, autocommit=True) as conn:
        job_id = conn.execute(
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('maintenance', 'purge_expired', 0, "
            "NULL, NULL, '{}'::jsonb, NULL)]::procrastinate_job_to_defer_v1[])"
        ).fetchone()[0][0]  # type: ignore[index]
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            status = conn.execute(
                "SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)
            ).fetchone()[0]  # type: ignore[index]
            if status == "succeeded":
                break
            time.sleep(0.2)
    assert status == "succeeded"


def test_first_start_loads_the_demo_dialogues_with_two_sources(served: Served) -> None:
    import psycopg

    from app.embedded import DATABASE_NAME, start_server

    url = start_server(served.data_dir).get_uri(DATABASE_NAME)
    with psycopg.connect(url) as conn:
        per_language = conn.execute(
            "SELECT language, count(*) FROM dialogues GROUP BY 1 ORDER BY 1"
        ).fetchall()
        sources = conn.execute(
            "SELECT s.name, count(DISTINCT a.dialogue_id) FROM source_annotations a "
            "JOIN annotation_sources s ON s.id = a.source_id GROUP BY 1 ORDER BY 1"
        ).fetchall()
        people = conn.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM assignments WHERE status = 'submitted'"
        ).fetchone()
        # units the demo annotators labelled differently: the dashboard has something to show
        disagreements = conn.execute(
            "SELECT count(*) FROM annotations a JOIN annotations b ON a.dialogue_id = b.dialogue_id"
            " AND a.position = b.position AND a.dimension = b.dimension"
            " AND a.assignment_id < b.assignment_id WHERE a.labels <> b.labels"
        ).fetchone()
        version = conn.execute("SELECT data_version FROM projects WHERE slug = 'demo'").fetchone()
    assert per_language == [("en", 4), ("zh", 4)]
    assert sources == [("demo-import", 8), ("model-draft", 8)]
    assert people == (16, 3)  # two of the three demo annotators per dialogue
    assert disagreements is not None
    assert disagreements[0] > 0
    assert version is not None
    assert version[0] > 0


def test_sigterm_stops_the_embedded_postgresql_too(tmp_path: Path) -> None:
    import psutil

    data_dir = tmp_path / "data"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--no-worker"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=embedded_env(data_dir),
        cwd=ROOT_DIR,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    pgdata = str((data_dir / "pg").resolve())

    def postgres_running() -> bool:
        for proc in psutil.process_iter(["name", "cmdline"]):
            if proc.info["name"] == "postgres" and pgdata in " ".join(proc.info["cmdline"] or []):
                return True
        return False

    assert postgres_running()
    process.terminate()
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while postgres_running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not postgres_running()
