"""Shared helpers: starting and stopping `psy-annotator serve`, processes, machine facts."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
HOST = "127.0.0.1"
CREDENTIALS = re.compile(r"email:\s+(\S+)\n\s+password:\s+(\S+)")
CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')
DATABASE_NAME = "psy_annotator"  # app.embedded.DATABASE_NAME (not imported: see pg_version)

# Lines `serve` prints on its way up, in order; their first appearance marks a phase.
MARK_EMBEDDED = "embedded PostgreSQL, data folder:"
MARK_FIRST_START = "First start: created the administrator"
MARK_SERVING = "serving on http://"
MARK_STARTUP_DONE = "Application startup complete."


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the JSON result."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def serve_command() -> list[str]:
    """The installed console script, as a user runs it (fallback: `python -m app`)."""
    script = Path(sys.executable).parent / "psy-annotator"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "app", "serve"]


def embedded_env(data_dir: Path) -> dict[str, str]:
    """The caller's environment without any database or app settings: the embedded default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSY_ANNOTATOR_")}
    env.pop("DATABASE_URL", None)
    env["PSY_ANNOTATOR_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def http_status(port: int, path: str = "/healthz", timeout: float = 1.0) -> int | None:
    """One raw HTTP/1.1 GET; the status code, or None when nothing answers yet.

    Deliberately cheaper than an HTTP client library: the poller must not steal CPU
    from the server it is timing on a 2-core machine.
    """
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
            )
            head = sock.recv(64)
    except OSError:
        return None
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match.group(1)) if match else None


@dataclass
class PostmasterInfo:
    pid: int
    port: int
    socket_dir: str
    status: str


def read_postmaster(pgdata: Path) -> PostmasterInfo | None:
    """postmaster.pid of the embedded server (read only: never join the server ourselves,
    or this process would count as one of its users and keep it alive)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8:
        return None
    try:
        return PostmasterInfo(int(lines[0]), int(lines[3]), lines[4].strip(), lines[7].strip())
    except ValueError:
        return None


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """The postmaster of `pgdata` and all its children (backends, checkpointer, io workers...)."""
    info = read_postmaster(pgdata)
    if info is None:
        return []
    try:
        master = psutil.Process(info.pid)
        if master.name() != "postgres":
            return []
        return [master, *master.children(recursive=True)]
    except psutil.Error:
        return []


def stray_postgres(pgdata: Path) -> list[int]:
    """Any postgres process still serving `pgdata` (its postmaster has `-D pgdata`)."""
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and str(pgdata) in cmdline:
            found.append(proc.pid)
    return found


def stop_postgres(pgdata: Path, timeout: float = 20) -> bool:
    """Fast-shutdown (SIGINT) a postmaster for `pgdata` that we started; True when gone."""
    pids = stray_postgres(pgdata)
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    while stray_postgres(pgdata) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not stray_postgres(pgdata)


def tree_memory(root: psutil.Process) -> int:
    """RSS in bytes of `root` and its descendants, leaving out any postgres process."""
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            if proc.name() == "postgres":
                continue
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def processes_memory(procs: list[psutil.Process], pss: bool = True) -> tuple[int, int | None]:
    """(sum of RSS, sum of PSS or None) for processes; PSS splits shared pages fairly."""
    rss, pss_total = 0, 0
    pss_ok = pss
    for proc in procs:
        try:
            if pss_ok:
                full = proc.memory_full_info()
                rss += full.rss
                pss_total += full.pss
            else:
                rss += proc.memory_info().rss
        except psutil.AccessDenied:
            pss_ok = False
            with contextlib.suppress(psutil.Error):
                rss += proc.memory_info().rss
        except psutil.Error:
            continue
    return rss, (pss_total if pss_ok else None)


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    """user+system CPU seconds per pid, including children it has reaped.

    Reaped children matter for PostgreSQL: a backend that connects and exits between two
    snapshots is never seen alive, but the postmaster's children_user/children_system
    then hold its CPU time.
    """
    out: dict[int, float] = {}
    for proc in procs:
        try:
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two `cpu_seconds` snapshots of a process tree.

    New pids count from zero; a pid gone by `after` was reaped, so its whole lifetime is
    in its parent's children times and its `before` value is taken off again.
    """
    spent = sum(value - before.get(pid, 0.0) for pid, value in after.items())
    return spent - sum(value for pid, value in before.items() if pid not in after)


