"""Live progress of an import, written outside the import's own transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, BinaryIO

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import ImportBatch

Listener = Callable[[dict[str, Any]], None]


class CountingFile:
    """A binary file that counts the bytes read through it (the readers' progress)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


class Progress:
    """Throttled updates of a batch's status and counters on an autocommit connection.

    They run while the import's transaction is open, and must never wait for it: that
    transaction holds only FOR KEY SHARE on the batch row (its own lock and its rows' foreign
    keys), which an UPDATE of non-key columns does not conflict with. A lock stronger than
    that on the row, or a unique index over these columns, would make the import wait for
    itself.
    """

    def __init__(
        self, engine: AsyncEngine, batch_id: int, listener: Listener | None = None
    ) -> None:
        self.engine = engine
        self.batch_id = batch_id
        self.listener = listener
        self.last = 0.0
        self.values: dict[str, Any] = {}

    async def update(self, *, force: bool = False, **values: Any) -> None:
        self.values.update(values)
        if self.listener is not None:
            self.listener(dict(self.values))
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(
                update(ImportBatch).where(ImportBatch.id == self.batch_id).values(**self.values)
            )
