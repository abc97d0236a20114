"""Dialogue browsing rules: keyset pages, filters, search, project scoping, grouped sources."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.codebook.core import load
from app.dialogues import service
from app.dialogues.schemas import DialogueFilters, decode_cursor, encode_cursor
from app.errors import NotFound
from app.models import Project
from tests.dialogues.data import (
    annotate,
    client_turn,
    counselor_turn,
    make_batch,
    make_dialogue,
    make_dialogues,
    make_source,
    seed_codebook,
)
from tests.factories import make_project


async def _names(db: AsyncSession, project: Project) -> service.LabelNames:
    return service.label_names(await load(db, project))


async def _ids(db: AsyncSession, project: Project, **filters: object) -> list[int]:
    page = await service.list_dialogues(
        db, project, DialogueFilters.model_validate(filters), await _names(db, project)
    )
    assert page.total == len(page.rows), "use this helper for results that fit on one page"
    return [row.id for row in page.rows]


@pytest.fixture
async def project(db: AsyncSession) -> Project:
    project = await make_project(db)
    await seed_codebook(db, project)
    return project


async def test_keyset_pages_walk_every_row_once_in_id_order(
    db: AsyncSession, project: Project
) -> None:
    batch = await make_batch(db, project, await make_source(db, project))
    made = sorted(d.id for d in await make_dialogues(db, project, batch, 120))
    other = await make_project(db)
    other_batch = await make_batch(db, other, await make_source(db, other))
    await make_dialogues(db, other, other_batch, 5)
    names = await _names(db, project)
    seen: list[int] = []
    sizes = []
    cursor: str | None = None
    while True:
        filters = DialogueFilters(cursor=cursor)
        page = await service.list_dialogues(db, project, filters, names)
        assert page.total == 120
        sizes.append(len(page.rows))
        seen.extend(row.id for row in page.rows)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sizes == [50, 50, 20]
    assert seen == made


async def test_a_full_last_page_has_no_next_cursor(db: AsyncSession, project: Project) -> None:
    batch = await make_batch(db, project, await make_source(db, project))
    await make_dialogues(db, project, batch, service.PAGE_SIZE)
    page = await service.list_dialogues(db, project, DialogueFilters(), await _names(db, project))
    assert len(page.rows) == service.PAGE_SIZE
    assert page.next_cursor is None


def test_cursor_round_trip_and_refusal() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    for bad in ("", "abc", encode_cursor(1) + "!", "MTI", encode_cursor(2**63), "ZC0x"):
        with pytest.raises(ValueError, match="page link is invalid"):
            decode_cursor(bad)


async def test_each_filter_alone_and_combined(db: AsyncSession, project: Project) -> None:
    source = await make_source(db, project)
    first = await make_batch(db, project, source, "first.json")
    second = await make_batch(db, project, source, "second.json")
    sleep_cbt_zh = await make_dialogue(
        db,
        project,
        first,
        language="zh",
        session_labels={
            "topic": ["Sleep Problems"],
            "psychotherapy": ["Cognitive Behavioral Therapy"],
        },
    )
    sleep_cbt_en = await make_dialogue(
        db,
        project,
        second,
        language="en",
        # the English file's spelling of CBT: found by the codebook label through its alias
        session_labels={
            "topic": ["Sleep Problems"],
            "psychotherapy": ["Cognitive Behaviour Therapy"],
        },
    )
    job_gestalt_en = await make_dialogue(
        db,
        project,
        first,
        language="en",
        session_labels={"topic": ["Job Crisis"], "psychotherapy": ["Gestalt Therapy"]},
    )
    unlabelled = await make_dialogue(db, project, second, language="zh")

    assert await _ids(db, project) == [
        sleep_cbt_zh.id,
        sleep_cbt_en.id,
        job_gestalt_en.id,
        unlabelled.id,
    ]
    assert await _ids(db, project, language="zh") == [sleep_cbt_zh.id, unlabelled.id]
    assert await _ids(db, project, language="en") == [sleep_cbt_en.id, job_gestalt_en.id]
    assert await _ids(db, project, topic="Sleep Problems") == [sleep_cbt_zh.id, sleep_cbt_en.id]
    assert await _ids(db, project, topic="Job Crisis") == [job_gestalt_en.id]
    assert await _ids(db, project, psychotherapy="Cognitive Behavioral Therapy") == [
        sleep_cbt_zh.id,
        sleep_cbt_en.id,
    ]
    assert await _ids(db, project, psychotherapy="Gestalt Therapy") == [job_gestalt_en.id]
    assert await _ids(db, project, batch=first.id) == [sleep_cbt_zh.id, job_gestalt_en.id]
    assert await _ids(db, project, batch=second.id) == [sleep_cbt_en.id, unlabelled.id]
    assert await _ids(db, project, topic="Sleep Problems", language="en", batch=str(second.id)) == [
        sleep_cbt_en.id
    ]
    assert await _ids(db, project, topic="Sleep Problems", batch=str(first.id), language="en") == []
    assert await _ids(db, project, topic="No Such Topic") == []


async def test_a_foreign_batch_id_finds_nothing(db: AsyncSession, project: Project) -> None:
    batch = await make_batch(db, project, await make_source(db, project))
    await make_dialogue(db, project, batch)
    other = await make_project(db)
    foreign = await make_batch(db, other, await make_source(db, other))
    await make_dialogue(db, other, foreign)
    assert await _ids(db, project, batch=foreign.id) == []


async def test_search_finds_chinese_substrings_and_english_words(
    db: AsyncSession, project: Project
) -> None:
    batch = await make_batch(db, project, await make_source(db, project))
    insomnia_zh = await make_dialogue(
        db,
        project,
        batch,
        language="zh",
        turns=[client_turn("我最近总是失眠"), counselor_turn("能说说吗？")],
    )
    insomnia_en = await make_dialogue(
        db,
        project,
        batch,
        turns=[client_turn("My Insomnia is getting worse."), counselor_turn("Tell me.")],
    )
    await make_dialogue(db, project, batch, language="zh", turns=[client_turn("工作压力很大")])

    assert await _ids(db, project, q="失眠") == [insomnia_zh.id]
    assert await _ids(db, project, q="总是失眠") == [insomnia_zh.id]
    assert await _ids(db, project, q="失") == [insomnia_zh.id]  # a lone character: prefix
    assert await _ids(db, project, q="INSOMNIA") == [insomnia_en.id]
    assert await _ids(db, project, q="insomnia worse") == [insomnia_en.id]
    assert await _ids(db, project, q="insomnia 失眠") == []  # every token is required
    assert await _ids(db, project, q="睡不着") == []
    assert await _ids(db, project, q="O'Brien") == []  # quoting holds: no syntax error
    assert await _ids(db, project, q="失眠", language="en") == []


@pytest.mark.parametrize(
    "q", ["O'Brien", "a\\b", "x:*", "!(&|) <->", "²", "ǅ", "🙂", "___", "''", "失" * 200]
)
async def test_odd_search_text_never_breaks_the_query(
    db: AsyncSession, project: Project, q: str
) -> None:
    batch = await make_batch(db, project, await make_source(db, project))
    await make_dialogue(db, project, batch, turns=[client_turn("plain words 普通的话")])
    assert await _ids(db, project, q=q) == []


async def test_get_dialogue_is_scoped_to_the_project(db: AsyncSession, project: Project) -> None:
    batch = await make_batch(db, project, await make_source(db, project))
    mine = await make_dialogue(db, project, batch)
    other = await make_project(db)
    theirs = await make_dialogue(
        db, other, await make_batch(db, other, await make_source(db, other))
    )
    assert (await service.get_dialogue(db, project, mine.id)).id == mine.id
    with pytest.raises(NotFound):
        await service.get_dialogue(db, project, theirs.id)
    with pytest.raises(NotFound):
        await service.get_dialogue(db, project, theirs.id + 1000)


async def test_read_dialogue_orders_turns_and_groups_sources(
    db: AsyncSession, project: Project
) -> None:
    file_source = await make_source(db, project, "cn_data_version7.json")
    model_source = await make_source(db, project, "a-model")
    batch = await make_batch(db, project, file_source)
    dialogue = await make_dialogue(
        db,
        project,
        batch,
        turns=[
            client_turn("one", extras={"reference_labels": ["[sighs]", "[pause]"]}),
            counselor_turn(
                "two", extras={"labels": [{"label": "（停顿）", "index": 3, "type": "x"}]}
            ),
            client_turn("three", extras={"reference_labels": "[crying]", "note": {"k": 1}}),
        ],
        meta={"theme": "Sleep", "background": "", "is_same_qa": 0, "reasoning": "why"},
    )
    await annotate(db, model_source, dialogue, 0, "emotion", labels=["Fear"])
    await annotate(db, file_source, dialogue, 0, "observation", text="worried")
    await annotate(db, file_source, dialogue, 0, "emotion", labels=["Anxiety"])
    await annotate(db, file_source, dialogue, 1, "strategy", labels=["Question"])
    await annotate(db, file_source, dialogue, -1, "summary", text="helped")
    await annotate(db, file_source, dialogue, -1, "topic", labels=["Sleep Problems"])

    view = await service.read_dialogue(db, project, dialogue.id, await _names(db, project))

    assert [t.turn.content for t in view.turns] == ["one", "two", "three"]
    first = view.turns[0]
    assert [source for source, _ in first.sources] == ["a-model", "cn_data_version7.json"]
    # within a source, dimensions follow the codebook (emotion before observation)
    assert [v.dimension for v in first.sources[1][1]] == ["emotion", "observation"]
    assert [(s, [v.dimension for v in vs]) for s, vs in view.session] == [
        ("cn_data_version7.json", ["topic", "summary"])
    ]
    assert view.turns[2].sources == []
    assert first.stage_directions == ["[sighs]", "[pause]"]
    assert view.turns[1].stage_directions == ["（停顿）"]
    assert view.turns[2].stage_directions == ["[crying]"]
    assert view.turns[2].other_extras == [("note", '{"k": 1}')]
    assert view.context == [("theme", "Sleep")]  # the empty background is left out
    assert view.other_metadata == [("is_same_qa", "0"), ("reasoning", "why")]
    assert view.batch.file_name == "data.json"
    assert len(view.values) == 6
