"""Import requests and reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from app.formats.reader import FORMATS

SOURCE_MAX = 100


def _source(value: str) -> str:
    value = value.strip()
    if not value or len(value) > SOURCE_MAX:
        raise ValueError("The source name must have 1 to 100 characters.")
    return value


def _format(value: str | None) -> str | None:
    if value in (None, "", "auto"):
        return None
    if value not in FORMATS:
        raise ValueError("Unknown format. Choose automatic detection or one of the listed formats.")
    return value


SourceName = Annotated[str, AfterValidator(_source)]
FormatName = Annotated[str | None, AfterValidator(_format)]


class ImportRequest(BaseModel):
    source: SourceName
    format: FormatName = None
    add_new_labels: bool = False


class ImportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    file_name: str
    format: str | None
    status: str
    size_bytes: int
    bytes_done: int
    records_done: int
    dialogues_new: int
    dialogues_matched: int
    turns: int
    annotations: int
    flagged_turns: int
    error_count: int
    errors: list[dict[str, Any]]
    new_labels: dict[str, Any]
    message: str
    created_at: datetime
    finished_at: datetime | None
