"""Entry point for reading: format detection, per-record conversion, error limit, new labels.

>>> reader = DialogueReader(path, ReadOptions(vocabulary=default_vocabulary()))
>>> for item in reader:           # Dialogue, or list[RecordError] for a bad record
...     ...
>>> reader.format, reader.new_labels, reader.error_count

A whole-file problem raises :class:`~app.formats.errors.FormatError` from the iteration.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import BinaryIO

from app.formats import (
    cpsycound,
    esconv,
    generic_csv,
    generic_jsonl,
    psy_insight,
    psy_insight_fast,
    psy_insight_old,
)
from app.formats.errors import ErrorCode, FormatError, RecordError
from app.formats.jsonstream import MAX_DEPTH, RawRecord, first_char, iter_json_array
from app.formats.model import Dialogue, JsonValue
from app.formats.source import CHUNK_SIZE, TextStream
from app.formats.validate import Checker, CheckOptions, Vocabulary

Item = Dialogue | list[RecordError]
Converter = Callable[[JsonValue, Checker, str | None], Dialogue | None]

JSON_ARRAY_FORMATS: dict[str, Converter] = {
    psy_insight.FORMAT: psy_insight_fast.read_record,
    psy_insight_old.FORMAT: psy_insight_old.read_record,
    esconv.FORMAT: esconv.read_record,
}
FORMATS = (*JSON_ARRAY_FORMATS, generic_jsonl.FORMAT, generic_csv.FORMAT, cpsycound.FORMAT)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read: format (None = detect), label checking, limits, defaults."""

    format: str | None = None
    vocabulary: Vocabulary | None = None
    collect_new_labels: bool = False
    max_errors: int = 100
    language: str | None = None
    name: str = ""
    max_depth: int = MAX_DEPTH
    chunk_size: int = CHUNK_SIZE


class ReadContext:
    """Shared by the format readers: makes checkers and turns them into results."""

    def __init__(self, options: ReadOptions) -> None:
        self.options = options
        self.check = CheckOptions(options.vocabulary, options.collect_new_labels)
        self.new_labels: dict[str, dict[str, int]] = {}

    def checker(self, record: int, line: int | None) -> Checker:
        """A checker for one record."""
        return Checker(record, line, self.check)

    def result(self, chk: Checker, dialogue: Dialogue | None) -> Item:
        """The dialogue, or the record's errors; tallies labels outside the vocabulary."""
        for dimension, label in chk.new_labels:
            counts = self.new_labels.setdefault(dimension, {})
            counts[label] = counts.get(label, 0) + 1
        if dialogue is not None and not chk.errors:
            return dialogue
        assert chk.errors, "a converter returned None without an error"
        return chk.errors

    def convert(self, records: Iterable[RawRecord], convert: Converter) -> Iterator[Item]:
        """Run a converter over parsed JSON records."""
        for raw in records:
            if raw.error is not None:
                yield [raw.error]
                continue
            chk = self.checker(raw.index, raw.line)
            yield self.result(chk, convert(raw.value, chk, self.options.language))


def detect_json_format(value: JsonValue) -> str:
    """Name the JSON-array format from its first record."""
    if not isinstance(value, dict):
        kind = "arrays" if isinstance(value, list) else "scalars"
        raise FormatError(
            ErrorCode.WRONG_TOP_LEVEL,
            f"expected an array of dialogue objects, found an array of {kind}",
            record=0,
        )
    keys = set(value)
    if "topic_dialog" in keys:
        return psy_insight_old.FORMAT
    if "dialog_id" in keys:
        return psy_insight.FORMAT
    turns = value.get("dialog")
    first = turns[0] if isinstance(turns, list) and turns else None
    if "dialog" in keys and (
        keys & {"emotion_type", "problem_type", "situation", "survey_score"}
        or (isinstance(first, dict) and "annotation" in first)
    ):
        return esconv.FORMAT
    if "dialog" in keys and "is_same_session" in keys:
        return psy_insight.FORMAT  # a v7 session without its id: the reader will say so
    raise FormatError(
        ErrorCode.UNKNOWN_FORMAT,
        "cannot tell the format from the keys of the first record "
        f"({', '.join(sorted(keys)) or 'none'}): expected Psy-Insight v7 (dialog_id, dialog, ...), "
        "the older Psy-Insight schema (topic_dialog, ...) or ESConv (emotion_type, "
        "problem_type, situation, dialog); choose the format explicitly",
        record=0,
    )


