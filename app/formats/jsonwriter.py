"""Streaming writer of a top-level JSON array, one record at a time.

The output is byte-identical to ``json.dumps(records, indent=..., ensure_ascii=False)`` with
``\\n`` replaced by ``newline`` (JSON strings never contain a raw newline, so that is safe).
Open the target with ``newline=""`` so that the text layer does not translate line endings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TextIO

from app.formats.model import Dialogue, JsonValue

ToRecord = Callable[[Dialogue], JsonValue]


class JsonArrayWriter:
    """Writes ``[``, then each record as it comes, then ``]`` on :meth:`close`."""

    def __init__(
        self,
        out: TextIO,
        to_record: ToRecord,
        *,
        indent: int = 4,
        newline: str = "\n",
        final_newline: bool = False,
    ) -> None:
        self._out = out
        self._to_record = to_record
        self._indent = indent
        self._newline = newline
        self._final_newline = final_newline
        self.count = 0
        self._closed = False

    def write(self, dialogue: Dialogue) -> None:
        """Append one dialogue to the array."""
        text = json.dumps(self._to_record(dialogue), indent=self._indent, ensure_ascii=False)
        pad = " " * self._indent
        text = pad + text.replace("\n", self._newline + pad)
        self._out.write(("," if self.count else "[") + self._newline + text)
        self.count += 1

    def close(self) -> None:
        """Close the array (idempotent); does not close the stream."""
        if self._closed:
            return
        self._closed = True
        self._out.write((self._newline + "]") if self.count else "[]")
        if self._final_newline:
            self._out.write(self._newline)

    def __enter__(self) -> JsonArrayWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()


def write_array(
    dialogues: Iterable[Dialogue],
    out: TextIO,
    to_record: ToRecord,
    *,
    indent: int = 4,
    newline: str = "\n",
    final_newline: bool = False,
) -> int:
    """Write all dialogues as one JSON array; returns how many were written."""
    with JsonArrayWriter(
        out, to_record, indent=indent, newline=newline, final_newline=final_newline
    ) as writer:
        for dialogue in dialogues:
            writer.write(dialogue)
    return writer.count
