"""The uploaded file's bytes, kept in `import_chunks` until its import ends."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DomainError
from app.models import ImportChunk

CHUNK_BYTES = 1 << 20


class TooLarge(DomainError):
    status_code = 413


async def store(
    db: AsyncSession, batch_id: int, parts: AsyncIterator[bytes], limit: int
) -> tuple[bytes, int]:
    """Save a stream as 1 MiB chunks; returns its SHA-256 and size, refusing more than `limit`."""
    digest, size, seq, pending = hashlib.sha256(), 0, 0, bytearray()
    async for part in parts:
        size += len(part)
        if size > limit:
            raise TooLarge("The file is larger than the upload limit.", limit=limit)
        digest.update(part)
        pending += part
        while len(pending) >= CHUNK_BYTES:
            db.add(ImportChunk(batch_id=batch_id, seq=seq, data=bytes(pending[:CHUNK_BYTES])))
            del pending[:CHUNK_BYTES]
            seq += 1
            await db.flush()
    if pending:
        db.add(ImportChunk(batch_id=batch_id, seq=seq, data=bytes(pending)))
    await db.flush()
    return digest.digest(), size


async def spool(db: AsyncSession, batch_id: int, folder: Path | None = None) -> Path:
    """Copy the stored file to a local temporary file for the readers (one chunk in memory)."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (the caller deletes the file)
        prefix=f"import-{batch_id}-", suffix=".upload", dir=folder, delete=False
    )
    with handle:
        seqs = await db.scalars(
            select(ImportChunk.seq)
            .where(ImportChunk.batch_id == batch_id)
            .order_by(ImportChunk.seq)
        )
        for seq in list(seqs):
            data = await db.scalar(
                select(ImportChunk.data).where(
                    ImportChunk.batch_id == batch_id, ImportChunk.seq == seq
                )
            )
            handle.write(data or b"")
    return Path(handle.name)


async def discard(db: AsyncSession, batch_id: int) -> None:
    await db.execute(delete(ImportChunk).where(ImportChunk.batch_id == batch_id))
