"""Generic CSV: one turn per row, the rows of a dialogue together and in order.

Specification
-------------
UTF-8 (a leading byte-order mark is allowed), comma-separated, fields quoted with ``"`` when
needed (RFC 4180; a quoted field may contain commas and line breaks).  The first row is the
header.  Column names, in any order:

- ``dialog_id`` (required): the dialogue's external id.  All rows of a dialogue must be
  consecutive.
- ``position`` (required): the turn's 0-based position; rows of a dialogue must come in
  order ``0, 1, 2, ...``.
- ``speaker`` (required): exactly ``client`` or ``counselor``.
- ``participant`` (required): display name of the speaker (may be empty).
- ``content`` (required): the utterance, verbatim.
- ``turn_id`` (optional): the turn's id in the source (empty = none).
- ``language`` (optional): read from the dialogue's first row; guessed if absent or empty.
- ``label:<dimension>`` (optional, any number): turn labels, several separated by ``|``
  (spaces around ``|`` are ignored), e.g. ``label:emotion`` = ``Anxiety|Fear``.
- ``text:<dimension>`` (optional): turn free text, e.g. ``text:reasoning``.
- ``extra:<key>`` (optional): a verbatim extra field of the turn, as JSON text
  (e.g. ``extra:reference_labels`` = ``["[sighs]"]``).
- ``session_label:<dimension>``, ``session_text:<dimension>``, ``meta:<key>`` (optional):
  session labels, session free text and metadata (as text).  They are read from the
  dialogue's first row; on its other rows they must be empty or repeat the same value.

An empty cell means "no value": CSV cannot tell an empty text from a missing one, and metadata
values come back as text.  Any other column name is an error.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from app.formats import model as m
from app.formats.errors import ErrorCode, FormatError, RecordError, shown
from app.formats.model import Dialogue, JsonValue, SourceAnnotation, Turn
from app.formats.source import iter_lines
from app.formats.validate import Checker

if TYPE_CHECKING:
    from app.formats.reader import ReadContext

FORMAT = "csv"
REQUIRED = ("dialog_id", "position", "speaker", "participant", "content")
OPTIONAL = ("turn_id", "language")
PREFIXES = ("label:", "text:", "extra:", "session_label:", "session_text:", "meta:")
SESSION_PREFIXES = ("session_label:", "session_text:", "meta:")
DEFAULT_COLUMNS = (
    *REQUIRED,
    "turn_id",
    "language",
    "label:emotion",
    "label:strategy",
    "text:observation",
    "text:reasoning",
    "session_label:psychotherapy",
    "session_label:topic",
    "session_text:guide",
    "session_text:summary",
)
SEP = "|"
_SPEAKERS: dict[str, m.Speaker] = {"client": "client", "counselor": "counselor"}


def looks_like(head: str) -> bool:
    """True if the first line is a CSV header with the required columns."""
    first = head.split("\n", 1)[0].lstrip("\ufeff")
    header = next(csv.reader([first]), [])
    return all(column in header for column in REQUIRED)


def _check_header(header: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL and not c.startswith(PREFIXES)]
    dup = sorted({c for c in header if header.count(c) > 1})
    problems = [
        f"missing column(s) {', '.join(missing)}" if missing else "",
        f"unknown column(s) {', '.join(unknown)}" if unknown else "",
        f"repeated column(s) {', '.join(dup)}" if dup else "",
    ]
    if any(problems):
        raise FormatError(
            ErrorCode.INVALID_CSV,
            "expected a header with the columns "
            f"{', '.join(REQUIRED)} (and optional {', '.join(OPTIONAL)} or "
            f"{'/'.join(PREFIXES)} columns), found " + "; ".join(p for p in problems if p),
            line=1,
        )


def read(chunks: Iterable[str], ctx: ReadContext) -> Iterator[Dialogue | list[RecordError]]:
    """Yield each dialogue (group of consecutive rows with one dialog_id) or its errors."""
    rows = csv.reader(iter_lines(iter(chunks)))
    try:
        header = next(rows, [])
        if header:
            header[0] = header[0].lstrip("\ufeff")
        _check_header(header)
        group: list[tuple[int, list[str]]] = []
        seen: set[str] = set()
        index = 0
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            line = rows.line_num
            if group and _id(header, row) != _id(header, group[0][1]):
                yield _convert(header, group, index, ctx, seen)
                index, group = index + 1, []
            group.append((line, row))
        if group:
            yield _convert(header, group, index, ctx, seen)
    except csv.Error as exc:
        raise FormatError(
            ErrorCode.INVALID_CSV, f"expected valid CSV, found an error: {exc}", line=rows.line_num
        ) from None


def _id(header: list[str], row: list[str]) -> str | None:
    return row[header.index("dialog_id")] if len(row) == len(header) else None


def _convert(
    header: list[str],
    group: list[tuple[int, list[str]]],
    index: int,
    ctx: ReadContext,
    seen: set[str],
) -> Dialogue | list[RecordError]:
    chk = ctx.checker(index, group[0][0])
    dialog_id = _id(header, group[0][1])
    chk.dialog_id = dialog_id
    if dialog_id in seen:
        chk.error(
            ErrorCode.BAD_POSITION,
            "dialog_id",
            f"expected the rows of dialogue "
            f"{dialog_id!r} to be consecutive, found them again after other dialogues",
        )
    if dialog_id is not None:
        seen.add(dialog_id)
    first: dict[str, str] = {}
    turns: list[Turn] = []
    for pos, (line, row) in enumerate(group):
        chk.line = line
        if len(row) != len(header):
            chk.error(
                ErrorCode.BAD_LINE,
                f"line {line}",
                f"expected {len(header)} cells, found {len(row)}",
                pos,
            )
            continue
        cells = dict(zip(header, row, strict=True))
        for column in header:
            if column.startswith(SESSION_PREFIXES) or column == "language":
                if pos == 0:
                    first[column] = cells[column]
                elif cells[column] not in ("", first[column]):
                    chk.error(
                        ErrorCode.WRONG_TYPE,
                        column,
                        "expected an empty cell or "
                        f"{shown(first[column])} as on the first row, found "
                        f"{shown(cells[column])}",
                        pos,
                    )
        turn = _turn(chk, cells, pos)
        if turn is not None:
            turns.append(turn)
    chk.line = group[0][0]
    annotations = _annotations(chk, first, "session_label:", "session_text:", None)
    if chk.errors or dialog_id is None:
        return ctx.result(chk, None)
    metadata: dict[str, JsonValue] = {
        c[len("meta:") :]: v for c, v in first.items() if c.startswith("meta:") and v
    }
    language = (
        ctx.options.language
        or first.get("language")
        or m.guess_language([t.content for t in turns[:20]])
    )
    return ctx.result(
        chk, Dialogue(dialog_id, language, metadata, tuple(turns), annotations, FORMAT)
    )


def _annotations(
    chk: Checker, cells: dict[str, str], label: str, text: str, pos: int | None
) -> tuple[SourceAnnotation, ...]:
    found: list[SourceAnnotation | None] = []
    for column, value in cells.items():
        if not value:
            continue
        if column.startswith(label):
            labels: list[JsonValue] = [part.strip() for part in value.split(SEP)]
            found.append(chk.labels(column[len(label) :], labels, column, pos))
        elif column.startswith(text):
            found.append(SourceAnnotation(column[len(text) :], text=value))
    return tuple(a for a in found if a is not None)


def _turn(chk: Checker, cells: dict[str, str], pos: int) -> Turn | None:
    if cells["position"].strip() != str(pos):
        chk.error(
            ErrorCode.BAD_POSITION,
            "position",
            f"expected position {pos}, found {shown(cells['position'])}",
            pos,
        )
    speaker = chk.speaker(cells["speaker"], _SPEAKERS, "speaker", pos)
    extras: dict[str, JsonValue] = {}
    for column, value in cells.items():
        if column.startswith("extra:") and value:
            try:
                extras[column[len("extra:") :]] = json.loads(value)
            except json.JSONDecodeError as exc:
                chk.error(
                    ErrorCode.WRONG_TYPE,
                    column,
                    f"expected JSON text, found an error: {exc.msg}",
                    pos,
                )
    annotations = _annotations(chk, cells, "label:", "text:", pos)
    if speaker is None:
        return None
    who = _SPEAKERS[speaker]
    return Turn(
        pos,
        who,
        cells["participant"],
        cells["content"],
        cells.get("turn_id") or None,
        annotations,
        extras,
        flags=m.emotion_flags(who, annotations),
    )


def _cell(annotation: SourceAnnotation | None) -> str:
    if annotation is None:
        return ""
    if annotation.text is not None:
        return annotation.text
    if any(SEP in label for label in annotation.labels):
        raise ValueError(f"a label containing {SEP!r} cannot be written to CSV")
    return SEP.join(annotation.labels)


def rows(dialogue: Dialogue, columns: Sequence[str]) -> Iterator[list[str]]:
    """The CSV rows of one dialogue for the given header."""
    for turn in dialogue.turns:
        session = turn.position == 0
        row = []
        for column in columns:
            kind, _, key = column.partition(":")
            value: str = {
                "dialog_id": dialogue.external_id,
                "position": str(turn.position),
                "speaker": turn.speaker,
                "participant": turn.participant,
                "content": turn.content,
                "turn_id": turn.source_id or "",
                "language": dialogue.language if session else "",
            }.get(column, "")
            if kind in ("label", "text"):
                value = _cell(turn.annotation(key))
            elif kind == "extra" and key in turn.extras:
                value = json.dumps(turn.extras[key], ensure_ascii=False)
            elif kind in ("session_label", "session_text") and session:
                value = _cell(dialogue.annotation(key))
            elif kind == "meta" and session and key in dialogue.metadata:
                item = dialogue.metadata[key]
                value = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
            row.append(value)
        yield row


def write(
    dialogues: Iterable[Dialogue], out: TextIO, columns: Sequence[str] = DEFAULT_COLUMNS
) -> int:
    """Write a header and one row per turn; open ``out`` with ``newline=""``."""
    _check_header(list(columns))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for dialogue in dialogues:
        writer.writerows(rows(dialogue, columns))
        count += 1
    return count
