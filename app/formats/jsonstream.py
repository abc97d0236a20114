"""Streaming JSON: split a top-level array (or JSON Lines) into records without loading the file.

A record that lies whole in the current chunk is parsed in place with :mod:`json`'s C decoder
(``raw_decode``), which also finds where it ends; its nesting depth is then checked on the parsed
value.  Anything else (a record cut by the end of the chunk, invalid JSON, a repeated key, too
deep) goes through the exact splitter: one regular expression that skips whole strings, so it
only looks at brackets and commas, enforces the depth limit before parsing and locates every
error.  Either way at most one record plus one chunk is in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from app.formats.errors import ErrorCode, FormatError, RecordError
from app.formats.model import JsonValue

MAX_DEPTH = 64
MAX_RECORD_CHARS = 32 * 1024 * 1024

_STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# Everything up to the next bracket, skipping whole strings; it stops at the quote of a string
# that the chunk cuts.  One match per bracket keeps the Python-level work small.
_SKIP = re.compile(rf'(?:[^"\[\]{{}}]++|{_STRING})*+', re.DOTALL)
_GAP = re.compile(r"[ \t\r\n]*+")
_SCALAR = re.compile(rf'{_STRING}|[^\[\]{{}}," \t\r\n]++', re.DOTALL)
# A complete string, or a bracket: used by max_depth_of on a whole text.
_TOKEN = re.compile(rf"{_STRING}|[\[\]{{}}]", re.DOTALL)
_WS = _GAP


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One top-level value: parsed ``value``, or ``error`` when it is not valid JSON."""

    index: int
    line: int
    value: JsonValue
    error: RecordError | None = None


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # a repeated key would silently lose a value, so the file could not be reproduced
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)
_CONTAINERS = (dict, list)


def _too_deep(value: JsonValue, limit: int) -> bool:
    """Whether a parsed value nests more than ``limit`` objects/arrays deep."""
    level: list[JsonValue] = [value]
    for _ in range(limit):
        level = [
            item
            for node in level
            for item in (node.values() if isinstance(node, dict) else node)  # type: ignore[union-attr]
            if isinstance(item, _CONTAINERS)
        ]
        if not level:
            return False
    return True


def _parse_whole(buf: str, start: int, max_depth: int) -> tuple[JsonValue, int] | None:
    """The record at ``buf[start]`` and where it ends, if it is whole, valid and shallow enough.

    None sends the record through the exact splitter, which reports any problem it has.
    """
    try:
        value, end = _DECODER.raw_decode(buf, start)
    except (ValueError, RecursionError):  # cut by the chunk's end, or a real problem
        return None
    # brackets inside strings are counted too: this only skips the exact check when it is moot
    brackets = buf.count("{", start, end) + buf.count("[", start, end)
    if brackets >= max_depth and _too_deep(value, max_depth - 1):
        return None
    return value, end


def parse_record(text: str, index: int, line: int) -> RawRecord:
    """Parse one record's text; ``line`` is the line where ``text`` starts."""
    start = _WS.match(text)
    lead = start.end() if start else 0
    line += text.count("\n", 0, lead)
    try:
        return RawRecord(index, line, _DECODER.decode(text[lead:]))
    except _DuplicateKeyError as exc:
        message = f"expected unique keys in every object, found {exc.key!r} twice"
        code = ErrorCode.DUPLICATE_KEY
        at_line = line
    except json.JSONDecodeError as exc:
        message = f"expected valid JSON, found an error: {exc.msg} (column {exc.colno})"
        code = ErrorCode.RECORD_NOT_JSON
        at_line = line + exc.lineno - 1
    return RawRecord(index, line, None, RecordError(code, message, index, line=at_line))


def _kind(ch: str) -> str:
    kinds = {
        "{": "an object",
        "[": "an array",
        '"': "a string",
        "t": "a boolean",
        "f": "a boolean",
        "n": "null",
    }
    if ch in kinds:
        return kinds[ch]
    if ch.isdigit() or ch == "-":
        return "a number"
    return f"text that is not JSON (starting with {ch!r})"


def first_char(text: str) -> str:
    """The first non-whitespace character of a text, or ``""``."""
    stripped = text.lstrip(" \t\r\n")
    return stripped[:1]


