"""Located validation of one record: typed accessors that collect errors instead of raising."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from app.formats.errors import ErrorCode, RecordError, json_type, shown
from app.formats.model import JsonValue, SourceAnnotation
from app.formats.vocab import LABEL_ALIASES

Vocabulary = Mapping[str, Collection[str]]


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What label values are allowed, and whether unknown ones are errors or new labels.

    ``vocabulary`` None means no label check; a dimension missing from it is not checked.
    """

    vocabulary: Vocabulary | None = None
    collect_new_labels: bool = False
    aliases: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: LABEL_ALIASES)


class Checker:
    """Validates one record, collecting located errors and unseen labels."""

    def __init__(self, record: int, line: int | None, options: CheckOptions) -> None:
        self.record = record
        self.line = line
        self.options = options
        self.dialog_id: str | None = None
        self.errors: list[RecordError] = []
        self.new_labels: list[tuple[str, str]] = []

    def error(self, code: ErrorCode, path: str, message: str, position: int | None = None) -> None:
        """Record one problem at ``path``."""
        self.errors.append(
            RecordError(code, message, self.record, path, self.dialog_id, position, self.line)
        )

    def obj(
        self, value: JsonValue, path: str, position: int | None = None
    ) -> dict[str, JsonValue] | None:
        """The value as an object, or None after recording a type error."""
        if isinstance(value, dict):
            return value
        self.error(
            ErrorCode.WRONG_TYPE, path, f"expected an object, found {json_type(value)}", position
        )
        return None

    def array(
        self, value: JsonValue, path: str, position: int | None = None
    ) -> list[JsonValue] | None:
        """The value as an array, or None after recording a type error."""
        if isinstance(value, list):
            return value
        self.error(
            ErrorCode.WRONG_TYPE, path, f"expected an array, found {json_type(value)}", position
        )
        return None

    def has(
        self, obj: Mapping[str, JsonValue], key: str, path: str, position: int | None = None
    ) -> bool:
        """True if ``key`` is present; records a missing-key error otherwise."""
        if key in obj:
            return True
        self.error(
            ErrorCode.MISSING_KEY,
            path,
            f"expected key {key!r}, found it missing "
            f"(keys present: {', '.join(map(repr, obj)) or 'none'})",
            position,
        )
        return False

    def string(self, value: JsonValue, path: str, position: int | None = None) -> str | None:
        """The value as a string, or None after recording a type error."""
        if isinstance(value, str):
            return value
        self.error(
            ErrorCode.WRONG_TYPE,
            path,
            f"expected a string, found {json_type(value)} {shown(value)}",
            position,
        )
        return None

    def text(
        self, dimension: str, value: JsonValue, path: str, position: int | None = None
    ) -> SourceAnnotation | None:
        """A free-text annotation from a string value."""
        text = self.string(value, path, position)
        return None if text is None else SourceAnnotation(dimension, text=text)

    def labels(
        self, dimension: str, value: JsonValue, path: str, position: int | None = None
    ) -> SourceAnnotation | None:
        """A label annotation from a list of strings, or from one string (``""`` = none)."""
        if isinstance(value, str):
            found: tuple[str, ...] = (value,) if value else ()
            scalar = True
        elif isinstance(value, list):
            items = [self.string(item, f"{path}[{i}]", position) for i, item in enumerate(value)]
            if any(item is None for item in items):
                return None
            found = tuple(item for item in items if item is not None)
            scalar = False
        else:
            self.error(
                ErrorCode.WRONG_TYPE,
                path,
                f"expected an array of label strings, found {json_type(value)} {shown(value)}",
                position,
            )
            return None
        for i, label in enumerate(found):
            self.label(dimension, label, path if scalar else f"{path}[{i}]", position)
        return SourceAnnotation(dimension, labels=found, scalar=scalar)

    def label(self, dimension: str, label: str, path: str, position: int | None = None) -> None:
        """Check one label against the caller's vocabulary (known aliases are accepted)."""
        vocabulary = self.options.vocabulary
        if vocabulary is None or dimension not in vocabulary:
            return
        allowed = vocabulary[dimension]
        if label in allowed or self.options.aliases.get(dimension, {}).get(label) in allowed:
            return
        if self.options.collect_new_labels:
            self.new_labels.append((dimension, label))
            return
        self.error(
            ErrorCode.UNKNOWN_LABEL,
            path,
            f"expected a {dimension} label (one of "
            f"{', '.join(sorted(allowed))}), found {shown(label)}",
            position,
        )

    def speaker(
        self, value: JsonValue, mapping: Mapping[str, str], path: str, position: int
    ) -> str | None:
        """Map a source speaker value to ``client``/``counselor``, or record an error."""
        found = self.string(value, path, position)
        if found is None:
            return None
        if found in mapping:
            return mapping[found]
        expected = " or ".join(repr(key) for key in mapping)
        self.error(
            ErrorCode.UNKNOWN_SPEAKER, path, f"expected {expected}, found {shown(found)}", position
        )
        return None
