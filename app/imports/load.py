"""Streaming a validated file into the tables, chunk by chunk, inside the import's transaction.

Each chunk is matched against the project (on a separate connection: it only needs what other
imports committed), given ids, turned into rows and sent with COPY on the transaction's
connection, in batches of a few chunks. Each COPY runs as a task, so PostgreSQL ingests one
batch while Python reads and builds the next; at most one COPY is in flight. Nothing is visible
to others before the caller commits, and the caller rolls back as soon as the file shows any
problem.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.formats.model import Dialogue
from app.imports.rows import (
    ANNOTATION_COLUMNS,
    DIALOGUE_COLUMNS,
    TURN_COLUMNS,
    Rows,
    TurnRecord,
    ValueRecord,
)
from app.imports.writer import fingerprint, merge_labels, session_labels
from app.models import AnnotationSource, SourceAnnotation
from app.models import Dialogue as DialogueRow
from app.runtime import Database

# Rows per COPY: a few chunks' worth. Fewer, larger COPYs cost PostgreSQL less per row (one
# COPY per 250-dialogue chunk took it 5-9 % more CPU on the benchmark's file); ~30 MB more RSS.
BATCH_ROWS = 50_000

if TYPE_CHECKING:
    from app.imports.runner import Plan

log = logging.getLogger(__name__)


class Loader:
    """Writes chunks of valid dialogues of one batch through ``driver`` (an asyncpg connection
    inside the import's transaction)."""

    def __init__(
        self,
        database: Database,
        driver: Any,
        project_id: int,
        source: AnnotationSource,
        batch_id: int,
        canonical: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.database = database
        self.driver = driver
        self.project_id = project_id
        self.source = source
        self.rows = Rows(project_id, source.id, batch_id, canonical)
        self.counts = self.rows.counts
        self._copying: asyncio.Task[None] | None = None

    async def add(self, dialogues: list[Dialogue], plan: Plan) -> None:
        """Match a chunk against the project; while the file is clean, send its rows."""
        async with self.database.sessionmaker() as db:
            existing = await self._existing(db, [d.external_id for d in dialogues])
            new = [d for d in dialogues if d.external_id not in existing]
            ids = await self._ids(db, len(new)) if new else []
        matched = []
        for d in dialogues:
            if d.external_id not in existing:
                continue
            did, fp, labels, used = existing[d.external_id]
            if fp != fingerprint(d):
                plan.error(
                    "different_dialogue",
                    f"dialog_id {d.external_id!r} already exists in the project "
                    "with different turns",
                    dialog_id=d.external_id,
                )
            elif used:
                plan.error(
                    "already_labelled",
                    f"dialog_id {d.external_id!r} already has labels from source "
                    f"{self.source.name!r}",
                    dialog_id=d.external_id,
                )
            else:
                plan.matched[did] = merge_labels(
                    labels, session_labels(d.annotations, self.rows.canonical)
                )
                matched.append((d, did))
        if plan.errors:
            return
        # built in a thread: the event loop keeps feeding the COPY in flight meanwhile
        await asyncio.to_thread(self._build, list(zip(new, ids, strict=True)), matched)
        if self.rows.pending() >= BATCH_ROWS:
            await self._send()

    async def flush(self) -> None:
        """Send the rows not sent yet and wait for all COPYs (raising their errors)."""
        if self.rows.pending():
            await self._send()
        await self._wait()

    async def _send(self) -> None:
        await self._wait()
        self._copying = asyncio.create_task(self._copy(*self.rows.take()))

    async def _wait(self) -> None:
        copying, self._copying = self._copying, None
        if copying is not None:
            await copying

    async def settle(self) -> None:
        """Wait for the COPY in flight whatever its outcome; the rest is dropped (the
        transaction is abandoned)."""
        copying, self._copying = self._copying, None
        if copying is not None:
            await asyncio.wait([copying])
            if not copying.cancelled() and copying.exception() is not None:
                log.info("a COPY of an abandoned import failed: %s", copying.exception())

    def _build(self, new: list[tuple[Dialogue, int]], matched: list[tuple[Dialogue, int]]) -> None:
        for d, dialogue_id in new:
            self.rows.add_new(d, dialogue_id)
        for d, dialogue_id in matched:
            self.rows.add_values(d, dialogue_id)
            self.counts.dialogues_matched += 1

    async def _copy(
        self, dialogues: bytes, turns: list[TurnRecord], values: list[ValueRecord]
    ) -> None:
        if dialogues:
            await self.driver.copy_to_table(
                "dialogues",
                source=io.BytesIO(dialogues),
                columns=list(DIALOGUE_COLUMNS),
                format="text",
            )
        if turns:
            await self.driver.copy_records_to_table(
                "turns", records=turns, columns=list(TURN_COLUMNS)
            )
        if values:
            await self.driver.copy_records_to_table(
                "source_annotations", records=values, columns=list(ANNOTATION_COLUMNS)
            )

    async def _existing(
        self, db: AsyncSession, external_ids: list[str]
    ) -> dict[str, tuple[int, bytes, Any, bool]]:
        """Dialogues of the project with these ids: id, fingerprint, session labels, and
        whether this source already has values on them."""
        has_source = (
            select(SourceAnnotation.id)
            .where(
                SourceAnnotation.dialogue_id == DialogueRow.id,
                SourceAnnotation.source_id == self.source.id,
            )
            .exists()
        )
        rows = await db.execute(
            select(
                DialogueRow.id,
                DialogueRow.external_id,
                DialogueRow.fingerprint,
                DialogueRow.session_labels,
                has_source,
            ).where(
                DialogueRow.project_id == self.project_id,
                DialogueRow.external_id.in_(external_ids),
            )
        )
        return {ext: (did, fp, labels, used) for did, ext, fp, labels, used in rows}

    async def _ids(self, db: AsyncSession, n: int) -> list[int]:
        return list(
            await db.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence('dialogues', 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": n},
            )
        )
