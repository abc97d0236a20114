"""CPsyCounD text, generic JSON Lines and CSV: read, check the model, write back."""

from __future__ import annotations

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
    SourceAnnotation,
    cpsycound,
    default_vocabulary,
    generic_csv,
    generic_jsonl,
    psy_insight,
)
from app.formats.model import FLAG_ALL_EMOTIONS
from app.formats.vocab import EMOTIONS

CPSY = "来访者：我最近总是睡不好。\n心理咨询师：能具体说说吗？\n\n来访者:大概从上个月开始，\n每天凌晨三点醒。\n心理咨询师： 听起来很辛苦。\n"  # noqa: E501
JSONL = [
    {
        "dialog_id": "d1",
        "language": "en",
        "metadata": {"background": "b", "is_same_qa": ""},
        "labels": {"topic": ["Job Crisis"], "summary": "s"},
        "turns": [
            {
                "speaker": "client",
                "participant": "Client",
                "content": "I lost my job.",
                "id": "t0",
                "labels": {"emotion": ["Sadness"], "observation": "sad"},
                "extras": {"reference_labels": ["[sighs]"]},
            },
            {
                "speaker": "counselor",
                "participant": "",
                "content": "I'm sorry.",
                "labels": {"strategy": ["Affirmation and Reassurance", "Information"]},
            },
        ],
    },
    {
        "dialog_id": "d2",
        "language": "zh",
        "turns": [
            {
                "speaker": "client",
                "participant": "来访者",
                "content": "你好",
                "labels": {
                    "emotion": [
                        e.value for e in EMOTIONS if e.value not in ("Unknown", "Happiness")
                    ]
                },
            }
        ],
    },
]
CSV_TEXT = (
    "dialog_id,position,speaker,participant,content,turn_id,label:emotion,label:strategy,"
    "text:reasoning,session_label:topic,session_text:summary,meta:stage,extra:reference_labels\n"
    'a1,0,client,Client,"I feel, well, ""low""",0-0,Sadness|Anxiety,,,Job Crisis,sum,1st,'
    '"[""[sighs]""]"\n'
    'a1,1,counselor,Therapist,"Line one\nline two",0-1,,Question,why,,,,\n'
    "b2,0,client,来访者,你好,,Neutral,,,,,,\n"
)


def read(data: bytes, **options: Any) -> tuple[DialogueReader, list[Dialogue | list[RecordError]]]:
    reader = DialogueReader(io.BytesIO(data), ReadOptions(**options))
    return reader, list(reader)


def dialogues(data: bytes, fmt: str, **options: Any) -> list[Dialogue]:
    reader, items = read(data, vocabulary=default_vocabulary(), **options)
    assert reader.format == fmt
    assert all(isinstance(item, Dialogue) for item in items), items
    return [item for item in items if isinstance(item, Dialogue)]


def test_cpsycound_round_trip() -> None:
    (dialogue,) = dialogues(CPSY.encode(), "cpsycound", name="uploads/cpsy_0001.txt")
    assert dialogue.external_id == "cpsy_0001"
    assert dialogue.language == "zh"
    assert [(t.speaker, t.participant) for t in dialogue.turns] == [
        ("client", "来访者"),
        ("counselor", "心理咨询师"),
    ] * 2
    assert dialogue.turns[2].content == "大概从上个月开始，\n每天凌晨三点醒。"
    assert dialogue.turns[3].content == " 听起来很辛苦。"
    out = io.StringIO()
    cpsycound.write(dialogue, out)
    assert out.getvalue() == CPSY.replace("\n\n", "\n")  # blank lines are not kept


def test_cpsycound_line_without_a_speaker_is_an_error() -> None:
    _, (errors,) = read("标题\n来访者：你好\n".encode(), format="cpsycound", name="x.txt")
    assert isinstance(errors, list)
    assert [(e.code, e.path, e.line, e.dialog_id) for e in errors] == [
        (ErrorCode.BAD_LINE, "line 1", 1, "x")
    ]


def test_jsonl_round_trip() -> None:
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in JSONL)
    found = dialogues(("\n" + text + "\n").encode(), "jsonl")
    d1, d2 = found
    assert d1.metadata == {"background": "b", "is_same_qa": ""}
    assert d1.annotation("summary") == SourceAnnotation("summary", text="s")
    assert d1.turns[1].annotation("strategy") == SourceAnnotation(
        "strategy", ("Affirmation and Reassurance", "Information")
    )
    assert d1.turns[1].source_id is None
    assert d1.turns[0].extras == {"reference_labels": ["[sighs]"]}
    assert d2.turns[0].flags == (FLAG_ALL_EMOTIONS,)
    out = io.StringIO()
    generic_jsonl.write(found, out)
    assert out.getvalue() == text