def iter_json_array(
    chunks: Iterable[str], *, max_depth: int = MAX_DEPTH, max_record_chars: int = MAX_RECORD_CHARS
) -> Iterator[RawRecord]:
    """Yield each element of a top-level JSON array read from text chunks."""
    it = iter(chunks)
    buf, line = "", 1
    while not (head := first_char(buf)):
        line += buf.count("\n")
        nxt = next(it, None)
        if nxt is None:
            raise FormatError(ErrorCode.EMPTY_FILE, "the file contains only whitespace")
        buf = nxt
    start = buf.index(head)
    line += buf.count("\n", 0, start)
    if head != "[":
        raise FormatError(
            ErrorCode.WRONG_TOP_LEVEL,
            f"expected a JSON array of dialogues at the top level, found {_kind(head)}",
            line=line,
        )
    buf = buf[start + 1 :]
    stack = ["["]
    pos = seg = counted = index = 0  # scan position, record start, newlines counted up to
    started = False  # whether the current top-level element has begun
    parsed: tuple[JsonValue, int] | None = None  # a record parsed whole, and its offset from seg

    def where(at: int) -> int:
        return line + buf.count("\n", counted, at)

    def fail(code: ErrorCode, message: str, at: int) -> FormatError:
        return FormatError(code, message, line=where(at), record=index)

    while True:
        if len(stack) == 1:  # between two records, or in a scalar record
            pos = _GAP.match(buf, pos).end()  # type: ignore[union-attr]
            if not started and pos < len(buf) and buf[pos] in "[{":
                whole = _parse_whole(buf, pos, max_depth)
                if whole is not None:
                    parsed, started = (whole[0], pos - seg), True
                    pos = whole[1]
                    continue
            scalar = _SCALAR.match(buf, pos) if pos < len(buf) and not started else None
            if scalar and scalar.end() < len(buf):
                pos, started = scalar.end(), True
                continue
            char = buf[pos] if pos < len(buf) and not scalar else ""
        else:
            pos = _SKIP.match(buf, pos).end()  # type: ignore[union-attr]
            char = buf[pos] if pos < len(buf) else ""
        if char in ("", '"'):  # the chunk ends inside a record: read on
            nxt = next(it, None)
            if nxt is None:
                raise fail(
                    ErrorCode.TRUNCATED_JSON,
                    "expected the end of the JSON array, found "
                    f"the end of the file inside record[{index}]; the file is truncated",
                    len(buf),
                )
            line, counted = where(seg), 0
            buf, pos, seg = buf[seg:] + nxt, pos - seg, 0
            if len(buf) > max_record_chars:
                raise fail(
                    ErrorCode.RECORD_TOO_LARGE,
                    f"expected records under {max_record_chars} characters, found a longer one",
                    0,
                )
            continue
        at, pos = pos, pos + 1
        if char in "[{":
            if len(stack) == 1 and started:
                raise fail(
                    ErrorCode.INVALID_JSON,
                    f"expected ',' or ']' after record[{index}], found {char!r}",
                    at,
                )
            stack.append(char)
            started = True
            if len(stack) > max_depth:
                raise fail(
                    ErrorCode.NESTING_TOO_DEEP,
                    f"expected JSON nested at most {max_depth} levels deep, found deeper nesting",
                    at,
                )
        elif len(stack) > 1 and char in "]}":
            opener = stack.pop()
            if (opener == "[") != (char == "]"):
                closer = "]" if opener == "[" else "}"
                raise fail(ErrorCode.INVALID_JSON, f"expected {closer!r}, found {char!r}", at)
        elif char in ",]" and started:
            line, counted = where(seg), seg
            if parsed is None:
                yield parse_record(buf[seg:at], index, line)
            else:
                value, offset = parsed
                yield RawRecord(index, line + buf.count("\n", seg, seg + offset), value)
                parsed = None
            index, seg, started = index + 1, pos, False
            if char == "]":
                _expect_end(buf[pos:], it, where(pos))
                return
        elif char == "]" and index == 0:  # an empty array
            _expect_end(buf[pos:], it, where(pos))
            return
        else:
            expected = "',' or ']'" if started else "a value"
            raise fail(
                ErrorCode.INVALID_JSON,
                f"expected {expected} in the top-level array, found {char!r}",
                at,
            )


def _expect_end(rest: str, it: Iterator[str], line: int) -> None:
    for text in (rest, *it):
        if head := first_char(text):
            raise FormatError(
                ErrorCode.TRAILING_DATA,
                f"expected nothing after the closing ']', found {head!r}",
                line=line,
            )
        line += text.count("\n")


def max_depth_of(text: str) -> int:
    """The deepest bracket nesting in a JSON text (strings skipped)."""
    if text.count("[") + text.count("{") <= 1:
        return text.count("[") + text.count("{")
    depth = deepest = 0
    for match in _TOKEN.finditer(text):
        symbol = match.group()
        if symbol in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif symbol in "]}":
            depth -= 1
    return deepest


def iter_json_lines(
    lines: Iterable[str], *, max_depth: int = MAX_DEPTH, max_record_chars: int = MAX_RECORD_CHARS
) -> Iterator[RawRecord]:
    """Yield one record per non-blank line of a JSON Lines text."""
    index = 0
    for number, text in enumerate(lines, start=1):
        if not text.strip(" \t\r\n"):
            continue
        if len(text) > max_record_chars:
            raise FormatError(
                ErrorCode.RECORD_TOO_LARGE,
                f"expected lines under {max_record_chars} characters, found a longer one",
                line=number,
                record=index,
            )
        if text.count("[") + text.count("{") > max_depth and max_depth_of(text) > max_depth:
            raise FormatError(
                ErrorCode.NESTING_TOO_DEEP,
                f"expected JSON nested at most {max_depth} levels deep, found deeper nesting",
                line=number,
                record=index,
            )
        yield parse_record(text, index, number)
        index += 1
