"""Generic JSON Lines: the tool's own lossless interchange format, one dialogue per line.

Specification
-------------
UTF-8 text; each non-blank line is one JSON object (a dialogue); blank lines are ignored.

Dialogue object keys (any other key is an error):

- ``dialog_id`` (string, required, non-empty): the dialogue's external id.
- ``turns`` (array, required, at least one element): the turns in order; a turn's position is
  its index in this array (0-based).
- ``language`` (string, optional): e.g. ``"en"`` or ``"zh"``; guessed from the text if absent.
- ``metadata`` (object, optional): free session metadata (background, theme, stage, ...),
  any JSON values; kept as they are, key order included.
- ``labels`` (object, optional): session-level source annotations, keyed by dimension key
  (e.g. ``psychotherapy``, ``topic``, ``guide``, ``summary``).  A label dimension takes an
  array of label strings (also when it allows a single label); a free-text dimension takes a
  string.

Turn object keys (any other key is an error):

- ``speaker`` (required): exactly ``"client"`` or ``"counselor"``.
- ``content`` (string, required): the utterance, verbatim.
- ``participant`` (string, optional, default ``""``): the display name of the speaker.
- ``id`` (string or null, optional): the turn's id in the source, not necessarily unique.
- ``labels`` (object, optional): turn-level source annotations keyed by dimension key
  (``emotion``, ``strategy``: arrays of strings; ``reasoning``, ``observation``: strings).
- ``extras`` (object, optional): other source fields kept verbatim (e.g. stage directions).

Example line::

    {"dialog_id": "d1", "language": "en", "metadata": {"background": "..."},
     "labels": {"topic": ["Job Crisis"]},
     "turns": [{"speaker": "client", "participant": "Client", "content": "I lost my job.",
                "labels": {"emotion": ["Sadness"]}}]}

(shown wrapped; in a file it is one line).  The writer emits keys in the order above
(``dialog_id, language, metadata, labels, turns``; turn ``speaker, participant, content, id,
labels, extras``), omits empty optional keys, and does not escape non-ASCII characters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TextIO

from app.formats import model as m
from app.formats.errors import ErrorCode, FormatError, RecordError
from app.formats.jsonstream import first_char, iter_json_lines
from app.formats.model import Dialogue, JsonValue, SourceAnnotation, Turn
from app.formats.source import iter_lines
from app.formats.validate import Checker

if TYPE_CHECKING:
    from app.formats.reader import ReadContext

FORMAT = "jsonl"
DIALOGUE_KEYS = ("dialog_id", "language", "metadata", "labels", "turns")
TURN_KEYS = ("speaker", "participant", "content", "id", "labels", "extras")
SPEAKERS: dict[str, m.Speaker] = {"client": "client", "counselor": "counselor"}


def read(chunks: Iterable[str], ctx: ReadContext) -> Iterator[Dialogue | list[RecordError]]:
    """Yield each line's dialogue (or its errors)."""
    it = iter(chunks)
    head = next(it, "")
    if first_char(head) == "[":
        raise FormatError(
            ErrorCode.WRONG_TOP_LEVEL,
            "expected one JSON object per line, found a "
            "JSON array; choose a JSON-array format instead",
            line=1,
        )
    lines = iter_lines(_chain(head, it))
    records = iter_json_lines(lines, max_depth=ctx.options.max_depth)
    yield from ctx.convert(records, read_record)


def _chain(head: str, rest: Iterator[str]) -> Iterator[str]:
    yield head
    yield from rest


def _unknown(
    chk: Checker,
    obj: dict[str, JsonValue],
    allowed: tuple[str, ...],
    path: str,
    position: int | None = None,
) -> None:
    for key in obj:
        if key not in allowed:
            chk.error(
                ErrorCode.UNKNOWN_KEY,
                f"{path}{key}",
                f"expected one of the keys {', '.join(allowed)}, found {key!r}",
                position,
            )


def _annotations(
    chk: Checker, value: JsonValue, path: str, position: int | None = None
) -> tuple[SourceAnnotation, ...]:
    obj = chk.obj(value, path, position)
    found: list[SourceAnnotation | None] = []
    for dim, item in (obj or {}).items():
        vocabulary = chk.options.vocabulary or {}
        if isinstance(item, str) and dim not in vocabulary:
            found.append(chk.text(dim, item, f"{path}.{dim}", position))
        elif isinstance(item, str):
            chk.error(
                ErrorCode.WRONG_TYPE,
                f"{path}.{dim}",
                f"expected an array of label strings for label dimension {dim!r}, found a string",
                position,
            )
        else:
            found.append(chk.labels(dim, item, f"{path}.{dim}", position))
    return tuple(a for a in found if a is not None)


