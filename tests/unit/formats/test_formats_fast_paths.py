"""The fast paths (whole-record JSON parsing, the lean v7 reader) give exactly what the exact
paths give: the same dialogues, the same errors with the same places."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.formats import DialogueReader, FormatError, ReadOptions, default_vocabulary, psy_insight
from app.formats.jsonstream import iter_json_array
from app.formats.psy_insight_fast import _Unclean, read_clean
from app.formats.validate import Checker, CheckOptions
from tests.unit.formats.test_formats_errors import session

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "psy-insight"


def exact(value: Any, options: CheckOptions, record: int = 0) -> Any:
    """What the full reader makes of one record: its dialogue, or its errors."""
    chk = Checker(record, None, options)
    dialogue = psy_insight.read_record(value, chk, None)
    return chk.errors or dialogue, chk.new_labels


def lean(value: Any, options: CheckOptions, record: int = 0) -> Any:
    """What the reader the import uses makes of it (lean path first)."""
    from app.formats.psy_insight_fast import read_record

    chk = Checker(record, None, options)
    dialogue = read_record(value, chk, None)
    return chk.errors or dialogue, chk.new_labels


@pytest.mark.skipif(not (DATA / "en_data_version7.json").is_file(), reason="../shared is absent")
@pytest.mark.parametrize("name", ["en_data_version7.json", "cn_data_version7.json"])
def test_released_files_read_the_same_on_the_lean_path(name: str) -> None:
    records = json.loads((DATA / name).read_text(encoding="utf-8"))
    options = CheckOptions(default_vocabulary())
    took_lean = 0
    for i, record in enumerate(records):
        assert lean(record, options, i) == exact(record, options, i)
        try:
            read_clean(record, options.vocabulary)
            took_lean += 1
        except _Unclean:
            pass
    # the 40 English sessions spelled "Cognitive Behaviour Therapy" (an alias) go the full way
    assert took_lean == len(records) - (40 if name.startswith("en") else 0)


LABELISH = st.sampled_from(
    ["", "x", "Anxiety", "Question", "Seeker", "Hugging", "Reflection of feelings", "Job Crisis",
     "Cognitive Behaviour Therapy"]
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | LABELISH,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=4,
)
VALUES = st.one_of(
    st.just("<delete>"), LABELISH, st.booleans(), st.lists(LABELISH, max_size=3), JSON_VALUES
)
SESSION_KEYS = [*session(), "extra"]
TURN_KEYS = ["speaker", "participant", "content", "id", "emotional label", "strategy",
             "observation", "reasoning", "labels"]  # fmt: skip
EDITS = st.one_of(
    st.tuples(st.just("session"), st.sampled_from(SESSION_KEYS), VALUES),
    st.tuples(st.sampled_from(["turn0", "turn1"]), st.sampled_from(TURN_KEYS), VALUES),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(EDITS, max_size=3), vocabulary=st.booleans(), collect=st.booleans())
def test_any_session_reads_the_same_on_both_paths(
    edits: list[tuple[str, str, Any]], vocabulary: bool, collect: bool
) -> None:
    record = session()
    for where, key, value in edits:
        target = record
        if where != "session":
            turns = record.get("dialog")
            at = int(where[-1])
            if not isinstance(turns, list) or len(turns) <= at or not isinstance(turns[at], dict):
                continue  # an earlier edit replaced the turns
            target = turns[at]
        if value == "<delete>":
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(value)
    options = CheckOptions(default_vocabulary() if vocabulary else None, collect)
    assert lean(record, options) == exact(record, options)


def test_a_record_the_lean_path_refuses_gets_every_located_error() -> None:
    record = session()
    record["dialog"][0]["speaker"] = "Patient"
    record["dialog"][1]["strategy"] = ["Hugging"]
    errors, _ = lean(record, CheckOptions(default_vocabulary()), record=3)
    assert [(e.code, e.record, e.dialog_id, e.path, e.position) for e in errors] == [
        ("unknown_speaker", 3, "000001", "dialog[0].speaker", 0),
        ("unknown_label", 3, "000001", "dialog[1].strategy[0]", 1),
    ]


def _records(data: bytes, chunk: int) -> list[Any]:
    text = data.decode()
    chunks = [text[i : i + chunk] for i in range(0, len(text), chunk)]
    return [(r.index, r.line, r.value, r.error) for r in iter_json_array(chunks)]


def _outcome(data: bytes, chunk: int) -> Any:
    try:
        return _records(data, chunk)
    except FormatError as exc:
        return (exc.code, exc.message, exc.line, exc.record)


def _nested(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize(
    "body",
    [
        "{}, []",
        '{"a": 1, "a": 2}, {"b": [1, 2]}',  # repeated key
        '{"dialog_id": tru},\n{"b": 1}',  # not JSON
        '{"a": "x"} "y", {}',  # garbage between records
        f"{_nested(63)}, {{}}",  # the deepest a record may be
        f"{{}},\n{_nested(64)}",  # one level too deep
        f"{_nested(500)}",  # deeper than the decoder's own recursion limit allows
        "[" * 5000,
        '{"a": "unterminated}',
        '{"a": 1}\n\n  ,\n {"b": "\\u00e9\\n"} ,\n\n{"c": [[]]}',
    ],
)
@pytest.mark.parametrize("chunk", [3, 64, 1 << 20])
def test_whole_record_parsing_matches_the_exact_splitter(body: str, chunk: int) -> None:
    data = f"[\n{body}\n]".encode()
    assert _outcome(data, chunk) == _outcome(data, 1)  # one-char chunks: never whole


def test_lines_are_the_records_own_with_big_chunks() -> None:
    records = [session(f"{i:06d}") for i in range(5)]
    data = json.dumps(records, indent=4).encode()
    reader = DialogueReader(io.BytesIO(data), ReadOptions(chunk_size=1 << 20))
    raw = _records(data, 1 << 20)
    starts = [n + 1 for n, line in enumerate(data.decode().split("\n")) if line == "    {"]
    assert [line for _, line, _, _ in raw] == starts
    assert sum(1 for _ in reader) == 5
