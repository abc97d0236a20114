"""Neutral in-memory model of one imported dialogue, independent of the file format.

A reader turns one record of a source file into a :class:`Dialogue`; a writer turns a
:class:`Dialogue` back into a record.  Everything needed to reproduce the source record exactly
is kept: metadata values with their original JSON types and key order, turn extras verbatim,
and the ``layout`` (key order of the source record, nested keys written ``parent.child``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None
Speaker: TypeAlias = Literal["client", "counselor"]
SPEAKERS: tuple[Speaker, ...] = ("client", "counselor")

# Dimension keys of the default codebook (see app.formats.vocab).
PSYCHOTHERAPY = "psychotherapy"
TOPIC = "topic"
GUIDE = "guide"
SUMMARY = "summary"
EMOTION = "emotion"
STRATEGY = "strategy"
REASONING = "reasoning"
OBSERVATION = "observation"

FLAG_ALL_EMOTIONS = "all_emotions"
# formats.md says "all 10-11 labels", but its count of 50 turns only holds when turns with
# 9 distinct labels are included (43 turns carry 10-11, 7 carry 9; one carries 8).
ALL_EMOTIONS_MIN_LABELS = 9

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True, slots=True)
class SourceAnnotation:
    """A label set or a free text that came with the imported data, for one dimension.

    ``labels`` is used by label dimensions, ``text`` by free-text dimensions.  ``scalar`` says
    the source held a single label as a bare string instead of a list (``""`` when empty).
    """

    dimension: str
    labels: tuple[str, ...] = ()
    text: str | None = None
    scalar: bool = False

    @property
    def is_text(self) -> bool:
        """True for a free-text annotation."""
        return self.text is not None


@dataclass(frozen=True, slots=True)
class Turn:
    """One utterance; ``position`` (0-based) identifies it, ``source_id`` may repeat."""

    position: int
    speaker: Speaker
    participant: str
    content: str
    source_id: str | None = None
    annotations: tuple[SourceAnnotation, ...] = ()
    extras: Mapping[str, JsonValue] = field(default_factory=dict)
    layout: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def annotation(self, dimension: str) -> SourceAnnotation | None:
        """The source annotation of one dimension, if any."""
        return _find(self.annotations, dimension)


@dataclass(frozen=True, slots=True)
class Dialogue:
    """One imported session: metadata, ordered turns and session-level source annotations.

    ``layout`` is only meaningful to the writer of ``source_format``.
    """

    external_id: str
    language: str
    metadata: Mapping[str, JsonValue]
    turns: tuple[Turn, ...]
    annotations: tuple[SourceAnnotation, ...] = ()
    source_format: str = ""
    layout: tuple[str, ...] = ()

    def annotation(self, dimension: str) -> SourceAnnotation | None:
        """The session-level source annotation of one dimension, if any."""
        return _find(self.annotations, dimension)

    def layout_for(self, fmt: str) -> tuple[str, ...]:
        """The recorded key order if the dialogue was read from ``fmt``, else ``()``."""
        return self.layout if self.source_format == fmt else ()


def _find(annotations: tuple[SourceAnnotation, ...], dimension: str) -> SourceAnnotation | None:
    for annotation in annotations:
        if annotation.dimension == dimension:
            return annotation
    return None


def emotion_flags(speaker: Speaker, annotations: tuple[SourceAnnotation, ...]) -> tuple[str, ...]:
    """Flag a client turn carrying (nearly) every emotion label, an artefact of the source."""
    emotion = _find(annotations, EMOTION)
    if speaker == "client" and emotion and len(set(emotion.labels)) >= ALL_EMOTIONS_MIN_LABELS:
        return (FLAG_ALL_EMOTIONS,)
    return ()


def guess_language(texts: list[str]) -> str:
    """``"zh"`` when the texts contain Chinese characters, else ``"en"``."""
    return "zh" if any(_CJK.search(text) for text in texts) else "en"


def nested_layout(layout: tuple[str, ...], parent: str) -> tuple[str, ...]:
    """The keys recorded as ``parent.child`` in a layout, without the prefix."""
    prefix = parent + "."
    return tuple(key[len(prefix) :] for key in layout if key.startswith(prefix))


def merge_order(
    recorded: tuple[str, ...], canonical: tuple[str, ...], present: list[str]
) -> list[str]:
    """Order ``present`` keys: recorded order first, new keys at their canonical place.

    Keys neither recorded nor canonical go last, in the order given.
    """
    result = [key for key in recorded if key in present and "." not in key]
    others = []
    for key in present:
        if key in result:
            continue
        if key in canonical:
            rank = canonical.index(key)
            later = [
                i for i, k in enumerate(result) if k in canonical and canonical.index(k) > rank
            ]
            result.insert(later[0] if later else len(result), key)
        else:
            others.append(key)
    return result + others
