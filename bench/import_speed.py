"""Import speed and memory: the real English Psy-Insight file, and a synthetic corpus compared
with PostgreSQL's own COPY of the same turn rows.

    python -m bench.import_speed [--dialogues 10000] [--turns 30]

Each measurement runs in a fresh subprocess on a fresh database (so peak RSS is that import's
own), against $DATABASE_URL or an embedded server in bench/results/pg. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
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

    start = time.perf_counter()
    result = await Job(database, batch_id, listen).run(path)
    seconds = time.perf_counter() - start
    validate_s = marks.get("writing", start) - start
    await database.engine.dispose()
    assert result.status == "succeeded", result.errors[:3]
    rows = result.dialogues_new + result.turns + result.annotations
    return {
        "seconds": round(seconds, 3),
        "validate_and_stage_s": round(validate_s, 3),
        "write_s": round(seconds - validate_s, 3),
        "write_rows_per_s": round(rows / max(seconds - validate_s, 1e-9)),
        "dialogues": result.dialogues_new,
        "turns": result.turns,
        "source_annotations": result.annotations,
    }


async def _copy_turns(url: str, dialogues: int, turns: int) -> dict[str, Any]:
    """PostgreSQL's own COPY of the same turn rows into a table shaped like `turns`."""
    import asyncpg

    rng = random.Random(7)
    rows = [
        (
            d,
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
    conn = await asyncpg.connect(url)
    await conn.execute(
        "CREATE TABLE copy_turns (LIKE turns INCLUDING DEFAULTS INCLUDING IDENTITY "
        "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
    )
    start = time.perf_counter()
    await conn.copy_records_to_table(
        "copy_turns",
        records=rows,
        columns=[
            "dialogue_id",
            "position",
            "speaker",
            "participant",
            "content",
            "original_id",
            "extras",
            "layout",
            "flags",
        ],
    )
    seconds = time.perf_counter() - start
    await conn.close()
    return {
        "seconds": round(seconds, 3),
        "rows": len(rows),
        "rows_per_s": round(len(rows) / seconds),
    }


def child(args: argparse.Namespace) -> None:
    """One measurement in this process; prints its JSON."""
    server = server_url()
    name, url = fresh_database(server)
    try:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if args.scenario == "copy":
            out = asyncio.run(_copy_turns(url, args.dialogues, args.turns))
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
    parser.add_argument("--child", dest="scenario")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.scenario:
        child(args)
        return
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}
    }
    if REAL_EN.exists():
        report["real_en"] = measure("import", path=REAL_EN)
        report["real_en"]["file_mb"] = round(REAL_EN.stat().st_size / 2**20, 2)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({max(args.dialogues // 10, 1), args.dialogues}):
            path = Path(tmp) / f"synthetic-{n}.json"
            synthetic_file(path, n, args.turns)
            result = measure("import", path=path)
            result["file_mb"] = round(path.stat().st_size / 2**20, 1)
            result["turns_per_s"] = round(result["turns"] / result["seconds"])
            result["rows_per_s"] = round(
                (result["turns"] + result["source_annotations"] + result["dialogues"])
                / result["seconds"]
            )
            report[f"synthetic_{n}x{args.turns}"] = result
            path.unlink()
    copy = measure("copy", dialogues=args.dialogues, turns=args.turns)
    report["copy_turns"] = copy
    big = report[f"synthetic_{args.dialogues}x{args.turns}"]
    report["ratio_turns_per_s_vs_copy"] = round(big["turns_per_s"] / copy["rows_per_s"], 3)
    report["ratio_rows_per_s_vs_copy"] = round(big["rows_per_s"] / copy["rows_per_s"], 3)
    report["ratio_write_phase_rows_per_s_vs_copy"] = round(
        big["write_rows_per_s"] / copy["rows_per_s"], 3
    )
    print(json.dumps(report, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"import-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
