"""Agreement speed: cold and cached figures, and peak memory (issue 5).

    python -m bench.agreement_speed [--sizes 1000,10000] [--repeat 3] [--requests 200]

Per size, a fresh migrated database (on $DATABASE_URL's server, else the embedded PostgreSQL in
bench/results/pg; dropped at the end) gets N dialogues x 30 turns in one project with the seeded
Psy-Insight codebook, 3 annotators with a submitted assignment on every dialogue and their
labels on 4 dimensions (psychotherapy and topic per session, emotion per client turn, strategy
per counselor turn: ~1M ratings at 10,000 dialogues), generated in SQL.

1. Cold: `app.agreement.service.recompute` (SQL gather, numpy, storing the cache row) in a new
   process per run, so peak RSS is that computation's own; phases timed by wrapping the
   service's steps, SQL statements by SQLAlchemy's cursor events.
2. Cached: `psy-annotator serve --no-worker` on that database, a lead logged in, sequential
   GETs of the dashboard and the JSON API (served from the cache row), against /healthz and a
   bare asyncpg read of the cache row; and the fragments the dashboard loads by itself (the
   confusion matrices), when they have a figure to show.
3. Memory: the cold process's peak RSS, serve's RSS after the cached load.

Prints one JSON document and saves it to bench/results/agreement-<UTC time>.json; progress on
stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import html
import importlib
import inspect
import json
import os
import pstats
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.client import SESSION_COOKIE
from bench.common import (
    CSRF_META,
    HOST,
    RESULTS_DIR,
    ROOT,
    cpu_calibration_ms,
    cpu_delta,
    cpu_seconds,
    free_port,
    git_info,
    log,
    machine_info,
    median,
    postgres_processes,
    remove_tree,
    serve_command,
    system_busy,
    utc_now,
    wait_quiet,
)

SLUG = "bench-agreement"
LEAD_EMAIL = "lead@bench.example.org"
ANNOTATORS = 3
KEEP = 0.75  # probability that an annotator keeps the unit's shared "true" labels
TWO_LABELS = 0.35  # probability of a second emotion label (true sets and random ones)
FIRST_MONDAY = datetime(2026, 10, 5, tzinfo=UTC)  # submissions: the 4 weeks from here
SPREAD_MINUTES = 28 * 24 * 60
TARGETS = {"cold_1k_s": 1.0, "cold_10k_s": 5.0, "cached_page_p50_ms": 50.0,
           "peak_rss_10k_mb": 1024.0}  # fmt: skip
QUIET_PCT = 20.0  # wait (bounded) for the machine to be under this busy % before a measurement
DISTURBED_PCT = 25.0  # other jobs' CPU (% of one core) above which a cold run is measured again
MARKER = b'id="agreement-table"'
FRAGMENT_MARKER = b"<figure"  # a lazily loaded confusion matrix that has something to show
CHILD_URL_ENV = "BENCH_AGREEMENT_DATABASE_URL"  # the cold child's database


def _bench(name: str) -> Any:
    """bench.import_speed / bench.annotate_speed, imported at run time: their helpers are reused
    as they are, and mypy is not sent into them (bench/import_speed.py and tests/db.py, which it
    imports, do not pass `mypy --strict`)."""
    return importlib.import_module(f"bench.{name}")


# --- data ---------------------------------------------------------------------------------------

BATCHES = """
INSERT INTO import_batches (project_id, source_id, file_name, format, requested_format, sha256,
    size_bytes, status, records_done, dialogues_new, turns, started_at, finished_at, created_at)
SELECT :p, :source, 'bench-' || b || '.json', 'psy_insight_v7', 'psy_insight_v7',
       sha256(convert_to('bench-' || b, 'UTF8')), 0, 'succeeded', :half, :half, :half_turns,
       TIMESTAMPTZ '2026-10-01 08:00+00' + (b - 1) * interval '7 days',
       TIMESTAMPTZ '2026-10-01 08:01+00' + (b - 1) * interval '7 days',
       TIMESTAMPTZ '2026-10-01 08:00+00' + (b - 1) * interval '7 days'
FROM generate_series(1, 2) AS b
RETURNING id
"""
DIALOGUES = """
INSERT INTO dialogues (project_id, external_id, language, metadata, source_format, turn_count,
    fingerprint, import_batch_id, session_labels, search, assigned_count)
SELECT :p, 'bench-' || lpad(g::text, 6, '0'), 'en', '{}'::json, 'psy_insight_v7', :turns,
       sha256(convert_to('bench-' || g, 'UTF8')),
       CASE WHEN g <= :half THEN CAST(:b1 AS bigint) ELSE CAST(:b2 AS bigint) END,
       '{}'::jsonb, ''::tsvector, :annotators
FROM generate_series(1, :n) AS g
"""
TURNS = """
INSERT INTO turns (dialogue_id, position, speaker, participant, content, original_id, extras)
SELECT d.id, t, CASE WHEN t % 2 = 0 THEN 'client' ELSE 'counselor' END,
       CASE WHEN t % 2 = 0 THEN 'Client' ELSE 'Counselor' END,
       'I have been feeling tired and worried about work, sleep and family (' ||
       md5(d.id::text || '-' || t) || ').', d.external_id || '-' || t, '{}'::json
FROM dialogues d CROSS JOIN generate_series(0, :turns - 1) AS t
WHERE d.project_id = :p
"""
# One statement: the statement-level trigger of migration 0005 bumps data_version once.
ASSIGNMENTS = """
INSERT INTO assignments (project_id, dialogue_id, user_id, status, codebook_version,
    seconds_spent, started_at, submitted_at, updated_at, created_at)
