"""Import speed and memory: the real English Psy-Insight file, and a synthetic corpus compared
with PostgreSQL's own COPY of the same turn rows.

    python -m bench.import_speed [--dialogues 10000] [--turns 30] [--repeat 1]

Each measurement runs in a fresh subprocess on a fresh database (so peak RSS is that import's
own), against $DATABASE_URL or an embedded server in bench/results/pg. Prints one JSON document.
Besides the target's baseline (COPY of the turn rows into a table shaped like `turns`, without
its foreign key), two floors of the schema itself are measured: the same turn rows into the real
`turns` table, and every row the import writes into the real tables, by COPY alone.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REAL_EN = ROOT.parent / "shared" / "datasets" / "psy-insight" / "en_data_version7.json"
EMOTIONS = ["Anxiety", "Depression", "Sadness", "Anger", "Fear", "Neutral"]
STRATEGIES = ["Question", "Restatement or Paraphrasing", "Reflection of Feelings", "Information"]
WORDS = ("I have been feeling tired and worried about work sleep family school friends").split()  # noqa: SIM905 (one readable sentence)


def pg_data_dir() -> Path | None:
    """The embedded server's data directory (None on $DATABASE_URL: its CPU is not ours to see)."""
    return None if os.environ.get("DATABASE_URL") else ROOT / "bench" / "results" / "pg"


class CpuMeter:
    """CPU seconds of this process, of the embedded PostgreSQL, and of the whole machine."""

    def __init__(self) -> None:
        from bench.common import cpu_seconds, postgres_processes, system_busy

        pgdata = pg_data_dir()
        self.pg = (lambda: cpu_seconds(postgres_processes(pgdata))) if pgdata else None
        self.busy = system_busy
        self.start()

    def start(self) -> None:
        self.t0, self.own0 = time.perf_counter(), time.process_time()
        self.pg0 = self.pg() if self.pg else {}
        self.busy0 = self.busy()[0]

    def stop(self) -> dict[str, Any]:
        from bench.common import cpu_delta

        wall = time.perf_counter() - self.t0
        own = time.process_time() - self.own0
        pg = cpu_delta(self.pg0, self.pg()) if self.pg else None
        machine = self.busy()[0] - self.busy0
        other = machine - own - (pg or 0.0)
        return {
            "python_cpu_s": round(own, 2),
            "postgres_cpu_s": None if pg is None else round(pg, 2),
            "other_cpu_pct": round(100 * other / max(wall, 1e-9)),  # % of one core
        }


def server_url() -> str:
    from app.db import libpq_url

    if os.environ.get("DATABASE_URL"):
        return libpq_url(os.environ["DATABASE_URL"])
    from app.embedded import start_server

    data = ROOT / "bench" / "results"
    data.mkdir(parents=True, exist_ok=True)
    uri: str = start_server(data).get_uri()
    return uri


def fresh_database(server: str) -> tuple[str, str]:
    import psycopg

    from app.cli import migrate_to_head
    from tests.db import with_database

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    migrate_to_head(url)
    return name, url


