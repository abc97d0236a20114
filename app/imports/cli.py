"""The `import` command: the same two-phase import as the web, with a terminal progress bar."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from app.errors import DomainError
from app.imports import service
from app.imports.runner import Job
from app.imports.schemas import ImportRequest
from app.models import ImportBatch
from app.projects.service import get_by_slug
from app.runtime import init_database


def file_digest(path: Path) -> tuple[bytes, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.digest(), size


def run_import(
    url: str, path: Path, slug: str, fmt: str | None, source: str, add_new_labels: bool
) -> bool:
    """Import a local file; prints the report; True when it succeeded."""
    try:
        request = ImportRequest(source=source, format=fmt, add_new_labels=add_new_labels)
    except ValidationError as exc:
        typer.secho(
            f"error: {exc.errors()[0]['msg'].removeprefix('Value error, ')}", err=True, fg="red"
        )
        raise typer.Exit(2) from exc
    batch = asyncio.run(_run(url, path, slug, request))
    report(batch)
    return batch.status == "succeeded"


async def _run(url: str, path: Path, slug: str, request: ImportRequest) -> ImportBatch:
    database = init_database(url, pool_size=3)
    try:
        async with database.sessionmaker() as db, db.begin():
            try:
                project = await get_by_slug(db, slug)
                batch = await service.new_batch(db, project, None, path.name, request)
                batch.sha256, batch.size_bytes = await asyncio.to_thread(file_digest, path)
                await service.refuse_duplicate(db, batch, request.source)
            except DomainError as exc:
                typer.secho(f"error: {exc}", err=True, fg="red")
                raise typer.Exit(1) from exc
            batch_id, size = batch.id, batch.size_bytes
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("validating", total=size)

            def show(values: dict[str, Any]) -> None:
                bar.update(
                    task,
                    completed=values.get("bytes_done", 0),
                    description=str(values.get("status", "validating")),
                )

            return await Job(database, batch_id, show).run(path)
    finally:
        await database.engine.dispose()


def report(batch: ImportBatch) -> None:
    """The same report as the web page's, on the terminal."""
    if batch.status == "succeeded":
        typer.secho(f"import #{batch.id} succeeded ({batch.format})", fg="green")
        typer.echo(
            f"  dialogues: {batch.dialogues_new} new, {batch.dialogues_matched} already present\n"
            f"  turns: {batch.turns}\n  source annotations: {batch.annotations}\n"
            f"  flagged turns (all emotion labels): {batch.flagged_turns}"
        )
        for dim, labels in (batch.new_labels or {}).items():
            typer.echo(f"  labels added to {dim}: {', '.join(sorted(labels))}")
        return
    typer.secho(f"import #{batch.id} failed: {batch.message}", err=True, fg="red")
    for err in batch.errors:
        typer.echo(f"  {describe(err)}", err=True)


def describe(err: dict[str, Any]) -> str:
    """One error with its location: record, dialog_id, turn, field, line."""
    where = []
    if err.get("record") is not None:
        where.append(f"record {err['record']}")
    if err.get("dialog_id"):
        where.append(f"dialog_id {err['dialog_id']}")
    if err.get("position") is not None:
        where.append(f"turn {err['position']}")
    if err.get("path"):
        where.append(f"field {err['path']}")
    if err.get("line") is not None:
        where.append(f"line {err['line']}")
    place = ", ".join(where)
    return (
        f"{place}: {err['message']} [{err['code']}]"
        if place
        else f"{err['message']} [{err['code']}]"
    )