def read_record(value: JsonValue, chk: Checker, language: str | None = None) -> Dialogue | None:
    """Convert one JSONL dialogue object."""
    obj = chk.obj(value, "(record)")
    if obj is None:
        return None
    _unknown(chk, obj, DIALOGUE_KEYS, "")
    dialog_id = (
        chk.string(obj["dialog_id"], "dialog_id")
        if chk.has(obj, "dialog_id", "dialog_id")
        else None
    )
    if dialog_id == "":
        chk.error(ErrorCode.EMPTY_VALUE, "dialog_id", 'expected a non-empty id, found ""')
    chk.dialog_id = dialog_id
    lang = chk.string(obj["language"], "language") if "language" in obj else None
    metadata = chk.obj(obj.get("metadata", {}), "metadata")
    annotations = _annotations(chk, obj.get("labels", {}), "labels")
    turns: list[Turn | None] = []
    if chk.has(obj, "turns", "turns") and (items := chk.array(obj["turns"], "turns")) is not None:
        if not items:
            chk.error(ErrorCode.EMPTY_VALUE, "turns", "expected at least one turn, found none")
        turns = [read_turn(chk, item, pos) for pos, item in enumerate(items)]
    if chk.errors or dialog_id is None or metadata is None:
        return None
    built = tuple(t for t in turns if t is not None)
    return Dialogue(
        external_id=dialog_id,
        language=language or lang or m.guess_language([t.content for t in built[:20]]),
        metadata=metadata,
        turns=built,
        annotations=annotations,
        source_format=FORMAT,
    )


def read_turn(chk: Checker, value: JsonValue, pos: int) -> Turn | None:
    """Convert one JSONL turn object."""
    path = f"turns[{pos}]"
    obj = chk.obj(value, path, pos)
    if obj is None:
        return None
    _unknown(chk, obj, TURN_KEYS, path + ".", pos)
    speaker = content = None
    if chk.has(obj, "speaker", f"{path}.speaker", pos):
        speaker = chk.speaker(obj["speaker"], SPEAKERS, f"{path}.speaker", pos)
    if chk.has(obj, "content", f"{path}.content", pos):
        content = chk.string(obj["content"], f"{path}.content", pos)
    participant = chk.string(obj.get("participant", ""), f"{path}.participant", pos)
    source = obj.get("id")
    source_id = None if source is None else chk.string(source, f"{path}.id", pos)
    annotations = _annotations(chk, obj.get("labels", {}), f"{path}.labels", pos)
    extras = chk.obj(obj.get("extras", {}), f"{path}.extras", pos)
    if speaker is None or content is None or participant is None or extras is None:
        return None
    if source is not None and source_id is None:
        return None
    who = SPEAKERS[speaker]
    return Turn(
        pos,
        who,
        participant,
        content,
        source_id,
        annotations,
        extras,
        flags=m.emotion_flags(who, annotations),
    )


def _labels(annotations: tuple[SourceAnnotation, ...]) -> dict[str, JsonValue]:
    return {a.dimension: a.text if a.text is not None else list(a.labels) for a in annotations}


def to_record(dialogue: Dialogue) -> dict[str, JsonValue]:
    """One dialogue as a JSONL object."""
    record: dict[str, JsonValue] = {"dialog_id": dialogue.external_id}
    if dialogue.language:
        record["language"] = dialogue.language
    if dialogue.metadata:
        record["metadata"] = dict(dialogue.metadata)
    if dialogue.annotations:
        record["labels"] = _labels(dialogue.annotations)
    turns: list[JsonValue] = []
    for turn in dialogue.turns:
        item: dict[str, JsonValue] = {
            "speaker": turn.speaker,
            "participant": turn.participant,
            "content": turn.content,
        }
        if turn.source_id is not None:
            item["id"] = turn.source_id
        if turn.annotations:
            item["labels"] = _labels(turn.annotations)
        if turn.extras:
            item["extras"] = dict(turn.extras)
        turns.append(item)
    record["turns"] = turns
    return record


def write(dialogues: Iterable[Dialogue], out: TextIO) -> int:
    """Write dialogues as JSON Lines (``\\n`` after each); returns how many were written."""
    count = 0
    for dialogue in dialogues:
        out.write(json.dumps(to_record(dialogue), ensure_ascii=False) + "\n")
        count += 1
    return count
