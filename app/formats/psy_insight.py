"""Psy-Insight v7 (formats.md §1): one JSON array of sessions, read and written losslessly.

Session ``psychotherapy``/``topic`` become label annotations and ``guide``/``summary`` text
annotations; every other session key (theme, stage, is_same_qa, is_same_session, background,
reasoning, unknown keys) stays in ``metadata`` with its JSON type.  Turn ``emotional label``,
``strategy``, ``reasoning``, ``observation`` become annotations; ``labels``,
``reference_labels`` and unknown turn keys are kept verbatim in ``extras``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TextIO

from app.formats import model as m
from app.formats.errors import ErrorCode, json_type, shown
from app.formats.jsonwriter import JsonArrayWriter, write_array
from app.formats.model import Dialogue, JsonValue, SourceAnnotation, Speaker, Turn
from app.formats.validate import Checker

FORMAT = "psy_insight_v7"
SESSION_KEYS = (
    "dialog_id",
    "theme",
    "psychotherapy",
    "topic",
    "stage",
    "guide",
    "is_same_qa",
    "is_same_session",
    "background",
    "reasoning",
    "dialog",
    "summary",
)
TURN_KEYS = (
    "speaker",
    "participant",
    "content",
    "id",
    "labels",
    "reference_labels",
    "observation",
    "reasoning",
    "emotional label",
    "strategy",
)
SPEAKERS: dict[str, Speaker] = {"Seeker": "client", "Supporter": "counselor"}
SESSION_LABELS = {"psychotherapy": m.PSYCHOTHERAPY, "topic": m.TOPIC}
SESSION_TEXTS = {"guide": m.GUIDE, "summary": m.SUMMARY}
TURN_LABELS = {"emotional label": m.EMOTION, "strategy": m.STRATEGY}
TURN_TEXTS = {"reasoning": m.REASONING, "observation": m.OBSERVATION}
_STRING_META = frozenset({"theme", "stage", "background", "reasoning"})
_FLAG_META = frozenset({"is_same_qa", "is_same_session"})

# (checker, turn value, position, path) -> Turn, or None after recording errors
TurnReader = Callable[[Checker, JsonValue, int, str], Turn | None]


def read_record(value: JsonValue, chk: Checker, language: str | None = None) -> Dialogue | None:
    """Convert one v7 session object; None when ``chk`` collected errors."""
    obj = chk.obj(value, "(record)")
    if obj is None:
        return None
    dialog_id = None
    if chk.has(obj, "dialog_id", "dialog_id"):
        dialog_id = chk.string(obj["dialog_id"], "dialog_id")
        chk.dialog_id = dialog_id
    metadata: dict[str, JsonValue] = {}
    annotations: list[SourceAnnotation | None] = []
    for key, item in obj.items():
        if key in SESSION_LABELS:
            annotations.append(chk.labels(SESSION_LABELS[key], item, key))
        elif key in SESSION_TEXTS:
            annotations.append(chk.text(SESSION_TEXTS[key], item, key))
        elif key not in ("dialog_id", "dialog"):
            check_meta(chk, key, item, key)
            metadata[key] = item
    turns = read_turns(chk, obj, "dialog", "dialog", read_turn)
    if chk.errors or dialog_id is None or turns is None:
        return None
    texts = [turn.content for turn in turns[:20]]
    return Dialogue(
        external_id=dialog_id,
        language=language or m.guess_language(texts),
        metadata=metadata,
        turns=tuple(turns),
        annotations=tuple(a for a in annotations if a is not None),
        source_format=FORMAT,
        layout=tuple(obj),
    )


def check_meta(chk: Checker, key: str, value: JsonValue, path: str) -> None:
    """Type-check the session metadata keys that formats.md defines."""
    if key in _STRING_META:
        chk.string(value, path)
    elif key in _FLAG_META and (isinstance(value, bool) or not isinstance(value, int | str)):
        chk.error(
            ErrorCode.WRONG_TYPE,
            path,
            f'expected an integer (or ""), found {json_type(value)} {shown(value)}',
        )


def read_turns(
    chk: Checker, obj: dict[str, JsonValue], key: str, path: str, reader: TurnReader
) -> list[Turn] | None:
    """Read the turn array at ``obj[key]`` with ``reader``; None if absent or malformed."""
    if not chk.has(obj, key, path):
        return None
    items = chk.array(obj[key], path)
    if items is None:
        return None
    if not items:
        chk.error(ErrorCode.EMPTY_VALUE, path, "expected at least one turn, found an empty array")
    turns = [reader(chk, item, pos, f"{path}[{pos}]") for pos, item in enumerate(items)]
    return [turn for turn in turns if turn is not None]


def read_turn(chk: Checker, value: JsonValue, pos: int, path: str) -> Turn | None:
    """Convert one v7 turn object."""
    obj = chk.obj(value, path, pos)
    if obj is None:
        return None
    fields = {}
    for key in ("speaker", "participant", "content", "id"):
        if chk.has(obj, key, f"{path}.{key}", pos):
            fields[key] = obj[key]
    speaker = (
        chk.speaker(fields["speaker"], SPEAKERS, f"{path}.speaker", pos)
        if "speaker" in fields
        else None
    )
    strings = {k: chk.string(v, f"{path}.{k}", pos) for k, v in fields.items() if k != "speaker"}
    annotations, extras = turn_annotations(chk, obj, pos, path, skip=frozenset(fields))
    participant, content, source_id = (strings.get(k) for k in ("participant", "content", "id"))
    if speaker is None or participant is None or content is None or source_id is None:
        return None
    return make_turn(pos, speaker, participant, content, source_id, annotations, extras, tuple(obj))


def turn_annotations(
    chk: Checker, obj: dict[str, JsonValue], pos: int, path: str, skip: frozenset[str]
) -> tuple[tuple[SourceAnnotation, ...], dict[str, JsonValue]]:
    """Split a turn's other keys into source annotations and verbatim extras."""
    annotations: list[SourceAnnotation | None] = []
    extras: dict[str, JsonValue] = {}
    for key, item in obj.items():
        if key in TURN_LABELS:
            annotations.append(chk.labels(TURN_LABELS[key], item, f"{path}.{key}", pos))
        elif key in TURN_TEXTS:
            annotations.append(chk.text(TURN_TEXTS[key], item, f"{path}.{key}", pos))
        elif key not in skip:
            extras[key] = item
    return tuple(a for a in annotations if a is not None), extras


