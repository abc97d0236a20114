"""Set-based writing of parsed dialogues: one INSERT ... SELECT unnest per chunk of dialogues,
COPY for turns and source annotations. No ORM object per row."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.dialogues.search import document
from app.formats.model import Dialogue, SourceAnnotation

SESSION = -1


@lru_cache(maxsize=4096)
def _json_list(values: tuple[str, ...]) -> str:
    """Turn layouts repeat across a file: encode each distinct one once."""
    return json.dumps(list(values))


def _json_object(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), ensure_ascii=False) if value else "{}"


def fingerprint(dialogue: Dialogue) -> bytes:
    """What must match when the same dialogue is imported again under another source."""
    digest = hashlib.sha256()
    for turn in dialogue.turns:
        digest.update(f"{turn.speaker}\x1f{turn.content}\x1e".encode())
    return digest.digest()


def session_labels(
    annotations: Sequence[SourceAnnotation], canonical: Mapping[str, Mapping[str, str]]
) -> dict[str, list[str]]:
    """Session-level labels by dimension, alias spellings resolved: what list filters match."""
    out: dict[str, list[str]] = {}
    for ann in annotations:
        if ann.text is None and ann.labels:
            aliases = canonical.get(ann.dimension, {})
            out[ann.dimension] = sorted({aliases.get(v, v) for v in ann.labels if v})
    return out


def merge_labels(old: Mapping[str, Any], new: Mapping[str, list[str]]) -> dict[str, list[str]]:
    merged = {k: list(v) for k, v in old.items()}
    for key, values in new.items():
        merged[key] = sorted(set(merged.get(key, [])) | set(values))
    return merged


@dataclass
class Counts:
    dialogues_new: int = 0
    dialogues_matched: int = 0
    turns: int = 0
    annotations: int = 0
    flagged_turns: int = 0


@dataclass
class ChunkWriter:
    """Writes chunks of dialogues of one import batch in the caller's transaction."""

    db: AsyncSession
    project_id: int
    source_id: int
    batch_id: int
    matched: Mapping[str, tuple[int, dict[str, Any]]]
    canonical: Mapping[str, Mapping[str, str]]
    counts: Counts = field(default_factory=Counts)

    async def write(self, dialogues: Sequence[Dialogue]) -> None:
        conn = await self._driver()
        new = [d for d in dialogues if d.external_id not in self.matched]
        ids = await self._allocate(conn, len(new))
        dialogue_ids = dict(zip((d.external_id for d in new), ids, strict=True))
        dialogue_ids.update(
            {
                d.external_id: self.matched[d.external_id][0]
                for d in dialogues
                if d.external_id in self.matched
            }
        )
        if new:
            await self._insert_dialogues(conn, new, ids)
            await self._copy_turns(conn, new, dialogue_ids)
        await self._copy_annotations(conn, dialogues, dialogue_ids)
        await self._merge_session_labels(
            conn, [d for d in dialogues if d.external_id in self.matched]
        )
        self.counts.dialogues_new += len(new)
        self.counts.dialogues_matched += len(dialogues) - len(new)

    async def _driver(self) -> Any:
        connection = await self.db.connection()
        raw = await connection.get_raw_connection()
        return raw.driver_connection

    async def _allocate(self, conn: Any, n: int) -> list[int]:
        if n == 0:
            return []
        rows = await conn.fetch(
            "SELECT nextval(pg_get_serial_sequence('dialogues', 'id')) FROM generate_series(1, $1)",
            n,
        )
        return [r[0] for r in rows]

    async def _insert_dialogues(self, conn: Any, new: Sequence[Dialogue], ids: list[int]) -> None:
        await conn.execute(
            """
            INSERT INTO dialogues (id, project_id, external_id, language, metadata, layout,
                source_format, turn_count, fingerprint, import_batch_id, session_labels, search)
            SELECT i, $1, e, l, m::jsonb, y::jsonb, f, n, h, $2, s::jsonb, to_tsvector('simple', t)
            FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                        $9::int[], $10::bytea[], $11::text[], $12::text[])
                 AS u(i, e, l, m, y, f, n, h, s, t)
            """,
            self.project_id,
            self.batch_id,
            ids,
            [d.external_id for d in new],
            [d.language for d in new],
            [json.dumps(d.metadata, ensure_ascii=False) for d in new],
            [json.dumps(list(d.layout)) for d in new],
            [d.source_format for d in new],
            [len(d.turns) for d in new],
            [fingerprint(d) for d in new],
            [json.dumps(session_labels(d.annotations, self.canonical)) for d in new],
            [document(self._texts(d)) for d in new],
        )

    @staticmethod
    def _texts(d: Dialogue) -> list[str]:
        meta = [
            v for k, v in d.metadata.items() if k in ("background", "theme") and isinstance(v, str)
        ]
        return [d.external_id, *meta, *(t.content for t in d.turns)]

    async def _copy_turns(self, conn: Any, new: Sequence[Dialogue], ids: Mapping[str, int]) -> None:
        records = []
        for d in new:
            for t in d.turns:
                records.append(
                    (
                        ids[d.external_id],
                        t.position,
                        t.speaker,
                        t.participant,
                        t.content,
                        t.source_id,
                        _json_object(t.extras),
                        _json_list(t.layout),
                        list(t.flags),
                    )
                )
                self.counts.flagged_turns += bool(t.flags)
        self.counts.turns += len(records)
        await conn.copy_records_to_table(
            "turns",
            records=records,
            columns=[
                "dialogue_id",
                "position",
                "speaker",
                "participant",
                "content",
                "original_id",
                "extras",
                "layout",
                "flags",
            ],
        )

    async def _copy_annotations(
        self, conn: Any, dialogues: Sequence[Dialogue], ids: Mapping[str, int]
    ) -> None:
        records = []
        for d in dialogues:
            did = ids[d.external_id]
            places = [(SESSION, d.annotations), *((t.position, t.annotations) for t in d.turns)]
            for position, found in places:
                for a in found:
                    labels = None if a.text is not None else list(a.labels)
                    records.append(
                        (
                            self.source_id,
                            did,
                            position,
                            a.dimension,
                            labels,
                            a.text,
                            a.scalar,
                            self.batch_id,
                        )
                    )
        self.counts.annotations += len(records)
        await conn.copy_records_to_table(
            "source_annotations",
            records=records,
            columns=[
                "source_id",
                "dialogue_id",
                "position",
                "dimension",
                "labels",
                "text",
                "scalar",
                "import_batch_id",
            ],
        )

    async def _merge_session_labels(self, conn: Any, matched: Sequence[Dialogue]) -> None:
        if not matched:
            return
        ids, values = [], []
        for d in matched:
            did, old = self.matched[d.external_id]
            ids.append(did)
            values.append(
                json.dumps(merge_labels(old, session_labels(d.annotations, self.canonical)))
            )
        await conn.execute(
            "UPDATE dialogues SET session_labels = v.s::jsonb "
            "FROM unnest($1::bigint[], $2::text[]) AS v(i, s) WHERE dialogues.id = v.i",
            ids,
            values,
        )