SELECT :p, d.id, u.id, 'submitted', :cbv, 900,
       x.at - interval '15 minutes', x.at, x.at, x.at - interval '1 hour'
FROM dialogues d
CROSS JOIN unnest(CAST(:users AS bigint[])) AS u(id)
CROSS JOIN LATERAL (
    SELECT CAST(:first AS timestamptz) + make_interval(mins => ((hashtext(d.id::text || ':'
        || u.id::text)::bigint & 2147483647) % CAST(:spread AS int))::int) AS at
) AS x
WHERE d.project_id = :p
"""
# Every "random" choice is a hash of the unit (and annotator), so the data set is the same on
# every run: a unit's true labels from its key, each annotator's keep-or-not and random labels
# from the key and the user id. One or two labels: i, and j = another index than i.
ANNOTATIONS = """
WITH lab AS MATERIALIZED (
    SELECT cd.key, array_agg(cl.value ORDER BY cl.position, cl.id) AS v
    FROM codebook_dimensions cd JOIN codebook_labels cl ON cl.dimension_id = cd.id
    WHERE cd.project_id = :p AND cd.kind = 'label'
    GROUP BY cd.key
), units AS (
    SELECT d.id AS dialogue_id, -1 AS position, k.key AS dimension
    FROM dialogues d CROSS JOIN (VALUES ('psychotherapy'), ('topic')) AS k(key)
    WHERE d.project_id = :p
    UNION ALL
    SELECT t.dialogue_id, t.position,
           CASE WHEN t.speaker = 'client' THEN 'emotion' ELSE 'strategy' END
    FROM turns t JOIN dialogues d ON d.id = t.dialogue_id
    WHERE d.project_id = :p
), hashed AS (
    SELECT s.id AS assignment_id, s.user_id, s.submitted_at, u.dialogue_id, u.position,
           u.dimension, lab.v, cardinality(lab.v) AS n,
           CASE WHEN u.dimension = 'emotion' THEN :two_per_mille ELSE 0 END AS two,
           x.k, x.k || ':' || s.user_id AS ku
    FROM units u
    JOIN lab ON lab.key = u.dimension
    JOIN assignments s ON s.dialogue_id = u.dialogue_id AND s.project_id = :p
    CROSS JOIN LATERAL (
        SELECT u.dialogue_id || ':' || u.position || ':' || u.dimension AS k
    ) AS x
), picked AS (
    SELECT h.*,
           (hashtext(ku || '/keep')::bigint & 2147483647) % 1000 < :keep_per_mille AS keep,
           (hashtext(k || '/i')::bigint & 2147483647) % n AS ti,
           (hashtext(k || '/j')::bigint & 2147483647) % (n - 1) AS tj,
           (hashtext(k || '/2')::bigint & 2147483647) % 1000 < two AS t2,
           (hashtext(ku || '/i')::bigint & 2147483647) % n AS ri,
           (hashtext(ku || '/j')::bigint & 2147483647) % (n - 1) AS rj,
           (hashtext(ku || '/2')::bigint & 2147483647) % 1000 < two AS r2
    FROM hashed h
), sets AS (
    SELECT p.*,
           CASE WHEN keep THEN ti ELSE ri END AS i,
           CASE WHEN keep THEN (ti + 1 + tj) % n ELSE (ri + 1 + rj) % n END AS j,
           CASE WHEN keep THEN t2 ELSE r2 END AS two_labels
    FROM picked p
)
INSERT INTO annotations (assignment_id, dialogue_id, position, dimension, labels, version,
    codebook_version, updated_by_id, updated_at)
SELECT assignment_id, dialogue_id, position, dimension,
       CASE WHEN two_labels THEN ARRAY[v[least(i, j) + 1], v[greatest(i, j) + 1]]
            ELSE ARRAY[v[i + 1]] END,
       1, :cbv, user_id, submitted_at - interval '2 minutes'
