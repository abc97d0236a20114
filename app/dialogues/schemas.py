"""Validated list filters (page query and API query) and the JSON shapes of dialogues."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

LANGUAGES = ("en", "zh")
# Where a dialogue's annotation stands (the project page's coverage, per dialogue): nobody has
# it; someone has it but fewer than the overlap submitted; submitted by the overlap; and,
# across those, at least one annotator skipped it.
STATUSES = ("unassigned", "in_progress", "complete", "skipped")
MAX_ID = 2**63 - 1  # ids are bigint: a larger number must not reach the database
MAX_FILTER_TEXT = 200
_CURSOR = re.compile(r"d([0-9]{1,19})")


def _blank_is_none(value: object) -> object:
    """A GET form sends every field; an empty one means "any"."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _language(value: str | None) -> str | None:
    if value is not None and value not in LANGUAGES:
        raise ValueError("Unknown language: choose English (en) or Chinese (zh).")
    return value


def _batch(value: object) -> object:
    value = _blank_is_none(value)
    if value is None or isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        raise ValueError("The import batch must be a number.")
    if number is not None and not 1 <= number <= MAX_ID:
        raise ValueError("The import batch must be a number.")
    return number


def _status(value: str | None) -> str | None:
    if value is not None and value not in STATUSES:
        raise ValueError("Unknown status: choose unassigned, in_progress, complete or skipped.")
    return value


def _short(value: str | None) -> str | None:
    if value is not None and len(value) > MAX_FILTER_TEXT:
        raise ValueError("This text is too long.")
    return value


def encode_cursor(after_id: int) -> str:
    """An opaque page token: the last dialogue id of the previous page."""
    return base64.urlsafe_b64encode(f"d{after_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The dialogue id a cursor continues after; ValueError when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    match = _CURSOR.fullmatch(raw)
    if match is None or int(match.group(1)) > MAX_ID:
        raise ValueError("This page link is invalid. Start again from the first page.")
    return int(match.group(1))


def _cursor(value: str | None) -> str | None:
    if value is not None:
        decode_cursor(value)
    return value


OptionalText = Annotated[str | None, BeforeValidator(_blank_is_none), AfterValidator(_short)]


class DialogueFilters(BaseModel):
    """List filters; all combine. Also the API's query parameters."""

    model_config = ConfigDict(extra="ignore")

    q: OptionalText = None
    language: Annotated[str | None, BeforeValidator(_blank_is_none), AfterValidator(_language)] = (
        None
    )
    topic: OptionalText = None
    psychotherapy: OptionalText = None
    batch: Annotated[int | None, BeforeValidator(_batch)] = None
    status: Annotated[str | None, BeforeValidator(_blank_is_none), AfterValidator(_status)] = None
    cursor: Annotated[str | None, BeforeValidator(_blank_is_none), AfterValidator(_cursor)] = None

    @property
    def after_id(self) -> int:
        return decode_cursor(self.cursor) if self.cursor else 0

    def query_params(self) -> dict[str, str]:
        """The filters as query parameters (no cursor), for page links."""
        values = self.model_dump(exclude={"cursor"}, exclude_none=True)
        return {k: str(v) for k, v in values.items()}


class BatchOut(BaseModel):
    id: int
    file_name: str


class DialogueItemOut(BaseModel):
    id: int
    external_id: str
    language: str
    topic: list[str]
    psychotherapy: list[str]
    turn_count: int
    import_batch: BatchOut
    status: str  # unassigned, in_progress or complete
    submitted: int  # annotators who submitted it
    skipped: int  # annotators who skipped it


class DialoguePageOut(BaseModel):
    items: list[DialogueItemOut]
    next_cursor: str | None
    total: int


class DialogueOut(BaseModel):
    id: int
    external_id: str
    language: str
    source_format: str
    turn_count: int
    metadata: dict[str, Any]
    session_labels: dict[str, Any]
    import_batch: BatchOut
    created_at: datetime


class TurnOut(BaseModel):
    position: int
    speaker: str
    participant: str
    content: str
    original_id: str | None
    flags: list[str]
    extras: dict[str, Any]


class SourceAnnotationOut(BaseModel):
    """`position` -1 is the whole session; exactly one of `labels` and `text` is set."""

    source: str
    position: int
    dimension: str
    labels: list[str] | None
    text: str | None


class DialogueDetailOut(BaseModel):
    dialogue: DialogueOut
    turns: list[TurnOut]
    source_annotations: list[SourceAnnotationOut]