def make_turn(
    pos: int,
    speaker: str,
    participant: str,
    content: str,
    source_id: str | None,
    annotations: tuple[SourceAnnotation, ...],
    extras: dict[str, JsonValue],
    layout: tuple[str, ...],
) -> Turn:
    """Build a Turn, flagging the all-emotions artefact."""
    who: Speaker = "client" if speaker == "client" else "counselor"
    return Turn(
        pos,
        who,
        participant,
        content,
        source_id,
        annotations,
        extras,
        layout,
        m.emotion_flags(who, annotations),
    )


def label_value(ann: SourceAnnotation | None, *, as_string: bool) -> JsonValue:
    """A label annotation as the file writes it: a list, or one string (``""`` when empty)."""
    if ann is None:
        return "" if as_string else []
    if (ann.scalar or as_string) and len(ann.labels) <= 1:
        return ann.labels[0] if ann.labels else ""
    return list(ann.labels)


def text_value(ann: SourceAnnotation | None) -> str:
    """A text annotation as written (``""`` when absent)."""
    return ann.text if ann is not None and ann.text is not None else ""


def turn_values(turn: Turn) -> dict[str, JsonValue]:
    """The annotation and extra keys of a turn that actually carry data, by file key."""
    values: dict[str, JsonValue] = dict(turn.extras)
    for key, dim in TURN_TEXTS.items():
        if (ann := turn.annotation(dim)) is not None:
            values[key] = text_value(ann)
    for key, dim in TURN_LABELS.items():
        if (ann := turn.annotation(dim)) is not None:
            values[key] = label_value(ann, as_string=False)
    return values


def turn_record(turn: Turn, layout: tuple[str, ...]) -> dict[str, JsonValue]:
    """One turn as a v7 object, keys in the recorded (else canonical) order."""
    values: dict[str, JsonValue] = {
        "speaker": "Seeker" if turn.speaker == "client" else "Supporter",
        "participant": turn.participant,
        "content": turn.content,
        "id": turn.source_id if turn.source_id is not None else f"0-{turn.position}",
        **turn_values(turn),
    }
    if not layout:
        layout = ("emotional label",) if turn.speaker == "client" else ("strategy",)
    for key in layout:
        if key not in values:
            values[key] = [] if key in TURN_LABELS else ""
    return {key: values[key] for key in m.merge_order(layout, TURN_KEYS, list(values))}


def to_record(dialogue: Dialogue) -> dict[str, JsonValue]:
    """One dialogue as a v7 session object (exact inverse of :func:`read_record`)."""
    layout = dialogue.layout_for(FORMAT)
    values: dict[str, JsonValue] = {"dialog_id": dialogue.external_id, **dialogue.metadata}
    for key, dim in SESSION_LABELS.items():
        ann = dialogue.annotation(dim)
        if ann is not None or not layout or key in layout:
            values[key] = label_value(ann, as_string=not layout or ann is None or ann.scalar)
    for key, dim in SESSION_TEXTS.items():
        ann = dialogue.annotation(dim)
        if ann is not None or not layout or key in layout:
            values[key] = text_value(ann)
    for key in layout or SESSION_KEYS:
        values.setdefault(key, 0 if key in _FLAG_META else "")
    values["dialog"] = [turn_record(turn, turn.layout if layout else ()) for turn in dialogue.turns]
    return {key: values[key] for key in m.merge_order(layout, SESSION_KEYS, list(values))}


def writer(out: TextIO, *, newline: str = "\n", final_newline: bool = False) -> JsonArrayWriter:
    """A streaming v7 writer (4-space indent, CJK unescaped); call ``close()`` at the end."""
    return JsonArrayWriter(out, to_record, indent=4, newline=newline, final_newline=final_newline)


def write(
    dialogues: Iterable[Dialogue], out: TextIO, *, newline: str = "\n", final_newline: bool = False
) -> int:
    """Write dialogues as a v7 file; the released files use ``newline="\\r\\n"``."""
    return write_array(
        dialogues, out, to_record, indent=4, newline=newline, final_newline=final_newline
    )