FROM sets
"""


async def make_dataset(url: str, dialogues: int, turns: int) -> dict[str, Any]:
    """The project, its people and the rated dialogues; set-based SQL, not the ORM."""
    from sqlalchemy import text

    from app.codebook.core import seed_default
    from app.models import Project
    from app.runtime import init_database, use_database
    from tests.factories import password_hash

    steps: dict[str, float] = {}
    rows: dict[str, int] = {}
    database = init_database(url, pool_size=1)
    try:
        async with database.sessionmaker() as db, db.begin():
            t0 = time.perf_counter()
            project = Project(slug=SLUG, name="Agreement bench", overlap=ANNOTATORS)
            db.add(project)
            await db.flush()
            await seed_default(db, project, None)
            p, cbv = project.id, project.codebook_version
            hashed = password_hash()
            people = [
                (f"annotator{i}@bench.example.org", f"Annotator {i}") for i in range(ANNOTATORS)
            ]
            ids = []
            for email, name in [*people, (LEAD_EMAIL, "Lead")]:
                ids.append(
                    await db.scalar(
                        text("INSERT INTO users (email, name, password_hash) "
                             "VALUES (:e, :n, :h) RETURNING id"),
                        {"e": email, "n": name, "h": hashed},
                    )
                )  # fmt: skip
            users, lead = ids[:ANNOTATORS], ids[ANNOTATORS]
            memberships = [(u, "annotator") for u in users] + [(lead, "lead")]
            for user_id, role in memberships:
                await db.execute(
                    text("INSERT INTO project_memberships (project_id, user_id, role) "
                         "VALUES (:p, :u, :r)"),
                    {"p": p, "u": user_id, "r": role},
                )  # fmt: skip
            source = await db.scalar(
                text("INSERT INTO annotation_sources (project_id, name) "
                     "VALUES (:p, 'bench-import') RETURNING id"), {"p": p}
            )  # fmt: skip
            half = dialogues // 2
            params = {"p": p, "source": source, "half": half, "half_turns": half * turns}
            batches = list((await db.execute(text(BATCHES), params)).scalars())
            steps["project_codebook_users_s"] = time.perf_counter() - t0

            async def run(name: str, sql: str, values: dict[str, Any]) -> None:
                t = time.perf_counter()
                result = await db.execute(text(sql), values)
                steps[f"{name}_s"] = time.perf_counter() - t
                rows[name] = int(getattr(result, "rowcount", -1))

            await run("dialogues", DIALOGUES, {"p": p, "turns": turns, "n": dialogues,
                      "half": half, "b1": batches[0], "b2": batches[1],
                      "annotators": ANNOTATORS})  # fmt: skip
            await run("turns", TURNS, {"p": p, "turns": turns})
            await run("assignments", ASSIGNMENTS, {"p": p, "cbv": cbv, "users": users,
                      "first": FIRST_MONDAY, "spread": SPREAD_MINUTES})  # fmt: skip
            # The planner needs the new rows' statistics for the big join (hash, not loops).
            await db.execute(text("ANALYZE dialogues, turns, assignments"))
            await run("annotations", ANNOTATIONS, {"p": p, "cbv": cbv,
                      "keep_per_mille": round(1000 * KEEP),
                      "two_per_mille": round(1000 * TWO_LABELS)})  # fmt: skip
            version = await db.scalar(text("SELECT data_version FROM projects WHERE id = :p"),
                                      {"p": p})  # fmt: skip
            per_dimension = {
                str(k): int(v)
                for k, v in (
                    await db.execute(
                        text("SELECT dimension, count(*) FROM annotations GROUP BY 1 ORDER BY 1")
                    )
                ).all()
            }
        t = time.perf_counter()
        async with database.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # VACUUM too: sets hint bits and the visibility map as autovacuum would have, so
            # the first cold run does not pay for the bulk load's first read.
            await conn.execute(text("VACUUM ANALYZE dialogues, turns, assignments, annotations"))
        steps["vacuum_analyze_s"] = time.perf_counter() - t
    finally:
        await database.engine.dispose()
        use_database(None)
    return {
        "dialogues": dialogues,
        "turns_per_dialogue": turns,
        "annotators": ANNOTATORS,
        "project_id": p,
        "project": SLUG,
        "lead": LEAD_EMAIL,
        "import_batches": len(batches),
        "rows": rows,
        "ratings_per_dimension": per_dimension,
        "data_version_after_load": int(version or 0),
        "keep_true_label_p": KEEP,
        "second_emotion_label_p": TWO_LABELS,
        "load_steps_s": {k: round(v, 2) for k, v in steps.items()},
        "load_s": round(sum(steps.values()), 2),
    }


# --- cold: one computation in its own process ---------------------------------------------------


class Stopwatch:
    """Inclusive time per wrapped function; nested wrapped calls count for the outermost.

    `active` names the async step running now (to attribute SQL statements to it); with
    `grouped`, only calls made while `group` is set (inside one dimension's figures) count.
    """

    def __init__(self, grouped: bool = False) -> None:
        self.totals: dict[str, float] = {}
        self.calls: list[tuple[str, float]] = []
        self.depth = 0
        self.grouped = grouped
        self.group = ""  # a prefix for the names (the dimension being computed)
        self.active: str | None = None
        self.rss: list[tuple[str, float]] = []  # (name, peak RSS in MB when that call ended)

    def add(self, name: str, seconds: float) -> None:
        if self.grouped and not self.group:
            return
        key = f"{self.group}{name}"
        self.totals[key] = self.totals.get(key, 0.0) + seconds
        self.calls.append((key, seconds))
        self.rss.append((key, _rss_mb()))

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                self.active = name
                try:
                    return await fn(*args, **kwargs)
                finally:
                    self.active = None
                    self.add(name, time.perf_counter() - t0)

            return timed_async

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            outer = self.depth == 0
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                if outer:
                    self.add(name, time.perf_counter() - t0)

        return timed


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _plan_nodes(node: dict[str, Any], out: list[dict[str, Any]], depth: int = 0) -> None:
    out.append({
        "node": "  " * depth + str(node.get("Node Type")),
        "relation": node.get("Relation Name"),
        "actual_ms": node.get("Actual Total Time"),
        "rows": node.get("Actual Rows"),
        "workers": node.get("Workers Launched"),
    })  # fmt: skip
    for child in node.get("Plans", []):
        _plan_nodes(child, out, depth + 1)


def instrument(phases: Stopwatch, steps: Stopwatch) -> list[str]:
    """Wrap the service's steps (phases) and what `compute.figures` calls (steps), by name, so
    the app's code is timed as it is; whatever is not found is simply not split out."""
    from app.agreement import compute, service
    from app.codebook import core as codebook

    done = []
    for module, name, label in ((service, "gather", "gather"), (codebook, "load", "codebook_load"),
                                (compute, "build", "build")):  # fmt: skip
        if inspect.isfunction(getattr(module, name, None)):
            setattr(module, name, phases.wrap(label, getattr(module, name)))
            done.append(f"{module.__name__}.{name}")
    for name, value in list(vars(compute).items()):
        if name in ("build", "figures") or name.startswith("__"):
            continue
        if inspect.isfunction(value):
            setattr(compute, name, steps.wrap(name, value))
        elif inspect.ismodule(value) and value.__name__.startswith("app.agreement."):
            for inner, fn in list(vars(value).items()):
                if inspect.isfunction(fn) and not inner.startswith("__"):
                    setattr(value, inner, steps.wrap(f"{name}.{inner}", fn))
    figures = getattr(compute, "figures", None)
    if inspect.isfunction(figures):
        done.append("app.agreement.compute.figures")
        count = [0]

        def timed_figures(*args: Any, **kwargs: Any) -> Any:
            steps.group = f"{count[0]}."
            count[0] += 1
            t0 = time.perf_counter()
            try:
                return figures(*args, **kwargs)
            finally:
                steps.group = ""
                phases.add("figures", time.perf_counter() - t0)

        setattr(compute, "figures", timed_figures)  # noqa: B010 (mypy: no assigning to a def)
    return done


async def cold(args: argparse.Namespace) -> dict[str, Any]:
    """Time one `recompute` in this fresh process; then (outside the timing) diagnostics."""
    from sqlalchemy import event, text

    from app.agreement import service
    from app.agreement.gather import Filters
    from app.models import Project
    from app.runtime import init_database

    phases, steps = Stopwatch(), Stopwatch(grouped=True)
    instrumented = instrument(phases, steps)
    database = init_database(os.environ[CHILD_URL_ENV], pool_size=1)
    statements: list[dict[str, Any]] = []
    started: list[tuple[float, str | None]] = []

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any
    ) -> None:
        started.append((time.perf_counter(), phases.active))

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        t0, phase = started.pop()
        statements.append({"sql": " ".join(statement.split())[:60], "phase": phase,
                           "s": time.perf_counter() - t0, "full": statement,
                           "params": params})  # fmt: skip

    event.listen(database.engine.sync_engine, "before_cursor_execute", before)
    event.listen(database.engine.sync_engine, "after_cursor_execute", after)
    filters = Filters(dimension=args.dimension or None)
    pg = Path(args.pgdata) if args.pgdata else None
    out: dict[str, Any] = {"filters": filters.as_dict(), "instrumented": instrumented}
    async with database.sessionmaker() as db:
        project = await db.get(Project, args.project_id)
        assert project is not None
        await db.execute(text("SELECT 1"))  # the pooled connection is open, as in serve
        statements.clear()
        out["rss_before_mb"] = _rss_mb()
        profiler = cProfile.Profile() if args.profile_to else None
        pg0 = cpu_seconds(postgres_processes(pg)) if pg else {}
        busy0, _, total0 = system_busy()
        me0 = time.process_time()
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        found = await service.recompute(db, project, filters)
        t1 = time.perf_counter()
        await db.commit()
        t2 = time.perf_counter()
        if profiler is not None:
            profiler.disable()
        me = time.process_time() - me0
        busy1, _, total1 = system_busy()
        pg_s = cpu_delta(pg0, cpu_seconds(postgres_processes(pg))) if pg else None
        out["peak_rss_mb"] = _rss_mb()
        wall = t2 - t0
        cores = psutil.cpu_count() or 1
        machine = 100 * (busy1 - busy0) / max(total1 - total0, 1e-9) * cores
        ours = 100 * (me + (pg_s or 0.0)) / wall
        out["cpu"] = {
            "window_s": round(wall, 3),
            "process_cpu_pct": round(100 * me / wall, 1),
            "postgres_cpu_pct": round(100 * pg_s / wall, 1) if pg_s is not None else None,
            "machine_busy_pct_of_one_core": round(machine, 1),
            "other_cpu_pct": round(machine - ours, 1),
        }
        gathered = [s for s in statements if s["phase"] == "gather"]
        gather_sql = sum(s["s"] for s in gathered)
        upsert_sql = sum(
            s["s"] for s in statements
            if s["phase"] is None and "agreement_results" in s["sql"]
            and not s["sql"].upper().startswith("SELECT")
        )  # fmt: skip
        totals = phases.totals
        accounted = sum(totals.values()) + upsert_sql
        named = [r["dimension"] for r in found.dimensions if "alpha" in r]
        per_dimension: dict[str, Any] = {}
        build_calls = [s for k, s in phases.calls if k == "build"]
        figure_calls = [s for k, s in phases.calls if k == "figures"]
        for i, dim in enumerate(named):
            row = next(r for r in found.dimensions if r["dimension"] == dim)
            per_dimension[dim] = {
                "ratings": row["alpha"].get("n_ratings"),
                "units": row["alpha"].get("n_units"),
                "build_s": round(build_calls[i], 4) if i < len(build_calls) else None,
                "figures_s": round(figure_calls[i], 4) if i < len(figure_calls) else None,
                "figure_steps_s": {
                    k.split(".", 1)[1]: round(v, 4)
                    for k, v in sorted(steps.totals.items(), key=lambda kv: -kv[1])
                    if k.startswith(f"{i}.") and v >= 0.0005
                },
            }
        result_bytes = len(json.dumps({"dimensions": found.dimensions}))
        # peak RSS so far at the end of each step, build and figures named by dimension
        rss_after: list[tuple[str, float]] = []
        for key, mb in phases.rss:
            if key in ("build", "figures"):
                index = len([k for k, _ in rss_after if k.startswith(key)])
                key = f"{key} {named[index] if index < len(named) else index}"
            rss_after.append((key, mb))
        out |= {
            "seconds": round(wall, 3),
            "recompute_s": round(t1 - t0, 3),
            "commit_s": round(t2 - t1, 3),
            "duration_ms_stored": found.duration_ms,
            "phases_s": {
                "codebook_load": round(totals.get("codebook_load", 0.0), 4),
                "gather_total": round(totals.get("gather", 0.0), 4),
                "gather_sql_execute_fetch_decode": round(gather_sql, 4),
                "gather_to_numpy": round(totals.get("gather", 0.0) - gather_sql, 4),
                "build": round(totals.get("build", 0.0), 4),
                "figures": round(totals.get("figures", 0.0), 4),
                "store_upsert_sql": round(upsert_sql, 4),
                # data_version query, serialising the result to JSON for the upsert, glue
                "rest": round((t1 - t0) - accounted, 4),
            },
            "sql_statements": [
                {"sql": s["sql"], "phase": s["phase"], "ms": round(1000 * s["s"], 2)}
                for s in statements
            ],
            "per_dimension": per_dimension,
            "peak_rss_mb_after_step": dict(rss_after),
            "result_json_bytes": result_bytes,
            "data_version": found.data_version,
        }
        if profiler is not None:
            out["profile"] = profile_summary(profiler, Path(args.profile_to))
        if args.diagnose and gathered:
            # Outside the timing and after the peak RSS: the gather alone, warm, and the plan
            # of its slowest statement.
            t = time.perf_counter()
            await getattr(service, "gather")(db, project.id, filters)  # noqa: B009
            out["gather_warm_second_call_s"] = round(time.perf_counter() - t, 3)
            slowest = max(gathered, key=lambda s: float(s["s"]))
            conn = await db.connection()
            explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + slowest["full"]
            plan = (await conn.exec_driver_sql(explain, slowest["params"])).scalar_one()
            plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
            nodes: list[dict[str, Any]] = []
            _plan_nodes(plan["Plan"], nodes)
            out["gather_sql_explain"] = {
                "statement": slowest["sql"],
                "execution_ms": plan.get("Execution Time"),
                "planning_ms": plan.get("Planning Time"),
                "nodes": nodes,
            }
            await db.rollback()
    await database.engine.dispose()
    return out