def drop_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def synthetic_file(path: Path, dialogues: int, turns: int, seed: int = 7) -> None:
    """A Psy-Insight v7 file streamed to disk, one session at a time."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for d in range(dialogues):
            dialog = []
            for t in range(turns):
                text = " ".join(rng.choices(WORDS, k=18))
                if t % 2 == 0:
                    dialog.append(
                        {
                            "speaker": "Seeker",
                            "participant": "Client",
                            "content": text,
                            "id": f"{d}-{t}",
                            "observation": "worried",
                            "emotional label": rng.sample(EMOTIONS, 2),
                        }
                    )
                else:
                    dialog.append(
                        {
                            "speaker": "Supporter",
                            "participant": "Counselor",
                            "content": text,
                            "id": f"{d}-{t}",
                            "reasoning": "explore",
                            "strategy": [rng.choice(STRATEGIES)],
                        }
                    )
            record = {
                "dialog_id": f"{d:06d}",
                "theme": "t",
                "psychotherapy": "Family Therapy",
                "topic": "Job Crisis",
                "stage": "1st Session",
                "guide": "",
                "is_same_qa": 0,
                "is_same_session": 0,
                "background": "b",
                "reasoning": "r",
                "dialog": dialog,
                "summary": "s",
            }
            out.write(("," if d else "") + "\n" + json.dumps(record, ensure_ascii=False, indent=4))
        out.write("\n]")


async def _import(url: str, path: Path) -> dict[str, Any]:
    from app.codebook.core import seed_default
    from app.imports import service
    from app.imports.cli import file_digest
    from app.imports.runner import Job
    from app.imports.schemas import ImportRequest
    from app.models import Project
    from app.runtime import init_database

    database = init_database(url, pool_size=3)
    async with database.sessionmaker() as db, db.begin():
        project = Project(slug="bench", name="Bench")
        db.add(project)
        await db.flush()
        await seed_default(db, project, None)
        batch = await service.new_batch(db, project, None, path.name, ImportRequest(source="b"))
        batch.sha256, batch.size_bytes = file_digest(path)
        batch_id = batch.id
    marks: dict[str, float] = {}

    def listen(values: dict[str, Any]) -> None:
        marks.setdefault(str(values.get("status")), time.perf_counter())

    meter = CpuMeter()
    start = time.perf_counter()
    result = await Job(database, batch_id, listen).run(path)
    seconds = time.perf_counter() - start
    cpu = meter.stop()
    stream_s = marks.get("writing", start) - start
    await database.engine.dispose()
    assert result.status == "succeeded", result.errors[:3]
    return {
        "seconds": round(seconds, 3),
        # reading, checking and COPYing chunk by chunk, until the file's last record is checked
        "read_check_stream_s": round(stream_s, 3),
        # the last chunk's COPY, new labels, merged session labels, the batch row, COMMIT
        "finish_s": round(seconds - stream_s, 3),
        "dialogues": result.dialogues_new,
        "turns": result.turns,
        "source_annotations": result.annotations,
        **cpu,
    }


def _baseline_rows(dialogues: int, turns: int) -> list[tuple[Any, ...]]:
    rng = random.Random(7)
    return [
        (
            d + 1,
            t,
            "client" if t % 2 == 0 else "counselor",
            "Client",
            " ".join(rng.choices(WORDS, k=18)),
            f"{d}-{t}",
            "{}",
            "[]",
            [],
        )
        for d in range(dialogues)
        for t in range(turns)
    ]


async def _copy_turns(url: str, dialogues: int, turns: int, path: Path) -> dict[str, Any]:
    """PostgreSQL's own COPY of the same turn rows into a table shaped like `turns` (the
    target's baseline), then two floors of the schema: those rows into the real `turns`
    table (its foreign key checked per row), and every row the import writes for `path`
    (dialogues, turns, source values, built by the import's own code) into the real tables."""
    import asyncpg

    from app.formats.reader import DialogueReader
    from app.imports.rows import ANNOTATION_COLUMNS, DIALOGUE_COLUMNS, TURN_COLUMNS, Rows

    rows = _baseline_rows(dialogues, turns)
    columns = list(TURN_COLUMNS)
    conn = await asyncpg.connect(url)
    await conn.execute(
        "CREATE TABLE copy_turns (LIKE turns INCLUDING DEFAULTS INCLUDING IDENTITY "
        "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
    )
    meter = CpuMeter()
    start = time.perf_counter()
    await conn.copy_records_to_table("copy_turns", records=rows, columns=columns)
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "rows": len(rows),
        "rows_per_s": round(len(rows) / seconds),
        **meter.stop(),
    }
    project, source, batch = await _parents(conn)
    built = Rows(project, source, batch, {})
    for i, dialogue in enumerate(DialogueReader(path)):
        assert not isinstance(dialogue, list), dialogue
        built.add_new(dialogue, i + 1)
    dialogue_text, turn_records, values = built.take()

    async def copy_dialogues() -> None:
        await conn.copy_to_table(
            "dialogues",
            source=io.BytesIO(dialogue_text),
            columns=list(DIALOGUE_COLUMNS),
            format="text",
        )

    async with conn.transaction():  # the real table, parents in place first (not timed)
        await copy_dialogues()
        meter.start()
        start = time.perf_counter()
        await conn.copy_records_to_table("turns", records=rows, columns=columns)
        seconds = time.perf_counter() - start
    out["into_real_turns"] = {
        "seconds": round(seconds, 3),
        "rows_per_s": round(len(rows) / seconds),
        **meter.stop(),
    }
    await conn.execute("TRUNCATE dialogues, turns, source_annotations CASCADE")
    async with conn.transaction():
        meter.start()
        start = time.perf_counter()
        await copy_dialogues()
        middle = time.perf_counter()
        await conn.copy_records_to_table("turns", records=turn_records, columns=columns)
        after_turns = time.perf_counter()
        await conn.copy_records_to_table(
            "source_annotations", records=values, columns=list(ANNOTATION_COLUMNS)
        )
        seconds = time.perf_counter() - start
    out["import_rows_into_real_tables"] = {
        "seconds": round(seconds, 3),
        "dialogues_s": round(middle - start, 3),
        "turns_s": round(after_turns - middle, 3),
        "source_annotations_s": round(seconds - (after_turns - start), 3),
        "rows": len(turn_records) + len(values) + dialogues,
        **meter.stop(),
    }
    await conn.close()
    return out


