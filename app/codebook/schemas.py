"""Validated input (edit forms, the JSON document of an import) and API output for codebooks."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.accounts.schemas import required_text
from app.i18n import N_

FORMAT = "psy-annotator-codebook"
FORMAT_VERSION = 1

SCOPES = ("session", "turn")
SPEAKERS = ("client", "counselor", "any")
KINDS = ("label", "text")
# Shown in the interface through `_()`; listed here so extraction finds them.
SCOPE_NAMES = {"session": N_("Whole session"), "turn": N_("Each turn")}
SPEAKER_NAMES = {
    "client": N_("Client turns"),
    "counselor": N_("Counselor turns"),
    "any": N_("Any speaker"),
}
KIND_NAMES = {"label": N_("Labels from a closed vocabulary"), "text": N_("Free text")}

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_VALUE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 5000


def _key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError(
            "Use 1 to 40 lowercase letters, digits and underscores, starting with a letter."
        )
    return value


def _scope(value: str) -> str:
    if value not in SCOPES:
        raise ValueError("Unknown scope: use session or turn.")
    return value


def _speaker(value: str) -> str:
    if value not in SPEAKERS:
        raise ValueError("Unknown speaker: use client, counselor or any.")
    return value


def _kind(value: str) -> str:
    if value not in KINDS:
        raise ValueError("Unknown kind: use label or text.")
    return value


def _hotkey(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) != 1 or value.isspace():
        raise ValueError("A hotkey is one character (a letter, digit or sign), or empty.")
    return value


def _description(value: str) -> str:
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise ValueError("This text is too long.")
    return value


def _max_labels(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise ValueError("The maximum number of labels must be at least 1.")
    return value


def _form_number(value: object) -> object:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if not value.isascii() or not value.isdigit():
            raise ValueError("Enter a whole number.")
        return int(value)
    return value


DimensionKey = Annotated[str, AfterValidator(_key)]
Scope = Annotated[str, AfterValidator(_scope)]
Speaker = Annotated[str, AfterValidator(_speaker)]
Kind = Annotated[str, AfterValidator(_kind)]
Hotkey = Annotated[str | None, AfterValidator(_hotkey)]
Description = Annotated[str, AfterValidator(_description)]
Text = Annotated[str, required_text(MAX_VALUE_LENGTH)]


# --- Edit forms --------------------------------------------------------------------------------


class LabelEdit(BaseModel):
    """What a lead may change on a label: everything but its stored `value`."""

    name_en: Text
    name_zh: Text
    description: Description = ""
    hotkey: Hotkey = None
    # The label as the form showed it; a different current state is someone else's edit.
    etag: str = ""


class LabelCreate(LabelEdit):
    value: Text


class LabelMerge(BaseModel):
    label: int
    into: int


class DimensionEdit(BaseModel):
    name_en: Text
    name_zh: Text
    description: Description = ""
    scope: Scope
    speaker: Speaker
    kind: Kind
    max_labels: Annotated[int | None, BeforeValidator(_form_number)] = None
    required: bool = False
    etag: str = ""

    @field_validator("max_labels")
    @classmethod
    def _cardinality(cls, value: int | None, info: ValidationInfo) -> int | None:
        if info.data.get("kind") == "text":
            return None
        if value is None:
            raise ValueError("Enter how many labels a value may have (1 or more).")
        return _max_labels(value)


class DimensionCreate(DimensionEdit):
    key: DimensionKey


# --- The JSON document (`core.snapshot`), read strictly ----------------------------------------


def _document_error(message: str, **params: Any) -> PydanticCustomError:
    # The message keeps its %(name)s placeholders; the params travel in the error's ctx, so the
    # route can translate the message first and fill it in afterwards.
    return PydanticCustomError("codebook", message, params)


def _doc_text(value: str) -> str:
    if not value.strip():
        raise ValueError("This field must not be empty.")
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError("This text is too long.")
    return value


DocText = Annotated[str, AfterValidator(_doc_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class LabelDoc(_Strict):
    value: DocText
    name_en: DocText
    name_zh: DocText
    description: Description = ""
    hotkey: Hotkey = None
    aliases: list[DocText] = []


class DimensionDoc(_Strict):
    key: DimensionKey
    name_en: DocText
    name_zh: DocText
    description: Description = ""
    scope: Scope
    speaker: Speaker
    kind: Kind
    max_labels: Annotated[int | None, AfterValidator(_max_labels)] = None
    required: bool = False
    labels: list[LabelDoc] = []

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[LabelDoc]) -> list[LabelDoc]:
        spellings: set[str] = set()
        hotkeys: set[str] = set()
        for label in labels:
            for spelling in (label.value, *label.aliases):
                if spelling in spellings:
                    raise _document_error(
                        N_("The label value or alias “%(value)s” appears more than once."),
                        value=spelling,
                    )
                spellings.add(spelling)
            if label.hotkey is not None:
                if label.hotkey in hotkeys:
                    raise _document_error(
                        N_("The hotkey “%(hotkey)s” is used by more than one label."),
                        hotkey=label.hotkey,
                    )
                hotkeys.add(label.hotkey)
        return labels

    @model_validator(mode="after")
    def _kind_matches(self) -> DimensionDoc:
        if self.kind == "text" and self.labels:
            raise _document_error(N_("A free-text field cannot have labels."))
        if self.kind == "text" and self.max_labels is not None:
            raise _document_error(N_("A free-text field has no max_labels (use null)."))
        if self.kind == "label" and self.max_labels is None:
            raise _document_error(N_("A label dimension needs max_labels (1 or more)."))
        return self


class CodebookDocument(_Strict):
    """A whole codebook as `core.snapshot` writes it (the API's `version` is accepted too)."""

    format: str
    format_version: int
    version: int | None = None
    dimensions: list[DimensionDoc]

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value != FORMAT:
            raise _document_error(
                N_("This is not a codebook file: “format” must be “%(expected)s”."),
                expected=FORMAT,
            )
        return value

    @field_validator("format_version")
    @classmethod
    def _format_version(cls, value: int) -> int:
        if value != FORMAT_VERSION:
            raise _document_error(
                N_("Unsupported codebook format_version %(found)s: this version reads 1."),
                found=value,
            )
        return value

    @field_validator("dimensions")
    @classmethod
    def _unique_keys(cls, dimensions: list[DimensionDoc]) -> list[DimensionDoc]:
        seen: set[str] = set()
        for dimension in dimensions:
            if dimension.key in seen:
                raise _document_error(
                    N_("The dimension key “%(key)s” appears more than once."), key=dimension.key
                )
            seen.add(dimension.key)
        return dimensions


# --- API output ----------------------------------------------------------------------------------


class LabelOut(BaseModel):
    value: str
    name_en: str
    name_zh: str
    description: str
    hotkey: str | None
    aliases: list[str]


class DimensionOut(BaseModel):
    key: str
    name_en: str
    name_zh: str
    description: str
    scope: str
    speaker: str
    kind: str
    max_labels: int | None
    required: bool
    labels: list[LabelOut]


class CodebookOut(BaseModel):
    """The codebook snapshot (importable as is) plus its current version."""

    format: str
    format_version: int
    version: int
    dimensions: list[DimensionOut]