@dataclass
class Serve:
    """One `psy-annotator serve` process on the embedded default, output in a log file."""

    data_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    spawned_at: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    _seen: int = 0

    @property
    def pgdata(self) -> Path:
        return self.data_dir.resolve() / "pg"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as out:
            self.spawned_at = time.monotonic()
            self.process = subprocess.Popen(
                [*serve_command(), "--host", HOST, "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=embedded_env(self.data_dir),
                cwd=ROOT,
                start_new_session=True,  # our Ctrl-C must not reach it: we stop it ourselves
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _note_progress(self, now: float) -> None:
        """Time (from spawn) at which each start-up line and the ready postmaster appear."""
        text = self.output()
        if len(text) > self._seen:
            self._seen = len(text)
            for mark in (MARK_EMBEDDED, MARK_FIRST_START, MARK_SERVING, MARK_STARTUP_DONE):
                if mark not in self.marks and mark in text:
                    self.marks[mark] = now - self.spawned_at
        if "postgres_ready" not in self.marks:
            info = read_postmaster(self.pgdata)
            if info is not None and info.status == "ready":
                self.marks["postgres_ready"] = now - self.spawned_at

    def wait_ready(self, timeout: float = 180, poll: float = 0.02) -> float:
        """Seconds from spawn to the first 200 from GET /healthz."""
        assert self.process is not None
        deadline = self.spawned_at + timeout
        while True:
            status = http_status(self.port, timeout=0.5)
            now = time.monotonic()
            self._note_progress(now)
            if status == 200:
                return now - self.spawned_at
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited ({self.process.returncode}):\n{self.output()}")
            if now > deadline:
                self.stop()
                raise RuntimeError(f"serve did not answer within {timeout} s:\n{self.output()}")
            time.sleep(poll)

    def phases(self, ready_s: float) -> dict[str, float | None]:
        """Split the start into phases using the marks (each within one poll, ~20 ms)."""
        m = self.marks
        emb, pg, serving, done = (
            m.get(MARK_EMBEDDED),
            m.get("postgres_ready"),
            m.get(MARK_SERVING),
            m.get(MARK_STARTUP_DONE),
        )

        def span(a: float | None, b: float | None) -> float | None:
            return round(b - a, 3) if a is not None and b is not None else None

        return {
            "python_imports_s": round(emb, 3) if emb is not None else None,
            "postgres_start_s": span(emb, pg),
            "migrate_demo_create_app_s": span(pg, serving),
            "uvicorn_lifespan_s": span(serving, done),
            "first_healthz_s": span(done, ready_s),
        }

    def credentials(self) -> tuple[str, str] | None:
        match = CREDENTIALS.search(self.output())
        return (match.group(1), match.group(2)) if match else None

    def psutil_process(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)

    def stop(
        self, sig: signal.Signals = signal.SIGINT, timeout: float = 60, pg_wait_s: float = 10
    ) -> dict[str, Any]:
        """Signal serve and wait for it to exit, then for its PostgreSQL to go away."""
        if self.process is None or self.process.poll() is not None:
            return {"signal": sig.name, "already_exited": True}
        t0 = time.monotonic()
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        exited = time.monotonic() - t0
        deadline = time.monotonic() + pg_wait_s
        while stray_postgres(self.pgdata) and time.monotonic() < deadline:
            time.sleep(0.05)
        strays = stray_postgres(self.pgdata)
        return {
            "signal": sig.name,
            "exit_code": code,
            "serve_exit_s": round(exited, 3),
            "postgres_gone_s": None if strays else round(time.monotonic() - t0, 3),
            "stray_postgres_pids": strays,
        }


def handle_pids(pgdata: Path) -> list[int] | None:
    """The embedded library's list of processes using the server (it stops on the last)."""
    try:
        import json

        value = json.loads((pgdata / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return None
    return [int(v) for v in value] if isinstance(value, list) else None


def pg_facts(pgdata: Path) -> dict[str, Any]:
    """`SELECT version()` and a few settings, over the server's Unix socket."""
    import psycopg

    info = read_postmaster(pgdata)
    if info is None:
        return {}
    with psycopg.connect(
        host=info.socket_dir,
        port=info.port,
        user="postgres",
        dbname=DATABASE_NAME,
        connect_timeout=5,
    ) as conn:
        version = conn.execute("SELECT version()").fetchone()
        names = ("shared_buffers", "max_connections", "io_method", "synchronous_commit")
        rows = conn.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(names),)
        ).fetchall()
    settings = {name: f"{setting}{' x ' + unit if unit else ''}" for name, setting, unit in rows}
    return {"version": version[0] if version else None, "settings": settings}


def machine_info() -> dict[str, Any]:
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        )
        return result.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def system_busy() -> tuple[float, float, float]:
    """(busy, steal, total) CPU seconds of the whole machine since boot."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    steal = getattr(t, "steal", 0.0)
    total = sum(t)
    return total - idle - steal, steal, total


def wait_quiet(
    threshold_pct: float, max_wait_s: float, window_s: float = 1.0
) -> tuple[float, float]:
    """Wait (bounded) until the machine is mostly idle over `window_s` before a measurement.

    On a shared machine other jobs' CPU use would be measured as our slowness; this gate
    makes that less likely, and each level reports what else ran anyway (`other_cpu_pct`).
    Returns (seconds waited, busy % of all cores in the last window).
    """
    t0 = time.monotonic()
    while True:
        busy0, _, total0 = system_busy()
        time.sleep(window_s)
        busy1, _, total1 = system_busy()
        busy_pct = 100 * (busy1 - busy0) / max(total1 - total0, 1e-9)
        waited = time.monotonic() - t0
        if busy_pct < threshold_pct or waited >= max_wait_s:
            return waited, busy_pct


def cpu_calibration_ms(rounds: int = 3) -> float:
    """Milliseconds for a fixed pure-Python loop (best of `rounds`): the machine's speed now.

    On a shared VM the same work can take noticeably longer from one minute to the next
    without any steal time showing inside the VM; this number lets runs be compared.
    """
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        x = 0
        for i in range(1_000_000):
            x += i * i
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)