async def _parents(conn: Any) -> tuple[int, int, int]:
    """A project, a source and an import batch for the rows' foreign keys."""
    project: int = await conn.fetchval(
        "INSERT INTO projects (slug, name) VALUES ('bench', 'Bench') RETURNING id"
    )
    source: int = await conn.fetchval(
        "INSERT INTO annotation_sources (project_id, name) VALUES ($1, 'b') RETURNING id", project
    )
    batch: int = await conn.fetchval(
        "INSERT INTO import_batches (project_id, source_id, file_name, sha256, size_bytes) "
        "VALUES ($1, $2, 'synthetic.json', '\\x00', 0) RETURNING id",
        project,
        source,
    )
    return project, source, batch


def child(args: argparse.Namespace) -> None:
    """One measurement in this process; prints its JSON."""
    server = server_url()
    name, url = fresh_database(server)
    try:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if args.scenario == "copy":
            out = asyncio.run(_copy_turns(url, args.dialogues, args.turns, Path(args.path)))
        else:
            out = asyncio.run(_import(url, Path(args.path)))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["peak_rss_mb"] = round(peak / 1024, 1)
        out["rss_growth_mb"] = round((peak - base) / 1024, 1)
    finally:
        drop_database(server, name)
    print(json.dumps(out))


def measure(scenario: str, **extra: Any) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.import_speed", "--child", scenario]
    for key, value in extra.items():
        argv += [f"--{key}", str(value)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dialogues", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=1, help="runs of the big import and COPY")
    parser.add_argument("--child", dest="scenario")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.scenario:
        child(args)
        return
    from bench.common import cpu_calibration_ms, git_info

    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "git": git_info(),
        "cpu_calibration_ms": [round(cpu_calibration_ms(), 1)],
    }
    if REAL_EN.exists():
        report["real_en"] = [measure("import", path=REAL_EN) for _ in range(3)]
        report["real_en_file_mb"] = round(REAL_EN.stat().st_size / 2**20, 2)
    with tempfile.TemporaryDirectory() as tmp:
        small, big = max(args.dialogues // 10, 1), args.dialogues
        for n in sorted({small, big}):
            path = Path(tmp) / f"synthetic-{n}.json"
            synthetic_file(path, n, args.turns)
            runs = []
            for _ in range(args.repeat if n == big else 1):
                result = measure("import", path=path)
                result["file_mb"] = round(path.stat().st_size / 2**20, 1)
                result["turns_per_s"] = round(result["turns"] / result["seconds"])
                result["rows_per_s"] = round(
                    (result["turns"] + result["source_annotations"] + result["dialogues"])
                    / result["seconds"]
                )
                if n == big:  # the baseline right after, so both see the same machine
                    copy = measure("copy", dialogues=n, turns=args.turns, path=path)
                    result["copy"] = copy
                    result["ratios"] = _ratios(result, copy)
                runs.append(result)
            report[f"synthetic_{n}x{args.turns}"] = runs
            path.unlink()
    report["cpu_calibration_ms"].append(round(cpu_calibration_ms(), 1))
    ratios = [run["ratios"] for run in report[f"synthetic_{args.dialogues}x{args.turns}"]]
    report["ratio_turns_per_s_vs_copy"] = [r["turns_per_s_vs_copy"] for r in ratios]
    report["target_met"] = [r["turns_per_s_vs_copy"] >= 1 / 3 for r in ratios]
    print(json.dumps(report, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"import-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))


def _ratios(run: dict[str, Any], copy: dict[str, Any]) -> dict[str, float]:
    """The target's ratio and the others, all against the baseline COPY's turn rows/s."""
    base = copy["rows_per_s"]
    floor = copy["import_rows_into_real_tables"]
    return {
        # the target (>= 1/3): turn rows per second of the whole import, validation included
        "turns_per_s_vs_copy": round(run["turns_per_s"] / base, 3),
        "all_rows_per_s_vs_copy": round(run["rows_per_s"] / base, 3),
        # the best any import could do on this schema: the same turns, and all its rows,
        # by COPY alone into the real tables (foreign keys checked per row)
        "turns_into_real_turns_vs_copy": round(copy["into_real_turns"]["rows_per_s"] / base, 3),
        "ceiling_turns_per_s_vs_copy": round(run["turns"] / floor["seconds"] / base, 3),
        # the import's time over that floor
        "import_s_over_copy_floor_s": round(run["seconds"] / floor["seconds"], 2),
    }


if __name__ == "__main__":
    main()