def test_jsonl_errors_are_located() -> None:
    bad = {"dialog_id": "d9", "turns": [{"speaker": "patient", "content": "x", "mood": 1}]}
    data = (json.dumps(JSONL[0]) + "\n" + json.dumps(bad) + "\n{oops\n").encode()
    _, items = read(data, format="jsonl")
    assert isinstance(items[0], Dialogue)
    assert [(e.code, e.path, e.position, e.dialog_id, e.line) for e in items[1]] == [
        (ErrorCode.UNKNOWN_KEY, "turns[0].mood", 0, "d9", 2),
        (ErrorCode.UNKNOWN_SPEAKER, "turns[0].speaker", 0, "d9", 2),
    ]
    assert [(e.code, e.line) for e in items[2]] == [(ErrorCode.RECORD_NOT_JSON, 3)]


def test_v7_through_jsonl_is_lossless() -> None:
    record = {
        "dialog_id": "000001",
        "theme": "t",
        "psychotherapy": "Family Therapy",
        "topic": "",
        "stage": "",
        "guide": "",
        "is_same_qa": "",
        "is_same_session": -1,
        "background": "b",
        "reasoning": "r",
        "dialog": [
            {
                "speaker": "Seeker",
                "participant": "C",
                "content": "x",
                "id": "0-0",
                "reference_labels": "[sighs]",
                "emotional label": ["Fear"],
            }
        ],
        "summary": "",
    }
    v7 = dialogues(json.dumps([record]).encode(), "psy_insight_v7")
    jsonl = io.StringIO()
    generic_jsonl.write(v7, jsonl)
    back = dialogues(jsonl.getvalue().encode(), "jsonl")
    assert psy_insight.to_record(back[0]) == record


def test_csv_round_trip() -> None:
    found = dialogues(CSV_TEXT.encode(), "csv")
    a1, b2 = found
    assert (a1.external_id, a1.language, b2.language) == ("a1", "en", "zh")
    assert a1.turns[0].content == 'I feel, well, "low"'
    assert a1.turns[0].annotation("emotion") == SourceAnnotation("emotion", ("Sadness", "Anxiety"))
    assert a1.turns[0].extras == {"reference_labels": ["[sighs]"]}
    assert a1.turns[1].content == "Line one\nline two"
    assert a1.turns[1].annotation("reasoning") == SourceAnnotation("reasoning", text="why")
    assert a1.annotation("topic") == SourceAnnotation("topic", ("Job Crisis",))
    assert a1.metadata == {"stage": "1st"}
    assert b2.metadata == {}
    out = io.StringIO(newline="")
    generic_csv.write(found, out, CSV_TEXT.split("\n", 1)[0].split(","))
    assert out.getvalue() == CSV_TEXT


def test_csv_errors_are_located() -> None:
    text = (
        "dialog_id,position,speaker,participant,content,label:strategy\n"
        "a1,0,client,C,hi,\n"
        "a1,2,counselor,T,ho,Hugging\n"
        "b2,0,robot,R,x,\n"
        "a1,0,client,C,again,\n"
    )
    _, items = read(text.encode(), vocabulary=default_vocabulary())
    flat = [
        (e.code, e.record, e.dialog_id, e.position, e.path, e.line)
        for item in items
        if isinstance(item, list)
        for e in item
    ]
    assert flat == [
        (ErrorCode.BAD_POSITION, 0, "a1", 1, "position", 3),
        (ErrorCode.UNKNOWN_LABEL, 0, "a1", 1, "label:strategy[0]", 3),
        (ErrorCode.UNKNOWN_SPEAKER, 1, "b2", 0, "speaker", 4),
        (ErrorCode.BAD_POSITION, 2, "a1", None, "dialog_id", 5),
    ]


def test_csv_header_problems_are_fatal() -> None:
    data = b"dialog_id,position,speaker,participant,content,colour\nx,0,client,,hi,red\n"
    with pytest.raises(FormatError) as caught:
        read(data, format="csv")
    assert caught.value.code == ErrorCode.INVALID_CSV
    assert caught.value.line == 1
    assert "unknown column(s) colour" in caught.value.message
