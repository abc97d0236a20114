"""Full-text search that works for Chinese: CJK text indexed as overlapping character bigrams.

PostgreSQL's built-in parsers do not segment Chinese, and the embedded server has no ICU or
zhparser. Indexing every pair of adjacent CJK characters (as Lucene's CJK analyzer does) and
lower-cased words otherwise, in a `simple` tsvector, finds any Chinese substring of two or more
characters and any English word, with a plain GIN index.
"""

from __future__ import annotations

import itertools
import re

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_TOKENS = 20_000  # keeps one dialogue's vector far below PostgreSQL's 1 MB tsvector limit


def tokens(text: str) -> list[str]:
    """Search tokens of a text: CJK bigrams (a lone CJK character as itself) and words."""
    out: list[str] = []
    pos = 0
    for run in _CJK_RUN.finditer(text):
        out.extend(w.lower() for w in _WORD.findall(text[pos : run.start()]))
        chars = run.group()
        out.extend(chars[i : i + 2] for i in range(max(len(chars) - 1, 1)))
        pos = run.end()
    out.extend(w.lower() for w in _WORD.findall(text[pos:]))
    return out


def document(texts: list[str]) -> str:
    """The text given to `to_tsvector('simple', ...)`: distinct tokens, space separated."""
    joined = "\n".join(texts).lower()
    found = tokens(joined) if _CJK_RUN.search(joined) else _WORD.findall(joined)
    return " ".join(itertools.islice(dict.fromkeys(found), MAX_TOKENS))


def query(text: str) -> str | None:
    """A `to_tsquery('simple', ...)` expression requiring every token, or None if none."""
    found = dict.fromkeys(tokens(text))
    if not found:
        return None
    return " & ".join(_term(t) for t in found)


def _term(token: str) -> str:
    quoted = "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"
    # A lone CJK character is indexed only inside bigrams: match those that start with it.
    return quoted + ":*" if len(token) == 1 and _CJK_RUN.fullmatch(token) else quoted
