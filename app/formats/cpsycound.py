"""CPsyCounD plain text (formats.md §4): one dialogue per file.

Each turn starts on a line ``来访者：…`` (client) or ``心理咨询师：…`` (counselor); the colon may
be full-width ``：`` or ASCII ``:`` and is remembered per turn.  Text after the colon is the
content, verbatim.  A non-blank line without a speaker prefix continues the previous turn
(joined with ``\\n``); blank lines are ignored.  The dialogue id is the file name without its
extension (``ReadOptions.name``), else ``000001``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import PurePath
from typing import TYPE_CHECKING, TextIO

from app.formats import model as m
from app.formats.errors import ErrorCode, FormatError, RecordError, shown
from app.formats.jsonstream import MAX_RECORD_CHARS
from app.formats.model import Dialogue, Turn
from app.formats.source import iter_lines

if TYPE_CHECKING:
    from app.formats.reader import ReadContext

FORMAT = "cpsycound"
PREFIXES: dict[str, m.Speaker] = {"来访者": "client", "心理咨询师": "counselor"}
_LINE = re.compile(r"(来访者|心理咨询师)([：:])(.*)", re.DOTALL)


def looks_like(head: str) -> bool:
    """True if the first non-blank line starts with a CPsyCounD speaker prefix."""
    for line in head.splitlines():
        if line.strip():
            return _LINE.match(line.lstrip("\ufeff")) is not None
    return False


def read(chunks: Iterable[str], ctx: ReadContext) -> Iterator[Dialogue | list[RecordError]]:
    """Yield the one dialogue of a CPsyCounD text file (or its errors)."""
    chk = ctx.checker(0, 1)
    chk.dialog_id = PurePath(ctx.options.name).stem or "000001"
    turns: list[tuple[str, str, list[str]]] = []  # (participant, colon, content lines)
    size = 0
    for number, raw in enumerate(iter_lines(iter(chunks)), start=1):
        line = raw.removesuffix("\n").removesuffix("\r")
        size += len(raw)
        if size > MAX_RECORD_CHARS:
            raise FormatError(
                ErrorCode.RECORD_TOO_LARGE,
                f"expected a file under {MAX_RECORD_CHARS} characters",
                line=number,
            )
        if not line.strip():
            continue
        match = _LINE.fullmatch(line)
        if match:
            turns.append((match.group(1), match.group(2), [match.group(3)]))
        elif turns:
            turns[-1][2].append(line)
        elif len(chk.errors) < ctx.options.max_errors:
            chk.line = number
            chk.error(
                ErrorCode.BAD_LINE,
                f"line {number}",
                f"expected a line starting with 来访者： or 心理咨询师：, found {shown(line)}",
            )
    if not turns and not chk.errors:
        chk.error(ErrorCode.EMPTY_VALUE, "", "expected at least one turn, found none")
    dialogue = None
    if not chk.errors:
        built = tuple(
            Turn(pos, PREFIXES[who], who, "\n".join(lines), layout=(colon,))
            for pos, (who, colon, lines) in enumerate(turns)
        )
        dialogue = Dialogue(
            external_id=chk.dialog_id,
            language=ctx.options.language or "zh",
            metadata={},
            turns=built,
            source_format=FORMAT,
        )
    yield ctx.result(chk, dialogue)


def write(dialogue: Dialogue, out: TextIO, *, newline: str = "\n") -> None:
    """Write one dialogue as CPsyCounD text, one line per turn (each ending in ``newline``)."""
    same = dialogue.source_format == FORMAT
    for turn in dialogue.turns:
        who = "来访者" if turn.speaker == "client" else "心理咨询师"
        colon = turn.layout[0] if same and turn.layout else "："
        out.write(f"{who}{colon}{turn.content.replace(chr(10), newline)}{newline}")
