"""The load generator that runs in worker processes: closed-loop keep-alive HTTP/1.1 clients.

A minimal asyncio client rather than httpx: on a 2-core machine the client shares the CPU
with the server and PostgreSQL, and a full client library spends more CPU per request.
Each connection sends one GET, reads the whole response, and sends the next.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
SESSION_COOKIE = "psy_session"


@dataclass(frozen=True)
class WorkerSpec:
    port: int
    path: str
    cookies: tuple[str, ...]  # one per connection: connection i is client i, logged in once
    start_at: float  # time.monotonic() (system-wide on Linux) at which all connections begin
    warmup_s: float
    duration_s: float


@dataclass
class WorkerResult:
    pid: int
    connections: int
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # non-200 answers and failed exchanges within the window
    exceptions: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0  # this process's CPU time within the measured window


class ProtocolError(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, server keeps the connection open)."""
    line = await reader.readline()
    if not line:
        raise ProtocolError("connection closed")
    parts = line.split(b" ", 2)
    status = int(parts[1])
    length = 0
    chunked = False
    keep_alive = True
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"connection" and b"close" in value.lower():
            keep_alive = False
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep_alive


async def _connection(spec: WorkerSpec, cookie: str, result: WorkerResult) -> None:
    request = (
        f"GET {spec.path} HTTP/1.1\r\nHost: {HOST}:{spec.port}\r\n"
        f"Cookie: {SESSION_COOKIE}={cookie}\r\nUser-Agent: psy-bench\r\nAccept: text/html\r\n\r\n"
    ).encode()
    window_start = spec.start_at + spec.warmup_s
    window_end = window_start + spec.duration_s
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    await asyncio.sleep(max(0.0, spec.start_at - time.monotonic()))
    try:
        while True:
            sent = time.monotonic()
            if sent >= window_end:
                return
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(HOST, spec.port)
                writer.write(request)
                status, keep_alive = await _read_response(reader)
            except (OSError, ProtocolError, ValueError, asyncio.IncompleteReadError) as exc:
                done = time.monotonic()
                if window_start <= done < window_end:
                    result.errors += 1
                    name = type(exc).__name__
                    result.exceptions[name] = result.exceptions.get(name, 0) + 1
                if writer is not None:
                    writer.close()
                writer = reader = None
                await asyncio.sleep(0.01)  # bounded: no hot loop on a refused connection
                continue
            done = time.monotonic()
            if window_start <= done < window_end:
                result.latencies_s.append(done - sent)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status != 200:
                    result.errors += 1
            if not keep_alive:
                writer.close()
                writer = reader = None
    finally:
        if writer is not None:
            writer.close()


async def _cpu_window(spec: WorkerSpec, result: WorkerResult) -> None:
    window_start = spec.start_at + spec.warmup_s
    await asyncio.sleep(max(0.0, window_start - time.monotonic()))
    before = time.process_time()
    await asyncio.sleep(max(0.0, window_start + spec.duration_s - time.monotonic()))
    result.cpu_s = time.process_time() - before


async def _run(spec: WorkerSpec) -> WorkerResult:
    result = WorkerResult(pid=os.getpid(), connections=len(spec.cookies))
    tasks = [_connection(spec, cookie, result) for cookie in spec.cookies]
    await asyncio.gather(_cpu_window(spec, result), *tasks)
    return result


def run_worker(spec: WorkerSpec) -> WorkerResult:
    """Entry point in a worker process (ProcessPoolExecutor)."""
    return asyncio.run(_run(spec))


def ping() -> dict[str, Any]:
    """Start-up no-op so the pool's processes exist before the first measured level."""
    time.sleep(0.3)
    return {"pid": os.getpid()}
