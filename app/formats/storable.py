"""Text PostgreSQL cannot store: the NUL character (U+0000), in `text` or in `jsonb`.

JSON may spell it `\\u0000` inside any string; the readers accept it like any character, so
the import checks each dialogue before writing it and reports where it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from app.formats.model import Dialogue, JsonValue, SourceAnnotation

NUL = "\x00"


def nul_fields(dialogue: Dialogue) -> Iterator[tuple[int | None, str]]:
    """(turn position or None, field path) of every field holding a NUL character."""
    if NUL in dialogue.external_id:
        yield None, "dialog_id"
    yield from ((None, p) for p in _in_json(dialogue.metadata, "metadata"))
    yield from ((None, p) for p in _in_annotations(dialogue.annotations))
    for turn in dialogue.turns:
        for name in ("participant", "content", "source_id"):
            value = getattr(turn, name)
            if value is not None and NUL in value:
                yield turn.position, name
        yield from ((turn.position, p) for p in _in_json(turn.extras, "extras"))
        yield from ((turn.position, p) for p in _in_annotations(turn.annotations))


def _in_annotations(annotations: tuple[SourceAnnotation, ...]) -> Iterator[str]:
    for a in annotations:
        if (a.text is not None and NUL in a.text) or any(NUL in v for v in a.labels):
            yield a.dimension


def _in_json(value: JsonValue | Mapping[str, JsonValue], path: str) -> Iterator[str]:
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if NUL in key:
                yield f"{path}.{key!r}"
            yield from _in_json(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _in_json(item, f"{path}[{i}]")
