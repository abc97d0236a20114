"""Figure 1: cold and warm start of `serve` on the embedded default, and how it stops."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    MARK_FIRST_START,
    Serve,
    cpu_calibration_ms,
    handle_pids,
    log,
    median,
    pg_facts,
    remove_tree,
    stop_postgres,
    stray_postgres,
    wait_quiet,
)

COLD_TARGET_S = 20.0
WARM_TARGET_S = 5.0
QUIET_PCT = 15.0  # wait (at most QUIET_MAX_WAIT_S) for the machine to be this idle first
QUIET_MAX_WAIT_S = 120.0


def _one_start(data_dir: Path, log_path: Path, *, expect_first_start: bool) -> dict[str, Any]:
    waited, busy = wait_quiet(QUIET_PCT, QUIET_MAX_WAIT_S)
    calibration = cpu_calibration_ms()
    serve = Serve(data_dir, log_path)
    serve.start()
    try:
        ready = serve.wait_ready()
    except BaseException:
        serve.stop()
        raise
    first = MARK_FIRST_START in serve.output()
    facts = pg_facts(serve.pgdata) if not expect_first_start else {}
    stop = serve.stop(signal.SIGINT)
    if first != expect_first_start:
        raise RuntimeError(f"expected first start={expect_first_start}:\n{serve.output()}")
    if expect_first_start and serve.credentials() is None:
        raise RuntimeError(f"no credentials printed on first start:\n{serve.output()}")
    if stop["stray_postgres_pids"]:
        stop_postgres(serve.pgdata)
        raise RuntimeError(f"PostgreSQL kept running after a clean stop: {stop}")
    return {
        "seconds": round(ready, 3),
        "phases": serve.phases(ready),
        "stop": stop,
        "quiet_gate": {"waited_s": round(waited, 1), "machine_busy_before_pct": round(busy, 1)},
        "cpu_calibration_ms": calibration,
        "_pg": facts,
    }


def _sigterm_probe(data_dir: Path, work: Path) -> dict[str, Any]:
    """Does SIGTERM (what systemd, Docker and Popen.terminate send) stop PostgreSQL too?"""
    serve = Serve(data_dir, work / "sigterm.log")
    serve.start()
    serve.wait_ready()
    serve_pid = serve.psutil_process().pid
    stop = serve.stop(signal.SIGTERM, timeout=30, pg_wait_s=3)
    pids_after = handle_pids(serve.pgdata)
    result: dict[str, Any] = {
        "serve_stop": stop,
        "postgres_left_running": bool(stop["stray_postgres_pids"]),
        "handle_pids_after_exit": pids_after,
        "stale_pid_left_in_handle_list": pids_after is not None and serve_pid in pids_after,
    }
    if result["postgres_left_running"]:
        # What happens next time: serve joins the orphan; does a clean SIGINT stop it now?
        again = Serve(data_dir, work / "sigterm-after.log")
        again.start()
        again.wait_ready()
        stop_again = again.stop(signal.SIGINT, pg_wait_s=3)
        result["next_clean_stop_stops_postgres"] = not stop_again["stray_postgres_pids"]
        result["next_clean_stop"] = stop_again
        stop_postgres(serve.pgdata)  # our own orphan: fast shutdown of its postmaster
    result["cleaned_up"] = not stray_postgres(serve.pgdata)
    return result


def run(cold_runs: int, warm_runs: int, sigterm_probe: bool = True) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="psy-bench-start-"))
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    pg: dict[str, Any] = {}
    probe: dict[str, Any] | None = None
    try:
        data_dir = base / "cold-0" / "data"
        for i in range(cold_runs):
            data_dir = base / f"cold-{i}" / "data"  # a brand-new, empty data dir each time
            log(f"start: cold run {i + 1}/{cold_runs} in {data_dir}")
            result = _one_start(data_dir, base / f"cold-{i}.log", expect_first_start=True)
            result.pop("_pg")
            cold.append(result)
            log(f"start: cold {result['seconds']:.2f} s {result['phases']}")
        for j in range(warm_runs):
            log(f"start: warm run {j + 1}/{warm_runs} on {data_dir}")
            result = _one_start(data_dir, base / f"warm-{j}.log", expect_first_start=False)
            pg = pg or result["_pg"]
            result.pop("_pg")
            warm.append(result)
            log(f"start: warm {result['seconds']:.2f} s {result['phases']}")
        if sigterm_probe and cold_runs:
            log("start: SIGTERM probe")
            probe = _sigterm_probe(data_dir, base)
            log(f"start: SIGTERM leaves PostgreSQL running: {probe['postgres_left_running']}")
    finally:
        for d in base.glob("*/data"):
            stop_postgres(d.resolve() / "pg")
        remove_tree(base)
    cold_s = [r["seconds"] for r in cold]
    warm_s = [r["seconds"] for r in warm]
    return {
        "method": (
            "spawn `psy-annotator serve` on the embedded default (no DATABASE_URL); time from "
            "Popen to the first 200 from GET /healthz (raw-socket poll every 20 ms); cold = new "
            "empty data dir, warm = same data dir after a clean stop (SIGINT, wait for exit and "
            "for the embedded PostgreSQL to go away)"
        ),
        "cold": {
            "runs": cold,
            "seconds": cold_s,
            "median_s": round(median(cold_s), 3) if cold_s else None,
            "target_s": COLD_TARGET_S,
            "max_s": round(max(cold_s), 3) if cold_s else None,
            "met": bool(cold_s) and median(cold_s) < COLD_TARGET_S,
            "every_run_met": bool(cold_s) and max(cold_s) < COLD_TARGET_S,
        },
        "warm": {
            "runs": warm,
            "seconds": warm_s,
            "median_s": round(median(warm_s), 3) if warm_s else None,
            "target_s": WARM_TARGET_S,
            "max_s": round(max(warm_s), 3) if warm_s else None,
            "met": bool(warm_s) and median(warm_s) < WARM_TARGET_S,
            "every_run_met": bool(warm_s) and max(warm_s) < WARM_TARGET_S,
        },
        "sigterm_probe": probe,
        "postgres": pg,
    }