def detect_text_format(head: str) -> str:
    """Name the format of a file that does not start with a JSON array."""
    char = first_char(head)
    if char == "{":
        first, newline, _ = head.lstrip(" \t\r\n").partition("\n")
        try:
            if newline:  # a first line longer than the head cannot be checked here
                json.loads(first)
        except ValueError:
            raise FormatError(
                ErrorCode.WRONG_TOP_LEVEL,
                "expected a JSON array of dialogues (or JSON Lines, one object per line), "
                "found a JSON object spread over several lines",
                line=1,
            ) from None
        return generic_jsonl.FORMAT
    if generic_csv.looks_like(head):
        return generic_csv.FORMAT
    if cpsycound.looks_like(head):
        return cpsycound.FORMAT
    if char and (char in '"-tfn' or char.isdigit()):
        kind = "string" if char == '"' else "value"
        raise FormatError(
            ErrorCode.WRONG_TOP_LEVEL,
            f"expected a JSON array of dialogues at the top level, found a single JSON {kind}",
        )
    raise FormatError(
        ErrorCode.UNKNOWN_FORMAT,
        f"cannot tell the format from the start of the file ({head[:40]!r}): expected a JSON "
        "array, JSON Lines, a CSV with a dialog_id column, or CPsyCounD text "
        "(来访者：/心理咨询师： lines)",
        line=1,
    )


class DialogueReader:
    """Iterates the dialogues of one file; see the module docstring."""

    def __init__(
        self, source: BinaryIO | str | PathLike[str], options: ReadOptions | None = None
    ) -> None:
        self.source = source
        self.options = options or ReadOptions()
        if self.options.format is not None and self.options.format not in FORMATS:
            raise ValueError(f"unknown format {self.options.format!r}; known: {FORMATS}")
        self.format: str | None = self.options.format
        self.records = 0
        self.dialogues = 0
        self.error_count = 0
        self.new_labels: dict[str, dict[str, int]] = {}
        self.newline = "\n"
        self.bom = False

    def __iter__(self) -> Iterator[Item]:
        """Yield each dialogue or each bad record's errors, stopping at ``max_errors``."""
        with ExitStack() as stack:
            raw = self.source
            if isinstance(raw, str | PathLike):
                raw = stack.enter_context(Path(raw).open("rb"))
            text = TextStream(raw, self.options.chunk_size)
            context = ReadContext(self.options)
            self.new_labels = context.new_labels
            for item in self._items(text, context):
                self.newline, self.bom = text.newline, text.bom
                self.records += 1
                if isinstance(item, Dialogue):
                    self.dialogues += 1
                    yield item
                    continue
                room = self.options.max_errors - self.error_count
                if len(item) <= room:
                    self.error_count += len(item)
                    yield item
                    continue
                self.error_count += room
                stop = RecordError(
                    ErrorCode.TOO_MANY_ERRORS,
                    f"stopped after {self.options.max_errors} errors",
                    item[0].record,
                )
                yield [*item[:room], stop]
                return
            if self.records == 0:
                raise FormatError(
                    ErrorCode.NO_RECORDS, "expected at least one dialogue, found none"
                )

    def _items(self, text: TextStream, context: ReadContext) -> Iterator[Item]:
        chunks = iter(text)
        head = next(chunks, "")
        while not first_char(head) and (more := next(chunks, None)) is not None:
            head += more  # leading blank space: keep looking for the first character
        if not first_char(head):
            raise FormatError(ErrorCode.EMPTY_FILE, "the file contains only whitespace")
        chunks = itertools.chain([head], chunks)
        fmt = self.format
        if first_char(head) == "[" and fmt in (None, *JSON_ARRAY_FORMATS):
            records = iter_json_array(chunks, max_depth=self.options.max_depth)
            if fmt is None:
                first = next(records, None)
                if first is None:
                    return
                if first.error is not None:
                    raise FormatError(
                        ErrorCode.INVALID_JSON,
                        f"cannot detect the format: {first.error.message}",
                        line=first.error.line,
                        record=0,
                    )
                fmt = detect_json_format(first.value)
                records = itertools.chain([first], records)
            self.format = fmt
            yield from context.convert(records, JSON_ARRAY_FORMATS[fmt])
            return
        fmt = fmt or detect_text_format(head)
        self.format = fmt
        if fmt in JSON_ARRAY_FORMATS:
            records = iter_json_array(chunks, max_depth=self.options.max_depth)
            yield from context.convert(records, JSON_ARRAY_FORMATS[fmt])
        elif fmt == generic_jsonl.FORMAT:
            yield from generic_jsonl.read(chunks, context)
        elif fmt == generic_csv.FORMAT:
            yield from generic_csv.read(chunks, context)
        else:
            yield from cpsycound.read(chunks, context)


def read_dialogues(
    source: BinaryIO | str | PathLike[str], options: ReadOptions | None = None
) -> Iterator[Item]:
    """Iterate the dialogues (or record errors) of a file; see :class:`DialogueReader`."""
    return iter(DialogueReader(source, options))