def profile_summary(profiler: cProfile.Profile, path: Path) -> dict[str, Any]:
    """The profile saved as .pstats, and its top functions by own and cumulative time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(path))
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (file, line, name), (cc, nc, tt, ct, _callers) in raw.items():
        where = f"{Path(file).name}:{line}" if line else file
        rows.append({"function": f"{name} ({where})", "calls": nc, "primitive_calls": cc,
                     "own_s": round(tt, 4), "cumulative_s": round(ct, 4)})  # fmt: skip
    top_own = sorted(rows, key=lambda r: -r["own_s"])[:25]
    top_cum = sorted(rows, key=lambda r: -r["cumulative_s"])[:40]
    return {"pstats_file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
            "top_own_time": top_own, "top_cumulative": top_cum}  # fmt: skip


def child_main(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(cold(args))))


def run_cold(
    url: str,
    project_id: int,
    pgdata: Path | None,
    *,
    dimension: str = "",
    diagnose: bool = False,
    profile: Path | None = None,
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.agreement_speed", "--child-cold",
            "--project-id", str(project_id), "--dimension", dimension,
            "--pgdata", str(pgdata or "")]  # fmt: skip
    if diagnose:
        argv.append("--diagnose")
    if profile is not None:
        argv += ["--profile-to", str(profile)]
    t0 = time.monotonic()
    env = {**os.environ, CHILD_URL_ENV: url}  # not on the command line: it may hold a password
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"cold run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(time.monotonic() - t0, 2)
    return result


def cold_measured(
    label: str, attempts: int, max_wait_s: float, measure: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Quiet gate, measure; again (up to `attempts`) when other jobs used the CPU meanwhile."""
    tries: list[dict[str, Any]] = []
    for attempt in range(1, max(1, attempts) + 1):
        waited, busy = wait_quiet(QUIET_PCT, max_wait_s)
        calibration = cpu_calibration_ms()
        result = measure()
        result |= {"attempt": attempt, "cpu_calibration_ms": calibration,
                   "quiet_gate": {"waited_s": round(waited, 1),
                                  "machine_busy_before_pct": round(busy)}}  # fmt: skip
        tries.append(result)
        ph = result["phases_s"]
        log(f"{label}: {result['seconds']} s (gather {ph['gather_total']}, build {ph['build']}, "
            f"figures {ph['figures']}, upsert {ph['store_upsert_sql']}), peak RSS "
            f"{result['peak_rss_mb']} MB, other cpu {result['cpu']['other_cpu_pct']}%, "
            f"calibration {calibration} ms")  # fmt: skip
        if result["cpu"]["other_cpu_pct"] < DISTURBED_PCT:
            break
    kept = min(tries, key=lambda r: float(r["cpu"]["other_cpu_pct"]))
    kept["other_attempts"] = [
        {k: r[k] for k in ("seconds", "peak_rss_mb", "cpu", "cpu_calibration_ms")}
        for r in tries
        if r is not kept
    ]
    return kept


