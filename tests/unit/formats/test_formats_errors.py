"""Bad inputs: each gives a specific error code, a clear message and a location."""

from __future__ import annotations

import codecs
import io
import json
from typing import Any

import pytest

from app.formats import (
    Dialogue,
    DialogueReader,
    ErrorCode,
    FormatError,
    ReadOptions,
    RecordError,
    default_vocabulary,
    psy_insight,
)


def session(dialog_id: str = "000001", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "dialog_id": dialog_id,
        "theme": "",
        "psychotherapy": "Family Therapy",
        "topic": "Job Crisis",
        "stage": "",
        "guide": "",
        "is_same_qa": 0,
        "is_same_session": 0,
        "background": "b",
        "reasoning": "r",
        "dialog": [
            {
                "speaker": "Seeker",
                "participant": "Client",
                "content": "I feel low.",
                "id": "0-0",
                "emotional label": ["Sadness"],
            },
            {
                "speaker": "Supporter",
                "participant": "Therapist",
                "content": "Tell me more.",
                "id": "0-1",
                "strategy": ["Question"],
            },
        ],
        "summary": "s",
    }
    record.update(changes)
    return record


def dump(records: list[Any]) -> bytes:
    return json.dumps(records, indent=4, ensure_ascii=False).encode("utf-8")


def read(data: bytes, **options: Any) -> tuple[DialogueReader, list[Dialogue | list[RecordError]]]:
    reader = DialogueReader(io.BytesIO(data), ReadOptions(**options))
    return reader, list(reader)


def fatal(data: bytes, **options: Any) -> FormatError:
    with pytest.raises(FormatError) as caught:
        read(data, **options)
    return caught.value


def errors(data: bytes, **options: Any) -> list[RecordError]:
    _, items = read(data, **options)
    return [error for item in items if isinstance(item, list) for error in item]


def test_truncated_json_names_the_record_and_line() -> None:
    data = dump([session("000001"), session("000002")])
    error = fatal(data[:-60])
    assert error.code == ErrorCode.TRUNCATED_JSON
    assert error.record == 1
    assert error.line == data[:-60].count(b"\n") + 1
    assert "truncated" in error.message


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-16", "UTF-16 (little-endian)"),
        ("utf-16-be", "UTF-16 (big-endian, no byte-order"),
        ("utf-32", "UTF-32"),
    ],
)
def test_utf16_and_utf32_are_rejected(encoding: str, expected: str) -> None:
    data = json.dumps([session()]).encode(encoding)
    error = fatal(data)
    assert error.code == ErrorCode.WRONG_ENCODING
    assert expected in error.message
    assert "save the file as UTF-8" in error.message


def test_latin1_bytes_give_offset_line_and_a_guess() -> None:
    text = json.dumps([session()], indent=4).replace('"background": "b"', '"background": "café"')
    data = text.encode("latin-1")
    error = fatal(data)
    assert error.code == ErrorCode.WRONG_ENCODING
    assert error.offset == data.index(b"\xe9")
    assert error.line == data[: data.index(b"\xe9")].count(b"\n") + 1
    assert "byte 0xE9 is not valid UTF-8" in error.message
    assert "Latin-1" in error.message


def test_latin1_far_into_the_file_is_found_while_streaming() -> None:
    data = dump([session(f"{i:06d}") for i in range(50)])[:-2] + "é]".encode("latin-1")
    reader = DialogueReader(io.BytesIO(data), ReadOptions(chunk_size=512))
    with pytest.raises(FormatError) as caught:
        list(reader)
    assert caught.value.code == ErrorCode.WRONG_ENCODING
    assert caught.value.offset == len(data) - 2
    assert reader.dialogues == 49  # the records before the bad byte were read


def test_gbk_bytes_are_named() -> None:
    data = json.dumps([session(background="来访者焦虑")], ensure_ascii=False).encode("gbk")
    error = fatal(data)
    assert error.code == ErrorCode.WRONG_ENCODING
    assert "GBK" in error.message


