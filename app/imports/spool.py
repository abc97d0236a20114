"""Rows of a validated import, staged in PostgreSQL's COPY text format.

The first pass parses and checks the file and writes every row it will insert to three local
files; the second pass only streams those files into the tables with COPY, in one short
transaction. The file is parsed once and no row is built twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO

from app.dialogues.search import document
from app.formats.model import Dialogue, SourceAnnotation
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


def cell(value: str | None) -> str:
    """One field in COPY text format (`\\N` is NULL)."""
    return "\\N" if value is None else value.translate(_ESCAPES)


def array(values: Iterable[str]) -> str:
    """A text[] literal."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def tsvector(text: str) -> str:
    """A tsvector literal of the search tokens (already lower-cased and distinct)."""
    return " ".join("'" + token.replace("'", "''") + "'" for token in text.split())


@lru_cache(maxsize=4096)
def _json_list(values: tuple[str, ...]) -> str:
    """Layouts repeat across a file: each distinct one is encoded once."""
    return json.dumps(list(values))


def _json_object(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), ensure_ascii=False) if value else "{}"


@dataclass
class Counts:
    dialogues_new: int = 0
    dialogues_matched: int = 0
    turns: int = 0
    annotations: int = 0
    flagged_turns: int = 0


@dataclass
class Spool:
    """Three COPY files in `folder`, for one import batch."""

    folder: Path
    project_id: int
    source_id: int
    batch_id: int
    canonical: Mapping[str, Mapping[str, str]]
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        self.files: dict[str, TextIO] = {
            name: (self.folder / f"{name}.copy").open("w", encoding="utf-8", newline="")
            for name in ("dialogues", "turns", "source_annotations")
        }

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.copy"

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()

    def add_new(self, d: Dialogue, dialogue_id: int) -> None:
        """A dialogue new to the project: its row, its turns and its source's values."""
        row = (
            str(dialogue_id), str(self.project_id), cell(d.external_id), cell(d.language),
            cell(json.dumps(d.metadata, ensure_ascii=False)), cell(_json_list(d.layout)),
            cell(d.source_format), str(len(d.turns)), "\\\\x" + fingerprint(d).hex(),
            str(self.batch_id), cell(json.dumps(session_labels(d.annotations, self.canonical))),
            cell(tsvector(document(_texts(d)))),
        )  # fmt: skip
        self.files["dialogues"].write("\t".join(row) + "\n")
        lines = []
        for t in d.turns:
            lines.append(
                f"{dialogue_id}\t{t.position}\t{t.speaker}\t{cell(t.participant)}\t"
                f"{cell(t.content)}\t{cell(t.source_id)}\t{cell(_json_object(t.extras))}\t"
                f"{cell(_json_list(t.layout))}\t{cell(array(t.flags))}\n"
            )
            self.counts.flagged_turns += bool(t.flags)
        self.files["turns"].write("".join(lines))
        self.counts.turns += len(d.turns)
        self.counts.dialogues_new += 1
        self.add_values(d, dialogue_id)

    def add_values(self, d: Dialogue, dialogue_id: int) -> None:
        """The source's session and turn values of a dialogue (new or already present)."""
        lines = [self._value(dialogue_id, SESSION, a) for a in d.annotations]
        for t in d.turns:
            lines.extend(self._value(dialogue_id, t.position, a) for a in t.annotations)
        self.files["source_annotations"].write("".join(lines))
        self.counts.annotations += len(lines)

    def _value(self, dialogue_id: int, position: int, a: SourceAnnotation) -> str:
        return f"{self.source_id}\t{dialogue_id}\t{position}\t{_value_fields(a)}\t{self.batch_id}\n"


@lru_cache(maxsize=65536)
def _value_fields(a: SourceAnnotation) -> str:
    """dimension, labels, text, scalar: values repeat a lot (label sets), so encode each once."""
    labels = "\\N" if a.text is not None else cell(array(a.labels))
    return f"{cell(a.dimension)}\t{labels}\t{cell(a.text)}\t{'t' if a.scalar else 'f'}"


def _texts(d: Dialogue) -> list[str]:
    meta = [v for k, v in d.metadata.items() if k in ("background", "theme") and isinstance(v, str)]
    return [d.external_id, *meta, *(t.content for t in d.turns)]
