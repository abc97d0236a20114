"""ESConv (formats.md §4): a JSON array of conversations, read and written losslessly.

Every top-level key except ``dialog`` (experience_type, emotion_type, problem_type, situation,
survey_score, seeker_question1, ...) is kept in ``metadata`` as it is; ESConv's own
emotion/problem vocabularies differ from the codebook's, so they are not turned into labels.
A turn's ``annotation.strategy`` becomes a ``strategy`` annotation (ESConv writes one string,
and spells ``Reflection of feelings`` with a small f); the rest of ``annotation`` (e.g. the
seeker's ``feedback``) and unknown turn keys are kept in ``extras``.  ESConv has no ids: the
dialogue id is the 1-based record number, zero-padded to 6 digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from app.formats import model as m
from app.formats.jsonwriter import write_array
from app.formats.model import Dialogue, JsonValue, SourceAnnotation, Speaker, Turn
from app.formats.psy_insight import label_value, make_turn, read_turns
from app.formats.validate import Checker

FORMAT = "esconv"
SPEAKERS: dict[str, Speaker] = {"seeker": "client", "supporter": "counselor"}
SESSION_KEYS = (
    "experience_type",
    "emotion_type",
    "problem_type",
    "situation",
    "survey_score",
    "dialog",
    "seeker_question1",
    "seeker_question2",
    "supporter_question1",
    "supporter_question2",
)
TURN_KEYS = ("speaker", "annotation", "content")


def read_record(value: JsonValue, chk: Checker, language: str | None = None) -> Dialogue | None:
    """Convert one ESConv conversation object."""
    obj = chk.obj(value, "(record)")
    if obj is None:
        return None
    turns = read_turns(chk, obj, "dialog", "dialog", read_turn)
    if chk.errors or turns is None:
        return None
    return Dialogue(
        external_id=f"{chk.record + 1:06d}",
        language=language or "en",
        metadata={key: item for key, item in obj.items() if key != "dialog"},
        turns=tuple(turns),
        source_format=FORMAT,
        layout=tuple(obj),
    )


def read_turn(chk: Checker, value: JsonValue, pos: int, path: str) -> Turn | None:
    """Convert one ESConv turn."""
    obj = chk.obj(value, path, pos)
    if obj is None:
        return None
    speaker = content = None
    if chk.has(obj, "speaker", f"{path}.speaker", pos):
        speaker = chk.speaker(obj["speaker"], SPEAKERS, f"{path}.speaker", pos)
    if chk.has(obj, "content", f"{path}.content", pos):
        content = chk.string(obj["content"], f"{path}.content", pos)
    extras = {k: v for k, v in obj.items() if k not in ("speaker", "content", "annotation")}
    annotations: tuple[SourceAnnotation, ...] = ()
    layout = tuple(obj)
    if "annotation" in obj:
        note = chk.obj(obj["annotation"], f"{path}.annotation", pos)
        if note is None:
            return None
        if "strategy" in note:
            ann = chk.labels(m.STRATEGY, note["strategy"], f"{path}.annotation.strategy", pos)
            annotations = (ann,) if ann is not None else ()
        extras["annotation"] = {k: v for k, v in note.items() if k != "strategy"}
        layout += tuple(f"annotation.{key}" for key in note)
    if speaker is None or content is None:
        return None
    return make_turn(pos, speaker, "", content, None, annotations, extras, layout)


def turn_record(turn: Turn, layout: tuple[str, ...]) -> dict[str, JsonValue]:
    """One turn as an ESConv object."""
    extras = dict(turn.extras)
    rest = extras.pop("annotation", {})
    note: dict[str, JsonValue] = dict(rest) if isinstance(rest, dict) else {}
    ann = turn.annotation(m.STRATEGY)
    if ann is not None:
        note["strategy"] = label_value(ann, as_string=True)
    note_order = m.merge_order(m.nested_layout(layout, "annotation"), ("strategy",), list(note))
    values: dict[str, JsonValue] = {
        "speaker": "seeker" if turn.speaker == "client" else "supporter",
        "annotation": {key: note[key] for key in note_order},
        "content": turn.content,
        **extras,
    }
    return {key: values[key] for key in m.merge_order(layout, TURN_KEYS, list(values))}


def to_record(dialogue: Dialogue) -> dict[str, JsonValue]:
    """One dialogue as an ESConv conversation object."""
    layout = dialogue.layout_for(FORMAT)
    values: dict[str, JsonValue] = dict(dialogue.metadata)
    values["dialog"] = [turn_record(t, t.layout if layout else ()) for t in dialogue.turns]
    return {key: values[key] for key in m.merge_order(layout, SESSION_KEYS, list(values))}


def write(
    dialogues: Iterable[Dialogue],
    out: TextIO,
    *,
    indent: int = 2,
    newline: str = "\n",
    final_newline: bool = False,
) -> int:
    """Write dialogues as an ESConv JSON array."""
    return write_array(
        dialogues, out, to_record, indent=indent, newline=newline, final_newline=final_newline
    )