def cold_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return round(median([float(r["phases_s"][key]) for r in runs]), 3)

    seconds = [float(r["seconds"]) for r in runs]
    return {
        "runs_s": seconds,
        "median_s": round(median(seconds), 3),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "median_phases_s": {k: med(k) for k in runs[0]["phases_s"]},
        "peak_rss_mb": [r["peak_rss_mb"] for r in runs],
        "peak_rss_mb_max": max(float(r["peak_rss_mb"]) for r in runs),
        "rss_before_mb": runs[0]["rss_before_mb"],
        "cpu_calibration_ms": [r["cpu_calibration_ms"] for r in runs],
        "other_cpu_pct": [r["cpu"]["other_cpu_pct"] for r in runs],
    }


# --- cached: the page through serve -------------------------------------------------------------


def log_in(base_url: str, email: str) -> str:
    """The lead's session cookie, through the login form (CSRF token from the meta tag)."""
    import httpx

    from tests.factories import PASSWORD

    with httpx.Client(base_url=base_url, timeout=60) as client:
        match = CSRF_META.search(client.get("/login").text)
        if match is None:
            raise RuntimeError("no CSRF meta tag on /login")
        form = {"email": email, "password": PASSWORD, "csrf_token": match.group(1)}
        answer = client.post("/login", data=form)
        cookie = client.cookies.get(SESSION_COOKIE)
        if answer.status_code != 303 or not cookie:
            raise RuntimeError(f"login failed: {answer.status_code} {answer.text[:300]}")
        return cookie


