"""Psy-Insight v7 on small hand-written samples: the model, the quirks, the writer."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from app.formats import (
    Dialogue,
    DialogueReader,
    ReadOptions,
    SourceAnnotation,
    Turn,
    default_vocabulary,
    psy_insight,
)
from app.formats.model import FLAG_ALL_EMOTIONS
from app.formats.vocab import EMOTIONS, PSY_INSIGHT_CODEBOOK

ALL = [label.value for label in EMOTIONS]
CN: dict[str, Any] = {
    "dialog_id": "000007",
    "theme": "",
    "psychotherapy": "",
    "topic": "Ongoing Depression",
    "stage": "6th to 31st Session",
    "guide": "治疗师倾听。",
    "is_same_qa": "",
    "is_same_session": -1,
    "background": "来访者失眠。",
    "reasoning": "先建立关系。",
    "dialog": [
        {
            "speaker": "Supporter",
            "participant": "治疗师",
            "content": "你好（停顿）。",
            "labels": [{"label": "（停顿）", "index": 2, "type": "dialogue_act"}],
            "id": "0-0",
            "reasoning": "开场",
            "strategy": ["Others"],
        },
        {
            "speaker": "Seeker",
            "participant": "来访者",
            "content": "我睡不着。",
            "reasoning": "r",
            "id": "0-1",
            "emotional label": ALL,
        },
        {
            "speaker": "Seeker",
            "participant": "来访者",
            "content": "一直这样。",
            "id": "0-1",
            "emotional label": ["Sadness", "Anxiety"],
            "observation": "o",
            "labels": [],
        },
    ],
    "summary": "总结",
}
EN: dict[str, Any] = {
    "dialog_id": "000500",
    "theme": "cbt: images",
    "psychotherapy": "Cognitive Behaviour Therapy",
    "topic": "",
    "stage": "",
    "guide": "",
    "is_same_qa": 1,
    "is_same_session": 0,
    "background": "b",
    "reasoning": "r",
    "dialog": [
        {
            "speaker": "Seeker",
            "participant": "Carl",
            "content": "I can't.",
            "id": "3-0",
            "observation": "o",
            "reference_labels": "[becoming tearful]",
            "emotional label": ALL[:9],
        },
        {
            "speaker": "Supporter",
            "participant": "Therapist",
            "content": "Go on.",
            "id": "3-1",
            "reference_labels": ["[quietly]"],
            "observation": "x",
            "reasoning": "y",
            "strategy": ["Question", "Reflection of Feelings"],
        },
    ],
    "summary": "s",
    "extra_key": {"kept": [1, 2.5, None, True]},
}


def read_all(records: list[Any], **options: Any) -> list[Dialogue]:
    data = json.dumps(records, indent=4, ensure_ascii=False).encode()
    items = list(DialogueReader(io.BytesIO(data), ReadOptions(**options)))
    assert all(isinstance(item, Dialogue) for item in items), items
    return [item for item in items if isinstance(item, Dialogue)]


def written(dialogues: list[Dialogue]) -> str:
    out = io.StringIO()
    psy_insight.write(dialogues, out)
    return out.getvalue()


def test_quirky_samples_round_trip_byte_for_byte() -> None:
    dialogues = read_all([CN, EN], vocabulary=default_vocabulary())
    assert written(dialogues) == json.dumps([CN, EN], indent=4, ensure_ascii=False)


def test_model_of_a_chinese_session() -> None:
    (d,) = read_all([CN])
    assert (d.external_id, d.language, d.source_format) == ("000007", "zh", "psy_insight_v7")
    assert list(d.metadata) == [
        "theme",
        "stage",
        "is_same_qa",
        "is_same_session",
        "background",
        "reasoning",
    ]
    assert d.metadata["is_same_qa"] == ""
    assert d.metadata["is_same_session"] == -1
    assert d.annotation("psychotherapy") == SourceAnnotation("psychotherapy", (), scalar=True)
    assert d.annotation("topic") == SourceAnnotation("topic", ("Ongoing Depression",), scalar=True)
    assert d.annotation("guide") == SourceAnnotation("guide", text="治疗师倾听。")
    assert d.annotation("summary") == SourceAnnotation("summary", text="总结")
    first, second, third = d.turns
    assert (first.position, first.speaker, first.participant, first.source_id) == (
        0,
        "counselor",
        "治疗师",
        "0-0",
    )
    assert first.layout == (
        "speaker",
        "participant",
        "content",
        "labels",
        "id",
        "reasoning",
        "strategy",
    )
    assert first.extras == {"labels": [{"label": "（停顿）", "index": 2, "type": "dialogue_act"}]}
    assert first.annotation("strategy") == SourceAnnotation("strategy", ("Others",))
    assert first.annotation("reasoning") == SourceAnnotation("reasoning", text="开场")
    assert second.speaker == "client"
    assert second.annotation("reasoning") is not None
    assert second.flags == (FLAG_ALL_EMOTIONS,)
    assert third.flags == ()
    assert third.source_id == second.source_id == "0-1"  # ids repeat; positions do not
    assert third.extras == {"labels": []}


def test_model_of_an_english_session() -> None:
    (d,) = read_all([EN])
    assert d.language == "en"
    assert d.metadata["extra_key"] == {"kept": [1, 2.5, None, True]}
    assert d.annotation("topic") == SourceAnnotation("topic", (), scalar=True)
    client, counselor = d.turns
    assert client.extras == {"reference_labels": "[becoming tearful]"}
    assert client.flags == (FLAG_ALL_EMOTIONS,)  # 9 distinct labels
    assert counselor.extras == {"reference_labels": ["[quietly]"]}
    assert counselor.annotation("observation") == SourceAnnotation("observation", text="x")
    assert counselor.flags == ()


def test_spelling_variant_of_cbt_is_accepted_and_kept() -> None:
    reader = DialogueReader(
        io.BytesIO(json.dumps([EN]).encode()), ReadOptions(vocabulary=default_vocabulary())
    )
    (d,) = list(reader)
    assert isinstance(d, Dialogue)
    assert d.annotation("psychotherapy") == SourceAnnotation(
        "psychotherapy", ("Cognitive Behaviour Therapy",), scalar=True
    )
    assert reader.new_labels == {}


def test_small_chunks_give_the_same_dialogues() -> None:
    data = json.dumps([CN, EN] * 3, indent=4, ensure_ascii=False).encode()
    whole = list(DialogueReader(io.BytesIO(data)))
    tiny = list(DialogueReader(io.BytesIO(data), ReadOptions(chunk_size=7)))
    assert tiny == whole
    assert len(whole) == 6


def test_streaming_writer_matches_the_batch_writer() -> None:
    dialogues = read_all([CN, EN])
    out = io.StringIO()
    with psy_insight.writer(out, newline="\r\n", final_newline=True) as writer:
        for dialogue in dialogues:
            writer.write(dialogue)
    expected = json.dumps([CN, EN], indent=4, ensure_ascii=False).replace("\n", "\r\n")
    assert out.getvalue() == expected + "\r\n"
    empty = io.StringIO()
    psy_insight.write([], empty)
    assert empty.getvalue() == "[]"


def test_new_dialogue_without_layout_uses_the_canonical_order() -> None:
    turns = (
        Turn(0, "client", "Client", "Hi", annotations=(SourceAnnotation("emotion", ("Fear",)),)),
        Turn(
            1,
            "counselor",
            "Therapist",
            "Hello",
            source_id="9-1",
            annotations=(SourceAnnotation("reasoning", text="greet"),),
        ),
    )
    dialogue = Dialogue(
        "x1",
        "en",
        {"background": "b", "situation": "s"},
        turns,
        (SourceAnnotation("psychotherapy", ("Family Therapy",)),),
    )
    record = json.loads(written([dialogue]))[0]
    assert list(record) == [*psy_insight.SESSION_KEYS, "situation"]
    assert record["psychotherapy"] == "Family Therapy"
    assert record["topic"] == ""
    assert record["is_same_qa"] == 0
    assert record["background"] == "b"
    assert record["dialog"][0] == {
        "speaker": "Seeker",
        "participant": "Client",
        "content": "Hi",
        "id": "0-0",
        "emotional label": ["Fear"],
    }
    assert list(record["dialog"][1]) == [
        "speaker",
        "participant",
        "content",
        "id",
        "reasoning",
        "strategy",
    ]
    assert record["dialog"][1]["strategy"] == []


def test_edited_annotation_is_written_in_the_recorded_place() -> None:
    (d,) = read_all([CN])
    first = d.turns[0]
    edited = Turn(
        first.position,
        first.speaker,
        first.participant,
        first.content,
        first.source_id,
        (SourceAnnotation("strategy", ("Question",)),),
        first.extras,
        first.layout,
    )
    record = psy_insight.to_record(
        Dialogue(
            d.external_id,
            d.language,
            d.metadata,
            (edited, *d.turns[1:]),
            d.annotations,
            d.source_format,
            d.layout,
        )
    )
    turn = record["dialog"][0]  # type: ignore[index]
    assert turn == {
        "speaker": "Supporter",
        "participant": "治疗师",
        "content": "你好（停顿）。",
        "labels": CN["dialog"][0]["labels"],
        "id": "0-0",
        "reasoning": "",
        "strategy": ["Question"],
    }


@pytest.mark.parametrize("language", ["en", "zh"])
def test_language_can_be_set_by_the_caller(language: str) -> None:
    assert [d.language for d in read_all([CN, EN], language=language)] == [language] * 2


def test_codebook_constants() -> None:
    sizes = {dim.key: len(dim.labels) for dim in PSY_INSIGHT_CODEBOOK}
    assert sizes == {
        "psychotherapy": 17,
        "topic": 11,
        "emotion": 11,
        "strategy": 10,
        "reasoning": 0,
        "observation": 0,
        "guide": 0,
        "summary": 0,
    }
    vocabulary = default_vocabulary()
    assert set(vocabulary) == {"psychotherapy", "topic", "emotion", "strategy"}
    assert "Reflection of Feelings" in vocabulary["strategy"]
    strategy = next(dim for dim in PSY_INSIGHT_CODEBOOK if dim.key == "strategy")
    assert (strategy.scope, strategy.speaker, strategy.max_labels) == ("turn", "counselor", 2)
    hotkeys = [label.hotkey for label in strategy.labels]
    assert len(set(hotkeys)) == len(hotkeys)
