"""ESConv and the older Psy-Insight schema: read, check the model, write back exactly."""

from __future__ import annotations

import io
import json
from typing import Any

from app.formats import (
    Dialogue,
    DialogueReader,
    ReadOptions,
    RecordError,
    SourceAnnotation,
    default_vocabulary,
    esconv,
    psy_insight,
    psy_insight_old,
)

ESCONV: list[dict[str, Any]] = [
    {
        "experience_type": "Current Experience",
        "emotion_type": "anxiety",
        "problem_type": "job crisis",
        "situation": "I may lose my job.",
        "survey_score": {"seeker": {"initial_emotion_intensity": "5"}, "supporter": {}},
        "dialog": [
            {"speaker": "seeker", "annotation": {}, "content": "Hello\n"},
            {
                "speaker": "supporter",
                "annotation": {"strategy": "Question"},
                "content": "Hi, what is on your mind?",
            },
            {"speaker": "seeker", "annotation": {"feedback": "4"}, "content": "Work."},
            {
                "speaker": "supporter",
                "annotation": {"strategy": "Reflection of feelings"},
                "content": "That sounds stressful.",
            },
        ],
        "seeker_question1": "Helpful",
        "seeker_question2": "",
        "supporter_question1": "",
        "supporter_question2": "",
    },
    {
        "emotion_type": "sadness",
        "problem_type": "breakup with partner",
        "situation": "",
        "dialog": [
            {
                "content": "Bye.",
                "speaker": "supporter",
                "annotation": {"feedback": "1", "strategy": "Others"},
            }
        ],
    },
]
OLD: list[dict[str, Any]] = [
    {
        "theme": "",
        "chat_stage": "6th Session",
        "is_same_qa": 0,
        "is_same_case": 1,
        "background": "来访者是硕士生。",
        "guide": "提问与鼓励。",
        "pre_reasoning": "先提问。",
        "topic_dialog": {
            "key": "fewshot",
            "unit_id": 163,
            "method": "Cognitive Behavioral Therapy",
            "dialog": [
                {
                    "text": "我和室友合不来。",
                    "participant": "来访者",
                    "observation": "不满",
                    "id": "163-0",
                    "emotional label": ["Anger"],
                },
                {
                    "text": "你打算怎么办？",
                    "participant": "治疗师",
                    "reasoning": "",
                    "id": "164-0",
                    "strategy": ["Question"],
                },
                {
                    "text": "正是。",
                    "reasoning": "",
                    "participant": "治疗师",
                    "id": "164-1",
                    "strategy": ["Others"],
                },
            ],
        },
        "post_reasoning": "治疗师鼓励来访者。",
        "extra_tags": [],
    },
    {
        "theme": "sfbt: trust",
        "is_same_qa": 0,
        "is_same_case": 0,
        "background": "A student.",
        "pre_reasoning": "Trust grows.",
        "topic_dialog": {
            "key": "fewshot",
            "unit_id": 98,
            "method": "Solution-Focused Brief Therapy",
            "dialog": [
                {
                    "id": "98-0",
                    "participant": "Beth",
                    "text": "It's my uncle.",
                    "observation": "fear",
                    "emotional label": ["Fear", "Shame"],
                },
                {
                    "id": "98-1",
                    "participant": "Therapist",
                    "text": "Go on.",
                    "reasoning": "invite",
                    "strategy": ["Question"],
                },
            ],
        },
        "post_reasoning": "Summary.",
        "extra_tags": ["x"],
    },
]


def read(data: bytes, **options: Any) -> tuple[DialogueReader, list[Dialogue | list[RecordError]]]:
    reader = DialogueReader(io.BytesIO(data), ReadOptions(**options))
    return reader, list(reader)


def dialogues(data: bytes, fmt: str, **options: Any) -> list[Dialogue]:
    reader, items = read(data, vocabulary=default_vocabulary(), **options)
    assert reader.format == fmt
    assert all(isinstance(item, Dialogue) for item in items), items
    return [item for item in items if isinstance(item, Dialogue)]


def test_esconv_round_trip() -> None:
    data = json.dumps(ESCONV, indent=2).encode()
    found = dialogues(data, "esconv")
    assert [d.external_id for d in found] == ["000001", "000002"]
    first = found[0]
    assert first.metadata["problem_type"] == "job crisis"
    assert "dialog" not in first.metadata
    assert [t.speaker for t in first.turns] == ["client", "counselor", "client", "counselor"]
    assert first.turns[3].annotation("strategy") == SourceAnnotation(
        "strategy", ("Reflection of feelings",), scalar=True
    )
    assert first.turns[2].extras == {"annotation": {"feedback": "4"}}
    assert first.turns[0].content == "Hello\n"
    out = io.StringIO()
    esconv.write(found, out)
    assert out.getvalue() == json.dumps(ESCONV, indent=2)


def test_old_schema_round_trip() -> None:
    data = json.dumps(OLD, indent=4, ensure_ascii=False).encode()
    found = dialogues(data, "psy_insight_old")
    cn, en = found
    assert (cn.external_id, cn.language, en.language) == ("000001", "zh", "en")
    assert cn.metadata == {
        "theme": "",
        "stage": "6th Session",
        "is_same_qa": 0,
        "is_same_session": 1,
        "background": "来访者是硕士生。",
        "reasoning": "先提问。",
        "topic_dialog.key": "fewshot",
        "topic_dialog.unit_id": 163,
        "extra_tags": [],
    }
    assert cn.annotation("psychotherapy") == SourceAnnotation(
        "psychotherapy", ("Cognitive Behavioral Therapy",), scalar=True
    )
    assert cn.annotation("summary") == SourceAnnotation("summary", text="治疗师鼓励来访者。")
    assert [t.speaker for t in cn.turns] == ["client", "counselor", "counselor"]
    assert [t.speaker for t in en.turns] == ["client", "counselor"]
    out = io.StringIO()
    psy_insight_old.write(found, out)
    assert out.getvalue() == json.dumps(OLD, indent=4, ensure_ascii=False)


def test_old_schema_exports_to_v7_with_the_mapping() -> None:
    cn = dialogues(json.dumps(OLD).encode(), "psy_insight_old")[0]
    record = psy_insight.to_record(cn)
    assert record["stage"] == "6th Session"
    assert record["is_same_session"] == 1
    assert record["psychotherapy"] == "Cognitive Behavioral Therapy"
    assert record["summary"] == "治疗师鼓励来访者。"
    assert record["reasoning"] == "先提问。"
    assert record["dialog"][1]["speaker"] == "Supporter"  # type: ignore[index,call-overload]
