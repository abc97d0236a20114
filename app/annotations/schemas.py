"""Saving values and notes: what the workspace and the API send."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from app.codebook.schemas import MAX_VALUE_LENGTH

MAX_TEXT = 20_000
INT32 = 2**31 - 1  # positions and versions are PostgreSQL integers
# No NUL (U+0000): PostgreSQL text cannot hold it.
NO_NUL = r"^[^\x00]*$"


class ValueChange(BaseModel):
    """One change of one value; `base_version` is the version it was made on (0: none yet).

    Everything the database would refuse is refused here, so a value never reaches the
    one-statement save (which checks the caller too) in a form the driver cannot send.
    """

    change_id: uuid.UUID
    position: int = Field(ge=-1, le=INT32)
    dimension: str = Field(min_length=1, max_length=40, pattern=NO_NUL)
    labels: list[Annotated[str, Field(max_length=MAX_VALUE_LENGTH, pattern=NO_NUL)]] | None = Field(
        default=None, max_length=50
    )
    text: str | None = Field(default=None, max_length=MAX_TEXT, pattern=NO_NUL)
    base_version: int = Field(ge=0, le=INT32)

    @model_validator(mode="after")
    def _one_kind(self) -> ValueChange:
        if (self.labels is None) == (self.text is None):
            raise ValueError("Give either labels or text.")
        return self


class SavedValue(BaseModel):
    change_id: uuid.UUID
    position: int
    dimension: str
    labels: list[str] | None
    text: str | None
    version: int


class TimeReport(BaseModel):
    seconds: int = Field(ge=0, le=3600)


class SkipRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class NoteCreate(BaseModel):
    client_id: uuid.UUID | None = None
    position: int = Field(ge=-1)
    kind: Literal["flag", "comment"]
    flag: Literal["unclear", "risk", ""] = ""
    text: str = Field(default="", max_length=5000)


class AssignRequest(BaseModel):
    user_id: int
    dialogue_ids: list[int] = Field(min_length=1, max_length=10_000)
