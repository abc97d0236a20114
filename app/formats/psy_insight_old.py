"""The older Psy-Insight schema shown in the dataset's README (formats.md §1, "Older schema").

``{theme, chat_stage, is_same_qa, is_same_case, background, guide, pre_reasoning,
topic_dialog: {key, unit_id, method, dialog: [...]}, post_reasoning, extra_tags}``, in a JSON
array.  Mapping: chat_stage→stage, is_same_case→is_same_session, pre_reasoning→reasoning
(metadata); post_reasoning→``summary`` and guide→``guide`` (text annotations);
topic_dialog.method→``psychotherapy`` (label); other topic_dialog keys are kept in metadata as
``topic_dialog.<key>``.  Turns: text→content; the speaker comes from ``participant``
(``Therapist``/``治疗师`` → counselor, anything else → client).  The records have no id: the
dialogue id is the 1-based record number, zero-padded to 6 digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from app.formats import model as m
from app.formats.jsonwriter import write_array
from app.formats.model import Dialogue, JsonValue, SourceAnnotation, Turn
from app.formats.psy_insight import (
    TURN_LABELS,
    check_meta,
    label_value,
    make_turn,
    read_turns,
    text_value,
    turn_annotations,
    turn_values,
)
from app.formats.validate import Checker

FORMAT = "psy_insight_old"
TOP_KEYS = (
    "theme",
    "chat_stage",
    "is_same_qa",
    "is_same_case",
    "background",
    "guide",
    "pre_reasoning",
    "topic_dialog",
    "post_reasoning",
    "extra_tags",
)
UNIT_KEYS = ("key", "unit_id", "method", "dialog")
TURN_KEYS = ("text", "participant", "observation", "reasoning", "id", "emotional label", "strategy")
RENAMED = {"chat_stage": "stage", "is_same_case": "is_same_session", "pre_reasoning": "reasoning"}
RENAMED_BACK = {new: old for old, new in RENAMED.items()}
THERAPISTS = frozenset({"Therapist", "治疗师"})
UNIT = "topic_dialog"


def read_record(value: JsonValue, chk: Checker, language: str | None = None) -> Dialogue | None:
    """Convert one old-schema session object."""
    obj = chk.obj(value, "(record)")
    if obj is None:
        return None
    metadata: dict[str, JsonValue] = {}
    annotations: list[SourceAnnotation | None] = []
    for key, item in obj.items():
        if key == "guide":
            annotations.append(chk.text(m.GUIDE, item, key))
        elif key == "post_reasoning":
            annotations.append(chk.text(m.SUMMARY, item, key))
        elif key == "topic":
            annotations.append(chk.labels(m.TOPIC, item, key))
        elif key != UNIT:
            name = RENAMED.get(key, key)
            check_meta(chk, name, item, key)
            metadata[name if name not in metadata else key] = item
    layout = tuple(obj)
    turns = None
    unit = chk.obj(obj[UNIT], UNIT) if chk.has(obj, UNIT, UNIT) else None
    if unit is not None:
        for key, item in unit.items():
            if key == "method":
                annotations.append(chk.labels(m.PSYCHOTHERAPY, item, f"{UNIT}.method"))
            elif key != "dialog":
                metadata[f"{UNIT}.{key}"] = item
        turns = read_turns(chk, unit, "dialog", f"{UNIT}.dialog", read_turn)
        layout += tuple(f"{UNIT}.{key}" for key in unit)
    if chk.errors or turns is None:
        return None
    return Dialogue(
        external_id=f"{chk.record + 1:06d}",
        language=language or m.guess_language([t.content for t in turns[:20]]),
        metadata=metadata,
        turns=tuple(turns),
        annotations=tuple(a for a in annotations if a is not None),
        source_format=FORMAT,
        layout=layout,
    )


def read_turn(chk: Checker, value: JsonValue, pos: int, path: str) -> Turn | None:
    """Convert one old-schema turn (``text``, ``participant``, optional ``id``)."""
    obj = chk.obj(value, path, pos)
    if obj is None:
        return None
    found = {}
    for key in ("text", "participant"):
        if chk.has(obj, key, f"{path}.{key}", pos):
            found[key] = chk.string(obj[key], f"{path}.{key}", pos)
    source_id = chk.string(obj["id"], f"{path}.id", pos) if "id" in obj else None
    skip = frozenset({"text", "participant", "id"})
    annotations, extras = turn_annotations(chk, obj, pos, path, skip)
    content, participant = found.get("text"), found.get("participant")
    if content is None or participant is None or ("id" in obj and source_id is None):
        return None
    speaker = "counselor" if participant in THERAPISTS else "client"
    return make_turn(pos, speaker, participant, content, source_id, annotations, extras, tuple(obj))


def turn_record(turn: Turn, layout: tuple[str, ...]) -> dict[str, JsonValue]:
    """One turn as an old-schema object."""
    participant = turn.participant
    if (turn.speaker == "counselor") != (participant in THERAPISTS):
        # the speaker is only carried by the participant name in this schema
        participant = "Therapist" if turn.speaker == "counselor" else (participant or "Client")
    values: dict[str, JsonValue] = {"text": turn.content, "participant": participant}
    if turn.source_id is not None:
        values["id"] = turn.source_id
    values.update(turn_values(turn))
    for key in layout:
        values.setdefault(key, [] if key in TURN_LABELS else "")
    return {key: values[key] for key in m.merge_order(layout, TURN_KEYS, list(values))}


def to_record(dialogue: Dialogue) -> dict[str, JsonValue]:
    """One dialogue as an old-schema session object."""
    layout = dialogue.layout_for(FORMAT)
    values: dict[str, JsonValue] = {}
    unit: dict[str, JsonValue] = {}
    for key, item in dialogue.metadata.items():
        if key.startswith(UNIT + "."):
            unit[key[len(UNIT) + 1 :]] = item
        else:
            values[RENAMED_BACK.get(key, key)] = item
    for key, dim in (("guide", m.GUIDE), ("post_reasoning", m.SUMMARY)):
        if (ann := dialogue.annotation(dim)) is not None or key in layout or not layout:
            values[key] = text_value(ann)
    if (topic := dialogue.annotation(m.TOPIC)) is not None:
        values["topic"] = label_value(topic, as_string=True)
    method = dialogue.annotation(m.PSYCHOTHERAPY)
    if method is not None or not layout or f"{UNIT}.method" in layout:
        unit["method"] = label_value(method, as_string=True)
    unit["dialog"] = [turn_record(t, t.layout if layout else ()) for t in dialogue.turns]
    unit_order = m.merge_order(m.nested_layout(layout, UNIT), UNIT_KEYS, list(unit))
    values[UNIT] = {key: unit[key] for key in unit_order}
    if not layout:
        for key in TOP_KEYS:
            values.setdefault(
                key, 0 if key.startswith("is_") else [] if key == "extra_tags" else ""
            )
    return {key: values[key] for key in m.merge_order(layout, TOP_KEYS, list(values))}


def write(
    dialogues: Iterable[Dialogue],
    out: TextIO,
    *,
    indent: int = 4,
    newline: str = "\n",
    final_newline: bool = False,
) -> int:
    """Write dialogues as a JSON array in the old schema."""
    return write_array(
        dialogues, out, to_record, indent=indent, newline=newline, final_newline=final_newline
    )
