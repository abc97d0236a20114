"""`python -m bench.run [--quick] [--only start|pages]`: run the benchmarks, print JSON.

The JSON document goes to stdout and to bench/results/<name>-<timestamp>.json; progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import load, start
from bench.common import RESULTS_DIR, cpu_calibration_ms, git_info, log, machine_info, utc_now


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs, 2 s per load level")
    parser.add_argument("--only", choices=("start", "pages"), help="run one benchmark only")
    parser.add_argument("--name", default="bench", help="results file name prefix")
    parser.add_argument(
        "--client-procs", type=int, default=2, help="load generator processes (default 2)"
    )
    parser.add_argument("--duration", type=float, help="seconds measured per load level")
    parser.add_argument(
        "--quiet-pct",
        type=float,
        default=15.0,
        help="before each load level wait until the machine is below this busy %% (default 15)",
    )
    parser.add_argument(
        "--quiet-max-wait", type=float, default=120.0, help="longest wait for quiet, seconds"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="attempts per load level when other jobs disturb it (default 3, quick 1)",
    )
    parser.add_argument("--cold", type=int, help="cold start runs")
    parser.add_argument("--warm", type=int, help="warm start runs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quick: bool = args.quick
    cold_runs = args.cold if args.cold is not None else (1 if quick else 3)
    warm_runs = args.warm if args.warm is not None else (2 if quick else 5)
    duration = args.duration if args.duration is not None else (2.0 if quick else 5.0)
    warmup = 0.5 if quick else 1.0

    began = time.monotonic()
    doc: dict[str, Any] = {
        "name": args.name,
        "date": utc_now(),
        "quick": quick,
        "git": git_info(),
        "machine": machine_info(),
    }
    doc["machine"]["cpu_calibration_ms_at_start"] = cpu_calibration_ms()
    if args.only in (None, "start"):
        doc["start"] = start.run(cold_runs, warm_runs)
    if args.only in (None, "pages"):
        doc["pages"] = load.run(
            concurrency=(1, 8, 32),
            duration_s=duration,
            warmup_s=warmup,
            client_procs=max(1, args.client_procs),
            quiet_pct=args.quiet_pct,
            quiet_max_wait_s=args.quiet_max_wait,
            repeat=args.repeat if args.repeat is not None else (1 if quick else 3),
        )
    pg = doc.get("pages", {}).get("postgres") or doc.get("start", {}).get("postgres") or {}
    doc["machine"]["postgres"] = pg.get("version")
    doc["machine"]["cpu_calibration_ms_at_end"] = cpu_calibration_ms()
    doc["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    doc["elapsed_s"] = round(time.monotonic() - began, 1)

    text = json.dumps(doc, indent=2, ensure_ascii=False)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-quick" if quick else ""
    path = RESULTS_DIR / f"{args.name}{suffix}-{stamp}.json"
    path.write_text(text + "\n")
    log(f"wrote {path}")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
