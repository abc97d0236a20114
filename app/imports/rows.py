"""The rows of validated dialogues, ready for COPY (pure: no database).

Dialogue rows go as COPY text (their `search` tsvector has no binary form in asyncpg); turns and
source values go as records for asyncpg's binary COPY, which PostgreSQL reads without parsing
array or number literals. Rows are built once and handed over, a batch at a time, by
:meth:`Rows.take`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.dialogues.search import document
from app.formats.model import Dialogue
from app.imports.writer import fingerprint, session_labels

SESSION = -1
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

DIALOGUE_COLUMNS = (
    "id", "project_id", "external_id", "language", "metadata", "layout", "source_format",
    "turn_count", "fingerprint", "import_batch_id", "session_labels", "search",
)  # fmt: skip
TURN_COLUMNS = (
    "dialogue_id", "position", "speaker", "participant", "content", "original_id", "extras",
    "layout", "flags",
)  # fmt: skip
ANNOTATION_COLUMNS = (
    "source_id", "dialogue_id", "position", "dimension", "labels", "text", "scalar",
    "import_batch_id",
)  # fmt: skip

TurnRecord = tuple[int, int, str, str, str, str | None, str, str, list[str]]
ValueRecord = tuple[int, int, int, str, list[str] | None, str | None, bool, int]


def cell(value: str | None) -> str:
    """One field in COPY text format (`\\N` is NULL)."""
    return "\\N" if value is None else value.translate(_ESCAPES)


def tsvector(text: str) -> str:
    """A tsvector literal of the search tokens (already lower-cased and distinct)."""
    return " ".join("'" + token.replace("'", "''") + "'" for token in text.split())


@lru_cache(maxsize=4096)
def json_list(values: tuple[str, ...]) -> str:
    """Layouts repeat across a file: each distinct one is encoded once."""
    return json.dumps(list(values))


def json_object(value: Mapping[str, Any]) -> str:
    """A JSON object, non-ASCII kept as is (the `json` column keeps the text and its key order)."""
    return json.dumps(dict(value), ensure_ascii=False) if value else "{}"


@dataclass
class Counts:
    dialogues_new: int = 0
    dialogues_matched: int = 0
    turns: int = 0
    annotations: int = 0
    flagged_turns: int = 0


@dataclass
class Rows:
    """Rows of one import batch not sent yet; the counts run over the whole import."""

    project_id: int
    source_id: int
    batch_id: int
    canonical: Mapping[str, Mapping[str, str]]
    counts: Counts = field(default_factory=Counts)
    dialogues: list[str] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    values: list[ValueRecord] = field(default_factory=list)

    def add_new(self, d: Dialogue, dialogue_id: int) -> None:
        """A dialogue new to the project: its row, its turns and its source's values."""
        row = (
            str(dialogue_id), str(self.project_id), cell(d.external_id), cell(d.language),
            cell(json.dumps(d.metadata, ensure_ascii=False)), cell(json_list(d.layout)),
            cell(d.source_format), str(len(d.turns)), "\\\\x" + fingerprint(d).hex(),
            str(self.batch_id), cell(json.dumps(session_labels(d.annotations, self.canonical))),
            cell(tsvector(document(_texts(d)))),
        )  # fmt: skip
        self.dialogues.append("\t".join(row) + "\n")
        flagged = 0
        for t in d.turns:
            self.turns.append(
                (dialogue_id, t.position, t.speaker, t.participant, t.content, t.source_id,
                 json_object(t.extras), json_list(t.layout), list(t.flags))
            )  # fmt: skip
            flagged += bool(t.flags)
        self.counts.flagged_turns += flagged
        self.counts.turns += len(d.turns)
        self.counts.dialogues_new += 1
        self.add_values(d, dialogue_id)

    def add_values(self, d: Dialogue, dialogue_id: int) -> None:
        """The source's session and turn values of a dialogue (new or already present)."""
        source, batch, values = self.source_id, self.batch_id, self.values
        before = len(values)
        for position, found in ((SESSION, d.annotations), *_by_turn(d)):
            for a in found:
                labels = None if a.text is not None else list(a.labels)
                values.append((source, dialogue_id, position, a.dimension, labels, a.text,
                               a.scalar, batch))  # fmt: skip
        self.counts.annotations += len(values) - before

    def pending(self) -> int:
        """Rows built and not taken yet."""
        return len(self.dialogues) + len(self.turns) + len(self.values)

    def take(self) -> tuple[bytes, list[TurnRecord], list[ValueRecord]]:
        """The chunk's dialogue rows (COPY text), turn and value records; starts a new chunk."""
        out = ("".join(self.dialogues).encode(), self.turns, self.values)
        self.dialogues, self.turns, self.values = [], [], []
        return out


def _by_turn(d: Dialogue) -> Iterable[tuple[int, Iterable[Any]]]:
    return ((t.position, t.annotations) for t in d.turns)


def _texts(d: Dialogue) -> list[str]:
    meta = [v for k, v in d.metadata.items() if k in ("background", "theme") and isinstance(v, str)]
    return [d.external_id, *meta, *(t.content for t in d.turns)]