def first_get(base_url: str, cookie: str) -> dict[str, Any]:
    """The dashboard once (fills or uses the cache), then the API once: is it the cache?"""
    import httpx

    cookies = {SESSION_COOKIE: cookie}
    with httpx.Client(base_url=base_url, timeout=600, cookies=cookies) as client:
        t0 = time.perf_counter()
        page = client.get(f"/projects/{SLUG}/agreement")
        page_s = time.perf_counter() - t0
        if page.status_code != 200 or MARKER not in page.content:
            raise RuntimeError(f"dashboard: {page.status_code} {page.text[:500]}")
        api = client.get(f"/api/v1/projects/{SLUG}/agreement")
        if api.status_code != 200:
            raise RuntimeError(f"API: {api.status_code} {api.text[:500]}")
        body = api.json()
    if not body["current"] or body["recomputing"]:
        raise RuntimeError(f"the cache row is not current: {str(body)[:500]}")
    return {
        "first_dashboard_get_ms": round(1000 * page_s, 1),
        "cache_current": body["current"],
        "computed_at": body["computed_at"],
        "cached_duration_ms": body["duration_ms"],
        "data_version": body["data_version"],
        "dimensions_with_figures": [d["dimension"] for d in body["dimensions"] if "alpha" in d],
        "lazy_fragments": lazy_fragments(page.text),
    }


def fetch_once(base_url: str, path: str, cookie: str) -> tuple[int, bytes]:
    """One GET as htmx sends it (set-up and checks only, not timed)."""
    import httpx

    headers = {"HX-Request": "true"}
    with httpx.Client(base_url=base_url, timeout=600, cookies={SESSION_COOKIE: cookie}) as client:
        answer = client.get(path, headers=headers)
    return answer.status_code, answer.content


def lazy_fragments(page: str) -> list[str]:
    """URLs the dashboard loads by itself later (htmx `hx-trigger="revealed"`: the confusion
    matrices since 1f77a12), so that what a full view costs can be measured too."""
    out = []
    for tag in re.findall(r"<[^>]*hx-trigger=\"revealed\"[^>]*>", page):
        found = re.search(r'hx-get="([^"]+)"', tag)
        if found:
            out.append(html.unescape(found.group(1)))
    return out


async def timed_gets(
    port: int, request: bytes, count: int, warmup: int, window: Any, marker: bytes | None
) -> dict[str, Any]:
    """`count` GETs one after another on one warm keep-alive connection; every answer is
    checked (status 200, and the marker in the body when given)."""
    annotate = _bench("annotate_speed")
    conn = annotate.Connection(port)
    bad: list[str] = []

    def check(status: int, body: bytes) -> None:
        if (status != 200 or (marker is not None and marker not in body)) and len(bad) < 5:
            bad.append(f"{status}: {body[:200]!r}")

    try:
        for _ in range(warmup):
            check(*(await conn.exchange(request)))
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        size = 0
        window.begin()
        for _ in range(count):
            sent = time.perf_counter()
            status, body = await conn.exchange(request)
            latencies.append(time.perf_counter() - sent)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            check(status, body)
            size = len(body)
        cpu: dict[str, Any] = window.end()
    finally:
        conn.close()
    if bad:
        raise RuntimeError(f"unexpected answers: {bad}")
    latency: dict[str, Any] = annotate.latency_ms(latencies)
    return {
        "requests": count,
        "warmup_requests": warmup,
        "errors": count - statuses.get("200", 0),
        "statuses": statuses,
        "bytes": size,
        **latency,
        "server_cpu_ms_per_request": round(1000 * cpu["server_cpu_s"] / count, 2),
        "cpu": cpu,
    }


async def bare_sql(url: str, project_id: int, count: int, warmup: int) -> dict[str, Any]:
    """The cache row read with asyncpg on one open connection: the bare query on the same data."""
    import asyncpg  # type: ignore[import-untyped]

    from app.agreement.gather import Filters
    from app.agreement.service import params_key

    key = params_key(Filters())
    sql = "SELECT result FROM agreement_results WHERE project_id = $1 AND params_key = $2"
    conn = await asyncpg.connect(url)
    try:
        for _ in range(warmup):
            await conn.fetchval(sql, project_id, key)
        latencies = []
        value = None
        for _ in range(count):
            t0 = time.perf_counter()
            value = await conn.fetchval(sql, project_id, key)
            latencies.append(time.perf_counter() - t0)
    finally:
        await conn.close()
    if value is None:
        raise RuntimeError("no cache row for Filters()")
    latency: dict[str, Any] = _bench("annotate_speed").latency_ms(latencies)
    return {"query": sql, "requests": count, "bytes": len(value.encode()), **latency}


