"""What an import derives from a parsed dialogue: its fingerprint and its session labels."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from app.formats.model import Dialogue, SourceAnnotation


def fingerprint(dialogue: Dialogue) -> bytes:
    """What must match when the same dialogue is imported again under another source."""
    digest = hashlib.sha256()
    for turn in dialogue.turns:
        digest.update(f"{turn.speaker}\x1f{turn.content}\x1e".encode())
    return digest.digest()


def session_labels(
    annotations: Sequence[SourceAnnotation], canonical: Mapping[str, Mapping[str, str]]
) -> dict[str, list[str]]:
    """Session-level labels by dimension, alias spellings resolved: what list filters match."""
    out: dict[str, list[str]] = {}
    for ann in annotations:
        if ann.text is None and ann.labels:
            aliases = canonical.get(ann.dimension, {})
            out[ann.dimension] = sorted({aliases.get(v, v) for v in ann.labels if v})
    return out


def merge_labels(old: Mapping[str, Any], new: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Session labels of a dialogue after another source's labels are added."""
    merged = {k: list(v) for k, v in old.items()}
    for key, values in new.items():
        merged[key] = sorted(set(merged.get(key, [])) | set(values))
    return merged
