"""The lean path for well-formed Psy-Insight v7 sessions, in front of the located checks.

:func:`read_record` first tries :func:`read_clean`, which only accepts a session that the full
reader (:func:`app.formats.psy_insight.read_record`) would accept without a single error or new
label, and builds exactly the :class:`Dialogue` that reader builds. It asks no questions beyond
that: at the first thing out of the ordinary (a missing key, a wrong type, an unknown speaker or
label, an alias spelling, an empty dialog) it gives up and the full reader goes over the session
again, collecting every problem with its place. So the error report is the full reader's, and
clean sessions skip the per-field bookkeeping (paths, positions) that only errors need.
"""

from __future__ import annotations

from app.formats import model as m
from app.formats.model import Dialogue, JsonValue, SourceAnnotation, Turn
from app.formats.psy_insight import (
    _FLAG_META,
    _STRING_META,
    SESSION_LABELS,
    SESSION_TEXTS,
    SPEAKERS,
    TURN_LABELS,
    TURN_TEXTS,
)
from app.formats.psy_insight import (
    read_record as read_checked,
)
from app.formats.validate import Checker, Vocabulary

_TURN_FIELDS = frozenset({"speaker", "participant", "content", "id"})
_SESSION_SKIP = frozenset({"dialog_id", "dialog"})
# label annotations repeat (a few label sets per dimension): each distinct one is built once
_LABELS: dict[tuple[str, tuple[str, ...], bool], SourceAnnotation] = {}
_LABELS_MAX = 4096


class _Unclean(Exception):
    """Something the lean path does not vouch for: the full reader takes over."""


def read_record(value: JsonValue, chk: Checker, language: str | None = None) -> Dialogue | None:
    """Convert one v7 session: the lean path if it is clean, else the full, located checks."""
    try:
        return read_clean(value, chk.options.vocabulary, language)
    except _Unclean:
        return read_checked(value, chk, language)


def read_clean(
    value: JsonValue, vocabulary: Vocabulary | None, language: str | None = None
) -> Dialogue:
    """The dialogue of a session the full reader would accept as it is; raises ``_Unclean``."""
    if not isinstance(value, dict):
        raise _Unclean
    dialog_id, items = value.get("dialog_id"), value.get("dialog")
    if not isinstance(dialog_id, str) or not isinstance(items, list) or not items:
        raise _Unclean
    metadata: dict[str, JsonValue] = {}
    annotations: list[SourceAnnotation] = []
    for key, item in value.items():
        if key in SESSION_LABELS:
            annotations.append(_labels(SESSION_LABELS[key], item, vocabulary))
        elif key in SESSION_TEXTS:
            annotations.append(_text(SESSION_TEXTS[key], item))
        elif key not in _SESSION_SKIP:
            if key in _STRING_META and not isinstance(item, str):
                raise _Unclean
            if key in _FLAG_META and (isinstance(item, bool) or not isinstance(item, int | str)):
                raise _Unclean
            metadata[key] = item
    turns = tuple(_turn(item, pos, vocabulary) for pos, item in enumerate(items))
    return Dialogue(
        external_id=dialog_id,
        language=language or m.guess_language([turn.content for turn in turns[:20]]),
        metadata=metadata,
        turns=turns,
        annotations=tuple(annotations),
        source_format="psy_insight_v7",
        layout=tuple(value),
    )


def _turn(value: JsonValue, pos: int, vocabulary: Vocabulary | None) -> Turn:
    if not isinstance(value, dict) or not value.keys() >= _TURN_FIELDS:
        raise _Unclean
    said, participant, content = value["speaker"], value["participant"], value["content"]
    source_id = value["id"]
    speaker = SPEAKERS.get(said) if isinstance(said, str) else None
    if (
        speaker is None
        or not isinstance(participant, str)
        or not isinstance(content, str)
        or not isinstance(source_id, str)
    ):
        raise _Unclean
    annotations: list[SourceAnnotation] = []
    extras: dict[str, JsonValue] = {}
    for key, item in value.items():
        if key in TURN_LABELS:
            annotations.append(_labels(TURN_LABELS[key], item, vocabulary))
        elif key in TURN_TEXTS:
            annotations.append(_text(TURN_TEXTS[key], item))
        elif key not in _TURN_FIELDS:
            extras[key] = item
    found = tuple(annotations)
    return Turn(
        pos,
        speaker,
        participant,
        content,
        source_id,
        found,
        extras,
        tuple(value),
        m.emotion_flags(speaker, found),
    )


def _text(dimension: str, value: JsonValue) -> SourceAnnotation:
    if not isinstance(value, str):
        raise _Unclean
    return SourceAnnotation(dimension, text=value)


def _labels(dimension: str, value: JsonValue, vocabulary: Vocabulary | None) -> SourceAnnotation:
    if isinstance(value, str):
        found: tuple[str, ...] = (value,) if value else ()
        scalar = True
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise _Unclean
        found, scalar = tuple(value), False  # type: ignore[arg-type]
    else:
        raise _Unclean
    if vocabulary is not None and (allowed := vocabulary.get(dimension)) is not None:
        for label in found:
            if label not in allowed:  # an alias or a new label: the full path's business
                raise _Unclean
    key = (dimension, found, scalar)
    known = _LABELS.get(key)
    if known is None:
        if len(_LABELS) >= _LABELS_MAX:
            _LABELS.clear()
        known = _LABELS[key] = SourceAnnotation(dimension, labels=found, scalar=scalar)
    return known