@pytest.mark.parametrize("fmt", [None, "psy_insight_v7"])
def test_nesting_bomb_stops_at_the_depth_limit(fmt: str | None) -> None:
    error = fatal(b"[" * 200_000, format=fmt)
    assert error.code == ErrorCode.NESTING_TOO_DEEP
    assert "at most 64 levels" in error.message
    assert error.record == 0


def test_nesting_bomb_in_json_lines() -> None:
    error = fatal(b'{"a": ' * 100 + b"1" + b"}" * 100 + b"\n")
    assert error.code == ErrorCode.NESTING_TOO_DEEP
    assert error.line == 1


@pytest.mark.parametrize("data", [b"", b"  \r\n\t \n"])
def test_empty_file(data: bytes) -> None:
    error = fatal(data)
    assert error.code == ErrorCode.EMPTY_FILE
    assert ("0 bytes" if not data else "only whitespace") in error.message


def test_empty_array_has_no_dialogues() -> None:
    assert fatal(b"[\n]").code == ErrorCode.NO_RECORDS


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
        (b"PK\x03\x04rest", "a ZIP"),
        (bytes(range(256)) * 4, "binary data"),
    ],
)
def test_binary_files_are_rejected(data: bytes, kind: str) -> None:
    error = fatal(data)
    assert error.code == ErrorCode.BINARY_FILE
    assert error.message.startswith("expected a text file, found")
    assert kind in error.message


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (json.dumps(session(), indent=2).encode(), "a JSON object spread over several lines"),
        (b'"just a string"', "a single JSON string"),
        (b"42", "a single JSON value"),
        (b"[1, 2, 3]", "an array of scalars"),
        (b"[[1], [2]]", "an array of arrays"),
    ],
)
def test_wrong_top_level_type(data: bytes, found: str) -> None:
    error = fatal(data)
    assert error.code == ErrorCode.WRONG_TOP_LEVEL
    assert found in error.message


def test_forced_json_array_format_on_an_object() -> None:
    error = fatal(b'{"dialog_id": "1"}', format="psy_insight_v7")
    assert error.code == ErrorCode.WRONG_TOP_LEVEL
    assert error.message.endswith("found an object")


def test_missing_required_keys_are_located() -> None:
    broken = session("000002")
    del broken["dialog"]
    turnless = session("000003")
    del turnless["dialog"][1]["content"]
    data = dump([session(), broken, turnless])
    found = errors(data)
    start = data.decode().split("\n").index('        "dialog_id": "000003",')  # line after "{"
    assert [(e.code, e.record, e.dialog_id, e.path, e.position) for e in found] == [
        (ErrorCode.MISSING_KEY, 1, "000002", "dialog", None),
        (ErrorCode.MISSING_KEY, 2, "000003", "dialog[1].content", 1),
    ]
    assert found[1].message.startswith("expected key 'content', found it missing")
    assert found[1].line == start  # the 1-based line of record[2]'s "{"
    assert str(found[1]).startswith(f"record[2], dialog_id '000003', turn 1, line {start}: ")


def test_wrong_types_are_located() -> None:
    bad_turn = session("000002")
    bad_turn["dialog"][1]["strategy"] = 7
    found = errors(dump([session(dialog="hello"), bad_turn, session("000003", is_same_qa=True)]))
    assert [(e.code, e.path, e.position) for e in found] == [
        (ErrorCode.WRONG_TYPE, "dialog", None),
        (ErrorCode.WRONG_TYPE, "dialog[1].strategy", 1),
        (ErrorCode.WRONG_TYPE, "is_same_qa", None),
    ]
    assert found[0].message == "expected an array, found a string"
    assert found[1].message == "expected an array of label strings, found a number 7"


def test_unknown_speaker() -> None:
    record = session()
    record["dialog"][0]["speaker"] = "Patient"
    (error,) = errors(dump([record]))
    assert (error.code, error.path, error.position) == (
        ErrorCode.UNKNOWN_SPEAKER,
        "dialog[0].speaker",
        0,
    )
    assert error.message == "expected 'Seeker' or 'Supporter', found 'Patient'"


