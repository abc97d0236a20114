"""Errors of the format readers.

Two kinds: :class:`FormatError` is raised when the file as a whole cannot be read (wrong
encoding, truncated JSON, ...); :class:`RecordError` describes one problem inside one record and
is collected, so that a user sees every problem of a file at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.formats.model import JsonValue


class ErrorCode(StrEnum):
    """Stable codes for every problem a reader reports."""

    # whole-file problems (FormatError)
    EMPTY_FILE = "empty_file"
    BINARY_FILE = "binary_file"
    WRONG_ENCODING = "wrong_encoding"
    TRUNCATED_JSON = "truncated_json"
    INVALID_JSON = "invalid_json"
    NESTING_TOO_DEEP = "nesting_too_deep"
    WRONG_TOP_LEVEL = "wrong_top_level"
    TRAILING_DATA = "trailing_data"
    RECORD_TOO_LARGE = "record_too_large"
    UNKNOWN_FORMAT = "unknown_format"
    NO_RECORDS = "no_records"
    INVALID_CSV = "invalid_csv"
    # problems inside one record (RecordError)
    RECORD_NOT_JSON = "record_not_json"
    DUPLICATE_KEY = "duplicate_key"
    MISSING_KEY = "missing_key"
    UNKNOWN_KEY = "unknown_key"
    WRONG_TYPE = "wrong_type"
    EMPTY_VALUE = "empty_value"
    UNKNOWN_SPEAKER = "unknown_speaker"
    UNKNOWN_LABEL = "unknown_label"
    BAD_POSITION = "bad_position"
    BAD_LINE = "bad_line"
    TOO_MANY_ERRORS = "too_many_errors"


class FormatError(Exception):
    """The file cannot be read at all; ``code`` says why, ``line``/``offset`` say where."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        line: int | None = None,
        offset: int | None = None,
        record: int | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.line = line
        self.offset = offset
        self.record = record
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.record is not None:
            where.append(f"record[{self.record}]")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{prefix}{self.message} [{self.code}]"


@dataclass(frozen=True, slots=True)
class RecordError:
    """One located problem inside a record (0-based record index and turn position)."""

    code: ErrorCode
    message: str
    record: int
    path: str = ""
    dialog_id: str | None = None
    position: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = [f"record[{self.record}]"]
        if self.dialog_id is not None:
            where.append(f"dialog_id {self.dialog_id!r}")
        if self.position is not None:
            where.append(f"turn {self.position}")
        if self.line is not None:
            where.append(f"line {self.line}")
        field = f" {self.path}" if self.path else ""
        return f"{', '.join(where)}:{field}: {self.message} [{self.code}]"


def json_type(value: JsonValue) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def shown(value: JsonValue, limit: int = 60) -> str:
    """A short rendering of a found value for messages (kept verbatim, never escaped for HTML)."""
    if isinstance(value, str):
        text = repr(value) if len(value) <= limit else repr(value[:limit]) + "…"
        return text
    if isinstance(value, dict | list):
        return json_type(value)
    return repr(value)