def cached(
    args: argparse.Namespace, url: str, project_id: int, pgdata: Path | None, tmp: Path
) -> dict[str, Any]:
    annotate = _bench("annotate_speed")
    env = {**os.environ, "DATABASE_URL": url, "PSY_ANNOTATOR_ENV": "test",
           "PSY_ANNOTATOR_SECRET_KEY": secrets.token_urlsafe(48),
           "PSY_ANNOTATOR_DEMO": "false", "PSY_ANNOTATOR_DATA_DIR": str(tmp / "data"),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    env.pop("PSY_ANNOTATOR_DATABASE_URL", None)  # it would win over DATABASE_URL
    port = free_port()
    argv = [*serve_command(), "--no-worker", "--host", HOST, "--port", str(port)]
    serve = annotate.Server("serve", argv, env, tmp / "serve.log", port)
    out: dict[str, Any] = {}
    window = None
    try:
        log(f"starting {' '.join(argv[-6:])}")
        out["serve_start_s"] = round(serve.start(), 2)
        proc: psutil.Process = serve.psutil_process()
        base_url = f"http://{HOST}:{port}"
        cookie = log_in(base_url, LEAD_EMAIL)
        out["serve_rss_mb_after_login"] = round(proc.memory_info().rss / 2**20, 1)
        out["first"] = first_get(base_url, cookie)
        log(f"first dashboard GET {out['first']['first_dashboard_get_ms']} ms (cache current)")
        window = annotate.CpuWindow(proc, pgdata, url)
        paths = {"page": (f"/projects/{SLUG}/agreement", "text/html", MARKER),
                 "api": (f"/api/v1/projects/{SLUG}/agreement", "application/json", None),
                 "healthz": ("/healthz", "text/plain", None)}  # fmt: skip
        for key, (path, accept, marker) in paths.items():
            request = annotate.get_request(port, path, None if key == "healthz" else cookie, accept)

            async def measure(request: bytes = request, marker: bytes | None = marker) -> Any:
                return await timed_gets(
                    port, request, args.requests, args.warmup_requests, window, marker
                )

            result: dict[str, Any] = annotate.measured(
                f"{key} ({path})", measure, args.attempts, args.quiet_max_wait
            )
            out[key] = {"path": path} | result
        fragments = []
        for path in out["first"]["lazy_fragments"]:
            plain = annotate.get_request(port, path, cookie, "text/html")
            request = plain.replace(b"\r\n\r\n", b"\r\nHX-Request: true\r\n\r\n")
            status, body = fetch_once(base_url, path, cookie)
            if status != 200 or FRAGMENT_MARKER not in body:
                # e.g. a figure not computed yet: not timed, since it is not the real thing
                text = " ".join(re.sub(rb"<[^>]+>", b" ", body).decode(errors="replace").split())
                log(f"fragment {path}: {status}, {len(body)} bytes without a figure: {text[:80]}")
                fragments.append({"path": path, "status": status, "bytes": len(body),
                                  "figure": False, "text": text[:200]})  # fmt: skip
                continue

            async def measure_fragment(request: bytes = request) -> Any:
                return await timed_gets(port, request, args.fragment_requests,
                                        args.warmup_requests // 2, window,
                                        FRAGMENT_MARKER)  # fmt: skip

            result = annotate.measured(  # for information: one attempt
                f"fragment {path}", measure_fragment, 1, args.quiet_max_wait
            )
            fragments.append({"path": path, "figure": True} | result)
        out["lazy_fragments"] = fragments
        shown = [f for f in fragments if f["figure"]]
        out["page_plus_lazy_fragments_p50_ms"] = (
            round(out["page"]["p50_ms"] + sum(f["p50_ms"] for f in shown), 2)
            if len(shown) == len(fragments)
            else None  # some fragment had no figure to show
        )
        out["serve_rss_mb_after_load"] = round(proc.memory_info().rss / 2**20, 1)
        out["bare_sql"] = asyncio.run(
            bare_sql(url, project_id, args.requests, args.warmup_requests)
        )
        log(f"bare SQL read of the cache row: p50 {out['bare_sql']['p50_ms']} ms, "
            f"{out['bare_sql']['bytes']} bytes")  # fmt: skip
        page, api, bare, health = out["page"], out["api"], out["bare_sql"], out["healthz"]
        out["ratios"] = {
            # like the other benches' ratios: the fraction of the bare speed (sequential
            # requests/s = 1 / latency), and the same as "times slower"
            "page_vs_bare_sql": round(bare["p50_ms"] / page["p50_ms"], 4),
            "api_vs_bare_sql": round(bare["p50_ms"] / api["p50_ms"], 4),
            "page_vs_healthz": round(health["p50_ms"] / page["p50_ms"], 4),
            "page_p50_over_bare_sql_p50_x": round(page["p50_ms"] / bare["p50_ms"], 1),
            "api_p50_over_bare_sql_p50_x": round(api["p50_ms"] / bare["p50_ms"], 1),
            "page_p50_over_healthz_p50_x": round(page["p50_ms"] / health["p50_ms"], 1),
        }
    finally:
        if window is not None:
            window.close()
        out["serve_stop"] = serve.stop()
        out["serve_tracebacks"] = serve.tracebacks()
    return out


# --- the run ------------------------------------------------------------------------------------


def one_size(
    args: argparse.Namespace, server: str, pgdata: Path | None, size: int, stamp: str
) -> dict[str, Any]:
    import_speed = _bench("import_speed")
    name, url = import_speed.fresh_database(server)
    log(f"{size} dialogues: fresh database {name}")
    tmp = Path(tempfile.mkdtemp(prefix="psy-bench-agreement-"))
    out: dict[str, Any] = {}
    try:
        out["data"] = asyncio.run(make_dataset(url, size, args.turns))
        data = out["data"]
        log(f"{size} dialogues: loaded {data['rows']} in {data['load_s']} s "
            f"(data_version {data['data_version_after_load']})")  # fmt: skip
        project_id = int(data["project_id"])
        if args.profile:  # first, so that the cache row the page shows is a plain run's
            path = RESULTS_DIR / f"agreement-profile-{size}-{stamp}.pstats"
            log(f"cold {size}: a run under cProfile (not counted) -> {path.name}")
            out["profile_run"] = run_cold(url, project_id, pgdata, profile=path)
        runs = []
        for i in range(args.repeat):
            runs.append(
                cold_measured(
                    f"cold {size} #{i + 1}",
                    args.attempts,
                    args.quiet_max_wait,
                    functools.partial(run_cold, url, project_id, pgdata, diagnose=i == 0),
                )
            )
        out["cold"] = {"filters": "Filters() (people, all dimensions)", "runs": runs}
        out["cold"] |= cold_summary(runs)
        out["cold_emotion"] = cold_measured(
            f"cold {size} emotion only",
            args.attempts,
            args.quiet_max_wait,
            functools.partial(run_cold, url, project_id, pgdata, dimension="emotion"),
        )
        out["cached"] = cached(args, url, project_id, pgdata, tmp)
    finally:
        import_speed.drop_database(server, name)
        remove_tree(tmp)
    return out


def met(value: float | None, target: float) -> bool | None:
    return None if value is None else value < target


def figures(sizes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    def get(size: int, *path: str) -> float | None:
        node: Any = sizes.get(size)
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return float(node) if node is not None else None

    values = {
        "cold_1k_s": get(1000, "cold", "median_s"),
        "cold_10k_s": get(10000, "cold", "median_s"),
        "cached_page_p50_ms": get(10000, "cached", "page", "p50_ms"),
        "peak_rss_10k_mb": get(10000, "cold", "peak_rss_mb_max"),
    }
    notes = {
        "cold_1k_s": "median of the cold recompute runs, 1,000 dialogues",
        "cold_10k_s": "median of the cold recompute runs, 10,000 dialogues",
        "cached_page_p50_ms": "GET /projects/{slug}/agreement from the cache, 10,000 dialogues",
        "peak_rss_10k_mb": "largest peak RSS of the cold processes, 10,000 dialogues",
    }
    out = {
        key: {"value": value, "target": TARGETS[key], "met": met(value, TARGETS[key]),
              "what": notes[key] + " (met: value < target)"}
        for key, value in values.items()
    }  # fmt: skip
    # for information: the page and every fragment it loads by itself, one after another
    out["cached_page_p50_ms"]["page_plus_lazy_fragments_p50_ms"] = get(
        10000, "cached", "page_plus_lazy_fragments_p50_ms"
    )
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: dict[str, Any] = {
        "benchmark": "agreement_speed",
        "started_at": utc_now(),
        "machine": machine_info(),
        "git": git_info(),
        "cpu_calibration_ms_at_start": cpu_calibration_ms(),
        "note": (
            "shared machine: other sessions' jobs run on it too, so absolute numbers vary from "
            "run to run (see cpu_calibration_ms and other_cpu_pct per measurement)"
        ),
    }
    server = _bench("import_speed").server_url()
    pgdata = None if os.environ.get("DATABASE_URL") else RESULTS_DIR / "pg"
    report["postgres"] = "$DATABASE_URL" if pgdata is None else f"embedded, {pgdata}"
    sizes: dict[int, dict[str, Any]] = {}
    for size in args.sizes:
        sizes[size] = one_size(args, server, pgdata, size, stamp)
    report["sizes"] = {str(k): v for k, v in sizes.items()}
    report["figures"] = figures(sizes)
    report["method"] = (
        f"per size a fresh migrated database: N dialogues x {args.turns} turns, {ANNOTATORS} "
        "annotators with a submitted assignment on every dialogue, labels on psychotherapy and "
        "topic (session), emotion (client turns, 1-2 labels) and strategy (counselor turns), "
        f"each annotator keeping the unit's shared true labels with p={KEEP}; two import "
        "batches; submissions over 4 weeks; VACUUM ANALYZE after loading. Cold: "
        "service.recompute(Filters()) end to end plus its commit, in a new process per run "
        "(peak RSS = ru_maxrss of that process), after opening its one pooled connection; "
        "phases by wrapping the service's steps, SQL by cursor events. Cached: `psy-annotator "
        "serve --no-worker` (uvicorn, 1 process), a lead logged in through /login, "
        f"{args.warmup_requests} warm-up then {args.requests} sequential GETs on one keep-alive "
        "connection (latency = send to last byte), every answer checked; server CPU per "
        "request from serve's process times; the bare query reads the same cache row with "
        "asyncpg on one open connection. Quiet gate before each measurement "
        f"(<= {args.quiet_max_wait:.0f} s for < {QUIET_PCT:.0f} % busy), up to "
        f"{args.attempts} attempts when other jobs used >= {DISTURBED_PCT:.0f} % of a core, "
        "keeping the least disturbed"
    )
    report["git_at_end"] = git_info()  # the app may have changed underneath a long run
    report["finished_at"] = utc_now()
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.agreement_speed", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="dialogue counts, comma-separated")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="cold runs per size (processes)")
    parser.add_argument("--requests", type=int, default=200, help="measured GETs per endpoint")
    parser.add_argument("--warmup-requests", type=int, default=20)
    parser.add_argument(
        "--fragment-requests", type=int, default=50, help="measured GETs per lazy fragment"
    )
    parser.add_argument("--attempts", type=int, default=2, help="tries per disturbed measurement")
    parser.add_argument(
        "--quiet-max-wait", type=float, default=10.0, help="longest wait for a quiet machine, s"
    )
    parser.add_argument(
        "--profile", action="store_true", help="one more cold run per size under cProfile"
    )
    parser.add_argument("--child-cold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dimension", default="", help=argparse.SUPPRESS)
    parser.add_argument("--pgdata", default="", help=argparse.SUPPRESS)
    parser.add_argument("--diagnose", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_cold:
        child_main(args)
        return
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    if args.repeat < 1 or any(s < 2 for s in args.sizes):
        parser.error("--repeat must be at least 1 and every size at least 2")
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"agreement-{stamp}.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
