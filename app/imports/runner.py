"""Running one import: every record is checked, and while the file is clean its rows stream
into the tables in one transaction, committed only when the whole file turned out clean.

A file with any problem writes nothing (the transaction rolls back) and its batch lists every
problem (up to a limit) with its place. Parsing runs in a worker thread one chunk ahead of the
writing, so PostgreSQL ingests a chunk while Python reads the next; a few chunks of dialogues are
in memory at a time, whatever the file size.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.service import now
from app.codebook import core as codebook
from app.formats.errors import FormatError, RecordError
from app.formats.model import Dialogue
from app.formats.reader import DialogueReader, ReadOptions
from app.formats.storable import NUL, nul_fields
from app.i18n import N_
from app.imports.load import Loader
from app.imports.progress import CountingFile, Listener, Progress
from app.models import AnnotationSource, CodebookLabel, ImportBatch, Project
from app.runtime import Database

log = logging.getLogger(__name__)
CHUNK = 250
MAX_ERRORS = 100
Item = Dialogue | list[RecordError]


@dataclass
class Plan:
    """What validation found: problems, or what the write phase needs to know."""

    format: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # dialog_id -> its first record
    records: int = 0  # records read so far (the reader yields one item per record, in order)
    # dialogues already in the project that get this source's values: id -> session labels
    matched: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    new_labels: dict[str, dict[str, int]] = field(default_factory=dict)

    def error(self, code: str, message: str, **where: Any) -> None:
        if len(self.errors) <= MAX_ERRORS:  # the problems, plus the reader's "stopped" note
            found = {"code": code, "message": message, **where}
            # stored as jsonb, which cannot hold NUL either: shown as the escape it was in JSON
            shown = {k: v.replace(NUL, "\\u0000") if isinstance(v, str) else v
                     for k, v in found.items()}  # fmt: skip
            self.errors.append(shown)


def record_error(err: RecordError) -> dict[str, Any]:
    return {
        "code": str(err.code),
        "message": err.message,
        "record": err.record,
        "dialog_id": err.dialog_id,
        "position": err.position,
        "path": err.path,
        "line": err.line,
    }


def _take(items: Iterator[Any], n: int) -> list[Any]:
    return list(itertools.islice(items, n))


class Job:
    """One import batch being run (by the worker or the CLI)."""

    def __init__(self, database: Database, batch_id: int, listener: Listener | None = None):
        self.database = database
        self.batch_id = batch_id
        self.progress = Progress(database.engine, batch_id, listener)

    async def run(self, path: Path) -> ImportBatch:
        """Check and stream, then commit; the batch ends succeeded or failed, never half-written."""
        async with self.database.sessionmaker() as db:
            batch, project, source = await self._load(db)
            cb = await codebook.load(db, project)
        options = ReadOptions(
            format=batch.requested_format,
            vocabulary=codebook.vocabulary(cb),
            collect_new_labels=batch.add_new_labels,
            max_errors=MAX_ERRORS,
            name=batch.file_name,
        )
        await self.progress.update(status="validating", started_at=now(), force=True)
        try:
            async with self.database.sessionmaker() as db:
                driver = await self._begin(db)
                loader = Loader(
                    self.database,
                    driver,
                    project.id,
                    source,
                    self.batch_id,
                    codebook.aliases(cb),
                )
                try:
                    plan = await self._validate(path, options, loader)
                except BaseException:
                    await loader.settle()  # the connection is free again before it goes back
                    raise
                if not plan.errors:
                    return await self._write(db, plan, project, cb, loader)
                await loader.settle()  # its outcome does not matter: everything rolls back
                await db.rollback()
            message = N_("The file has errors; nothing was imported.")
            return await self._finish("failed", plan, message=message)
        except Exception:
            log.exception("import %s crashed", self.batch_id)
            message = N_("The import failed on our side; nothing was imported.")
            await self._finish("failed", Plan(), message=message)
            raise

    async def _begin(self, db: AsyncSession) -> Any:
        """Open the import's transaction; the asyncpg connection the COPYs go through.

        SQLAlchemy sends BEGIN with the first statement, and a COPY on the raw connection is
        not one: without a statement first, each COPY would commit on its own.
        """
        await db.execute(
            select(ImportBatch.id)
            .where(ImportBatch.id == self.batch_id)
            .with_for_update(read=True, key_share=True)  # FOR KEY SHARE, as the rows' FKs take
        )
        raw = await (await db.connection()).get_raw_connection()
        driver = raw.driver_connection
        if driver is None or not driver.is_in_transaction():
            raise RuntimeError("the import's COPYs would run outside its transaction")
        return driver

    async def _load(self, db: AsyncSession) -> tuple[ImportBatch, Project, AnnotationSource]:
        batch = await db.get(ImportBatch, self.batch_id)
        assert batch is not None, f"import batch {self.batch_id} does not exist"
        project = await db.get(Project, batch.project_id)
        source = await db.get(AnnotationSource, batch.source_id)
        assert project is not None
        assert source is not None
        return batch, project, source

    async def _chunks(
        self, path: Path, options: ReadOptions, plan: Plan
    ) -> AsyncIterator[list[Item]]:
        """Chunks of parsed items, read in a thread one chunk ahead of the caller; whole-file
        problems become one error."""
        with path.open("rb") as raw:
            counted = CountingFile(raw)
            reader = DialogueReader(cast(BinaryIO, counted), options)
            items = iter(reader)
            done = 0
            ahead = asyncio.ensure_future(asyncio.to_thread(_take, items, CHUNK))
            try:
                while True:
                    try:
                        chunk = await ahead
                    except FormatError as exc:
                        plan.error(str(exc.code), exc.message, record=exc.record, line=exc.line)
                        return
                    if not chunk:
                        plan.format = reader.format
                        if options.collect_new_labels:
                            plan.new_labels = reader.new_labels
                        return
                    ahead = asyncio.ensure_future(asyncio.to_thread(_take, items, CHUNK))
                    done += len(chunk)
                    await self.progress.update(bytes_done=counted.count, records_done=done)
                    yield chunk
            finally:
                # a worker thread cannot be stopped: let it finish before the file closes
                await asyncio.wait([ahead])
                if not ahead.cancelled():
                    ahead.exception()  # retrieved: it was handled above, or another error is

    async def _validate(self, path: Path, options: ReadOptions, loader: Loader) -> Plan:
        """Check every record; while the file is clean, stream its rows."""
        plan = Plan()
        async for chunk in self._chunks(path, options, plan):
            valid = []
            for item in chunk:
                index = plan.records
                plan.records += 1
                if isinstance(item, list):
                    for err in item:
                        plan.error(**record_error(err))
                    continue
                first = plan.seen.setdefault(item.external_id, index)
                if first != index:
                    plan.error(
                        "duplicate_dialog_id",
                        f"dialog_id {item.external_id!r} appears twice in the file "
                        f"(first at record[{first}])",
                        record=index,
                        dialog_id=item.external_id,
                        path="dialog_id",
                    )
                for position, where in nul_fields(item):
                    plan.error(
                        "nul_character",
                        "contains the NUL character (\\u0000), which the database cannot "
                        "store: remove it from the file",
                        record=index,
                        dialog_id=item.external_id,
                        path=where,
                        position=position,
                    )
                valid.append(item)
            if valid and not plan.errors:
                await loader.add(valid, plan)
        return plan

    async def _write(
        self,
        db: AsyncSession,
        plan: Plan,
        project: Project,
        cb: codebook.CodebookView,
        loader: Loader,
    ) -> ImportBatch:
        """The clean file's last rows, new labels, merged session labels; then commit."""
        await self.progress.update(status="writing", force=True)
        await loader.flush()
        if plan.new_labels:
            await self._add_labels(db, project, cb, plan.new_labels)
        if plan.matched:
            await loader.driver.execute(
                "UPDATE dialogues SET session_labels = v.s::jsonb "
                "FROM unnest($1::bigint[], $2::text[]) AS v(i, s) WHERE dialogues.id = v.i",
                list(plan.matched),
                [json.dumps(v) for v in plan.matched.values()],
            )
        c = loader.counts
        values = {
            "status": "succeeded",
            "format": plan.format,
            "dialogues_new": c.dialogues_new,
            "dialogues_matched": c.dialogues_matched,
            "turns": c.turns,
            "annotations": c.annotations,
            "flagged_turns": c.flagged_turns,
            "new_labels": plan.new_labels,
            "finished_at": now(),
            "message": "",
        }
        await db.execute(
            update(ImportBatch).where(ImportBatch.id == self.batch_id).values(**values)
        )
        record(
            db,
            None,
            "import.succeed",
            "import_batch",
            self.batch_id,
            project_id=project.id,
            dialogues=c.dialogues_new + c.dialogues_matched,
            turns=c.turns,
        )
        batch = await db.get(ImportBatch, self.batch_id)
        assert batch is not None
        await db.commit()
        await self.progress.update(**values, force=True)
        return batch

    async def _add_labels(
        self,
        db: AsyncSession,
        project: Project,
        cb: codebook.CodebookView,
        new: dict[str, dict[str, int]],
    ) -> None:
        """The lead chose to add the file's unknown labels to the vocabulary."""
        for key, counts in new.items():
            dim = cb.get(key)
            if dim is None:
                continue
            start = len(dim.labels)
            for offset, value in enumerate(sorted(counts)):
                db.add(
                    CodebookLabel(
                        dimension_id=dim.dimension.id,
                        value=value,
                        name_en=value,
                        name_zh=value,
                        position=start + offset,
                    )
                )
        await db.flush()
        added = ", ".join(f"{k}: {', '.join(sorted(v))}" for k, v in new.items())
        await codebook.record_version(
            db, project, None, f"labels added by import #{self.batch_id}: {added}"
        )

    async def _finish(self, status: str, plan: Plan, message: str) -> ImportBatch:
        values = {
            "status": status,
            "errors": plan.errors,
            "error_count": sum(e["code"] != "too_many_errors" for e in plan.errors),
            "format": plan.format,
            "message": message,
            "finished_at": now(),
        }
        await self.progress.update(**values, force=True)
        async with self.database.sessionmaker() as db:
            batch = await db.get(ImportBatch, self.batch_id)
            assert batch is not None
            return batch