def test_unknown_label_is_an_error_against_the_vocabulary() -> None:
    record = session(topic="Existential Dread")
    record["dialog"][1]["strategy"] = ["Question", "Hugging"]
    found = errors(dump([record]), vocabulary=default_vocabulary())
    assert [(e.code, e.path, e.position) for e in found] == [
        (ErrorCode.UNKNOWN_LABEL, "topic", None),
        (ErrorCode.UNKNOWN_LABEL, "dialog[1].strategy[1]", 1),
    ]
    assert found[1].message.startswith("expected a strategy label (one of Affirmation and")
    assert found[1].message.endswith("found 'Hugging'")


def test_unknown_labels_can_be_collected_as_new_labels() -> None:
    record = session(topic="Existential Dread")
    record["dialog"][1]["strategy"] = ["Hugging"]
    reader, items = read(
        dump([record, record]), vocabulary=default_vocabulary(), collect_new_labels=True
    )
    assert all(isinstance(item, Dialogue) for item in items)
    assert reader.new_labels == {"topic": {"Existential Dread": 2}, "strategy": {"Hugging": 2}}


def test_hostile_text_passes_through_verbatim() -> None:
    hostile = [
        "<script>alert('x')</script>",
        "'; DROP TABLE turns; --",
        "{{ 7*7 }}",
        "\u202egnp.exe",
        "a\u0000b",
        "\U0001f600 \u2028 line",
    ]
    record = session(background=hostile[0])
    record["dialog"][0]["content"] = "\n".join(hostile)
    record["dialog"][1]["participant"] = hostile[1]
    data = dump([record])
    _, (dialogue,) = read(data)
    assert isinstance(dialogue, Dialogue)
    assert dialogue.metadata["background"] == hostile[0]
    assert dialogue.turns[0].content == "\n".join(hostile)
    assert dialogue.turns[1].participant == hostile[1]
    out = io.StringIO()
    psy_insight.write([dialogue], out)
    assert out.getvalue().encode() == data


def test_a_record_that_is_not_json_does_not_hide_the_others() -> None:
    data = b'[{"dialog_id": tru},\n' + dump([session("000002")])[1:]
    _, items = read(data, format="psy_insight_v7")
    assert isinstance(items[1], Dialogue)
    (error,) = items[0]
    assert (error.code, error.record, error.line) == (ErrorCode.RECORD_NOT_JSON, 0, 1)
    assert "Expecting value" in error.message


def test_duplicate_keys_are_reported() -> None:
    data = b'[{"dialog_id": "1", "dialog_id": "2", "dialog": []}]'
    (error,) = errors(data, format="psy_insight_v7")
    assert error.code == ErrorCode.DUPLICATE_KEY
    assert "'dialog_id' twice" in error.message


def test_trailing_data_after_the_array() -> None:
    error = fatal(dump([session()]) + b"\n[]")
    assert error.code == ErrorCode.TRAILING_DATA


def test_errors_stop_at_the_limit() -> None:
    records = [session(f"{i:06d}", dialog="x") for i in range(10)]
    reader, items = read(dump(records), max_errors=4)
    flat = [error for item in items if isinstance(item, list) for error in item]
    assert [e.code for e in flat] == [ErrorCode.WRONG_TYPE] * 4 + [ErrorCode.TOO_MANY_ERRORS]
    assert flat[-1].message == "stopped after 4 errors"
    assert reader.error_count == 4
    assert reader.records == 5


def test_utf8_bom_is_accepted() -> None:
    reader, items = read(codecs.BOM_UTF8 + dump([session()]))
    assert reader.bom
    assert isinstance(items[0], Dialogue)


def test_unknown_json_shape_asks_for_a_format() -> None:
    error = fatal(b'[{"foo": 1}]')
    assert error.code == ErrorCode.UNKNOWN_FORMAT
    assert "choose the format" in error.message


def test_unknown_text_format() -> None:
    error = fatal("Hello, 世界".encode())
    assert error.code == ErrorCode.UNKNOWN_FORMAT
