"""Codebook rules: free renames and additions, no orphaned values, merges, JSON import."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.codebook import core, service
from app.codebook.schemas import DimensionCreate, DimensionEdit, LabelCreate, LabelEdit
from app.errors import Conflict, Invalid
from app.models import AuditEvent, CodebookVersion, Project, User
from tests.codebook.helpers import add_source_values, label_by_value, seeded_project
from tests.factories import make_user


async def _setup(db: AsyncSession) -> tuple[User, Project]:
    lead = await make_user(db)
    return lead, await seeded_project(db, lead=lead)


def _edit(label: object, **changes: object) -> LabelEdit:
    fields = {k: getattr(label, k) for k in ("name_en", "name_zh", "description", "hotkey")}
    return LabelEdit.model_validate({**fields, **changes})


async def _dimension_edit(
    db: AsyncSession, project: Project, key: str, **changes: object
) -> DimensionEdit:
    view = (await core.load(db, project)).get(key)
    assert view is not None
    d = view.dimension
    fields = {
        k: getattr(d, k)
        for k in ("name_en", "name_zh", "description", "scope", "speaker", "kind", "max_labels")
    }
    return DimensionEdit.model_validate({**fields, "required": d.required, **changes})


async def _labels(db: AsyncSession, project: Project, key: str) -> list[str]:
    view = (await core.load(db, project)).get(key)
    assert view is not None
    return [label.value for label in view.labels]


async def test_default_codebook_after_seeding(db: AsyncSession) -> None:
    _, project = await _setup(db)
    codebook = await core.load(db, project)
    assert [d.key for d in codebook.dimensions] == [
        "psychotherapy",
        "topic",
        "emotion",
        "strategy",
        "reasoning",
        "observation",
        "guide",
        "summary",
    ]
    counts = {d.key: len(d.labels) for d in codebook.dimensions}
    assert [counts[k] for k in ("psychotherapy", "topic", "emotion", "strategy")] == [
        17,
        11,
        11,
        10,
    ]
    assert all(counts[k] == 0 for k in ("reasoning", "observation", "guide", "summary"))
    emotion = codebook.get("emotion")
    assert emotion is not None
    assert (emotion.dimension.scope, emotion.dimension.speaker) == ("turn", "client")
    assert codebook.version == 1
    strategy = await label_by_value(db, project, "strategy", "Reflection of Feelings")
    assert strategy.aliases == ["Reflection of feelings"]


async def test_rename_label_keeps_value_and_bumps_version(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    anger = await label_by_value(db, project, "emotion", "Anger")
    data = _edit(anger, name_en="Anger / irritation", name_zh="愤怒或烦躁", hotkey="z")
    assert await service.edit_label(db, lead.id, project, "emotion", anger.id, data)
    anger = await label_by_value(db, project, "emotion", "Anger")
    assert (anger.name_en, anger.name_zh, anger.hotkey) == ("Anger / irritation", "愤怒或烦躁", "z")
    assert anger.value == "Anger"
    assert project.codebook_version == 2
    version = await db.get(CodebookVersion, (project.id, 2))
    assert version is not None
    assert "'Anger'" in version.change
    assert "name_en" in version.change
    assert version.created_by_id == lead.id
    snapshot_labels = version.snapshot["dimensions"][2]["labels"]
    assert snapshot_labels[3]["name_zh"] == "愤怒或烦躁"
    await db.flush()
    event = (
        await db.execute(select(AuditEvent).where(AuditEvent.project_id == project.id))
    ).scalar_one()
    assert (event.action, event.actor_id, event.details["value"]) == (
        "codebook.label.update",
        lead.id,
        "Anger",
    )


async def test_saving_unchanged_label_records_no_version(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    fear = await label_by_value(db, project, "emotion", "Fear")
    assert not await service.edit_label(db, lead.id, project, "emotion", fear.id, _edit(fear))
    assert project.codebook_version == 1


async def test_stale_edit_is_a_conflict(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    fear = await label_by_value(db, project, "emotion", "Fear")
    seen = service.etag(fear)
    first = _edit(fear, name_en="Fear (first)", etag=seen)
    await service.edit_label(db, lead.id, project, "emotion", fear.id, first)
    second = _edit(fear, name_zh="害怕", etag=seen)
    with pytest.raises(Conflict, match="Someone else changed this label"):
        await service.edit_label(db, lead.id, project, "emotion", fear.id, second)
    assert (await label_by_value(db, project, "emotion", "Fear")).name_zh == "恐惧"


async def test_duplicate_hotkey_is_refused(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    fear = await label_by_value(db, project, "emotion", "Fear")
    anxiety = await label_by_value(db, project, "emotion", "Anxiety")
    with pytest.raises(Invalid) as caught:
        await service.edit_label(
            db, lead.id, project, "emotion", fear.id, _edit(fear, hotkey=anxiety.hotkey)
        )
    assert caught.value.message % caught.value.params == (
        "The hotkey “1” is already used by “Anxiety” in this dimension."
    )
    assert caught.value.params["field"] == "hotkey"
    assert project.codebook_version == 1
    new = LabelCreate(value="Hope", name_en="Hope", name_zh="希望", hotkey="1")
    with pytest.raises(Invalid, match="already used"):
        await service.add_label(db, lead.id, project, "emotion", new)


async def test_add_label_and_dimension(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    hope = LabelCreate(value="Hope", name_en="Hope", name_zh="希望", hotkey="h")
    label = await service.add_label(db, lead.id, project, "emotion", hope)
    assert (await _labels(db, project, "emotion"))[-1] == "Hope"
    assert label.position == 11
    assert "Hope" in core.vocabulary(await core.load(db, project))["emotion"]
    risk = DimensionCreate(
        key="risk",
        name_en="Risk",
        name_zh="风险",
        scope="session",
        speaker="client",
        kind="label",
        max_labels=1,
        required=True,
    )
    await service.add_dimension(db, lead.id, project, risk)
    codebook = await core.load(db, project)
    assert [d.key for d in codebook.dimensions][-1] == "risk"
    assert project.codebook_version == 3
    with pytest.raises(Invalid, match="already exists"):
        await service.add_dimension(db, lead.id, project, risk)
    alias = LabelCreate(value="Reflection of feelings", name_en="x", name_zh="x")
    with pytest.raises(Invalid, match="already a label or an alias"):
        await service.add_label(db, lead.id, project, "strategy", alias)


async def test_remove_unused_label(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    await add_source_values(db, project, "emotion", [["Anger"]])
    shame = await label_by_value(db, project, "emotion", "Shame")
    await service.remove_label(db, lead.id, project, "emotion", shame.id)
    assert "Shame" not in await _labels(db, project, "emotion")
    assert project.codebook_version == 2


async def test_remove_used_label_is_refused_with_the_count(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    await add_source_values(db, project, "emotion", [["Anger"], ["Anger", "Fear"], ["Fear"]])
    other = await seeded_project(db, lead=lead)  # values elsewhere do not count
    await add_source_values(db, other, "emotion", [["Anger"]])
    anger = await label_by_value(db, project, "emotion", "Anger")
    with pytest.raises(service.InUse) as caught:
        await service.remove_label(db, lead.id, project, "emotion", anger.id)
    [problem] = caught.value.problems
    assert problem.message % problem.params == (
        "Label “Anger” of “emotion” cannot be removed: stored values use it (2). "
        "Merge it into another label instead."
    )
    assert "Anger" in await _labels(db, project, "emotion")
    assert project.codebook_version == 1


async def test_values_count_through_aliases(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    await add_source_values(db, project, "psychotherapy", [["Cognitive Behaviour Therapy"]])
    cbt = await label_by_value(db, project, "psychotherapy", "Cognitive Behavioral Therapy")
    with pytest.raises(service.InUse) as caught:
        await service.remove_label(db, lead.id, project, "psychotherapy", cbt.id)
    assert caught.value.problems[0].params["count"] == 1


async def test_narrowing_cardinality_under_multi_label_values_is_refused(
    db: AsyncSession,
) -> None:
    lead, project = await _setup(db)
    await add_source_values(db, project, "strategy", [["Question", "Information"], ["Question"]])
    edit = await _dimension_edit(db, project, "strategy", max_labels=1)
    with pytest.raises(service.InUse) as caught:
        await service.edit_dimension(db, lead.id, project, "strategy", edit)
    [problem] = caught.value.problems
    assert problem.params == {"dimension": "strategy", "max": 1, "count": 1}
    assert "cannot go down to 1" in problem.message % problem.params
    view = (await core.load(db, project)).get("strategy")
    assert view is not None
    assert view.dimension.max_labels == 2
    assert project.codebook_version == 1
    # Raising the limit, or lowering it where no value has more labels, is allowed.
    await service.edit_dimension(
        db,
        lead.id,
        project,
        "strategy",
        await _dimension_edit(db, project, "strategy", max_labels=3),
    )
    assert project.codebook_version == 2


async def test_scope_and_speaker_changes_with_values(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    await add_source_values(db, project, "emotion", [["Fear"]])
    for change in ({"scope": "session"}, {"speaker": "counselor"}, {"kind": "text"}):
        edit = await _dimension_edit(db, project, "emotion", **change)
        with pytest.raises((service.InUse, Invalid)):
            await service.edit_dimension(db, lead.id, project, "emotion", edit)
    widen = await _dimension_edit(db, project, "emotion", speaker="any", name_en="Feeling")
    assert await service.edit_dimension(db, lead.id, project, "emotion", widen)
    unused = await _dimension_edit(db, project, "topic", scope="turn", speaker="client")
    assert await service.edit_dimension(db, lead.id, project, "topic", unused)
    assert project.codebook_version == 3


async def test_remove_dimension_only_without_values(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    await add_source_values(db, project, "topic", [["Job Crisis"]])
    with pytest.raises(service.InUse) as caught:
        await service.remove_dimension(db, lead.id, project, "topic")
    assert caught.value.problems[0].params == {"dimension": "topic", "count": 1}
    await service.remove_dimension(db, lead.id, project, "guide")
    keys = [d.key for d in (await core.load(db, project)).dimensions]
    assert "topic" in keys
    assert "guide" not in keys
    assert project.codebook_version == 2


async def test_merge_moves_values_to_the_target(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    await add_source_values(db, project, "emotion", [["Guilty"], ["Shame"], ["Guilty", "Fear"]])
    guilty = await label_by_value(db, project, "emotion", "Guilty")
    shame = await label_by_value(db, project, "emotion", "Shame")
    shame_spellings = frozenset({"Shame"})
    usage = service.Usage("emotion", spellings=shame_spellings)
    assert await service.count_values(db, project.id, [usage]) == [1]
    await service.merge_label(db, lead.id, project, "emotion", guilty.id, shame.id)
    assert "Guilty" not in await _labels(db, project, "emotion")
    shame = await label_by_value(db, project, "emotion", "Shame")
    assert shame.aliases == ["Guilty"]
    view = (await core.load(db, project)).get("emotion")
    assert view is not None
    spellings = service.shape_of(view).labels["Shame"]
    assert await service.count_values(db, project.id, [service.Usage("emotion", spellings)]) == [3]
    # The merged spelling keeps Shame in use: it cannot be removed now.
    with pytest.raises(service.InUse):
        await service.remove_label(db, lead.id, project, "emotion", shame.id)
    assert project.codebook_version == 2
    with pytest.raises(Invalid, match="Choose another label"):
        await service.merge_label(db, lead.id, project, "emotion", shame.id, shame.id)


def _doc(**changes: object) -> bytes:
    data: dict[str, object] = {"format": "psy-annotator-codebook", "format_version": 1}
    data["dimensions"] = [
        {
            "key": "mood",
            "name_en": "Mood",
            "name_zh": "心情",
            "scope": "turn",
            "speaker": "client",
            "kind": "label",
            "max_labels": 1,
            "labels": [
                {"value": "Calm", "name_en": "Calm", "name_zh": "平静", "hotkey": "c"},
                {"value": "Tense", "name_en": "Tense", "name_zh": "紧张", "hotkey": "t"},
            ],
        }
    ]
    data.update(changes)
    return json.dumps(data, ensure_ascii=False).encode()


def _problems(raw: bytes) -> list[str]:
    with pytest.raises(service.DocumentInvalid) as caught:
        service.parse_document(raw)
    return [
        (f"{p.where}: " if p.where else "") + p.message % dict(p.params)
        for p in caught.value.problems
    ]


def _dimension(**changes: object) -> dict[str, object]:
    base = json.loads(_doc())["dimensions"][0]
    assert isinstance(base, dict)
    return {**base, **changes}


def test_a_valid_document_parses() -> None:
    doc = service.parse_document(_doc())
    assert [label.value for label in doc.dimensions[0].labels] == ["Calm", "Tense"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "This is not valid JSON (line 1, column 2)."),
        (b"", "Choose a file or paste the codebook JSON."),
        (b"\xff\xfe{}", "The codebook is not UTF-8 text."),
        (b"[1, 2]", "The codebook must be a JSON object."),
        (b'{"format": "x", "dimensions": []}', "“format” must be “psy-annotator-codebook”"),
        (_doc(format_version=2), "format_version: Unsupported codebook format_version 2"),
        (b'{"format": "psy-annotator-codebook", "format": "x"}', "repeats the name “format”"),
        (b" " * (1024 * 1024 + 1), "The codebook is larger than 1 MB."),
        (_doc(dimensions=[_dimension(), _dimension()]), "key “mood” appears more than once"),
        (_doc(dimensions=[_dimension(scope="visit")]), "dimensions[0].scope: Unknown scope"),
        (_doc(dimensions=[_dimension(max_labels=0)]), "max_labels: The maximum number"),
        (_doc(dimensions=[_dimension(max_labels="2")]), "max_labels: Must be a whole number."),
        (_doc(dimensions=[_dimension(kind="text")]), "A free-text field cannot have labels."),
        (_doc(dimensions=[_dimension(key="Mood")]), "dimensions[0].key: Use 1 to 40"),
        (_doc(dimensions=[_dimension(colour="red")]), "dimensions[0].colour: Unknown field."),
        (
            _doc(
                dimensions=[
                    _dimension(
                        labels=[
                            {"value": "A", "name_en": "A", "name_zh": "甲", "hotkey": "a"},
                            {"value": "B", "name_en": "B", "name_zh": "乙", "hotkey": "a"},
                        ]
                    )
                ]
            ),
            "dimensions[0].labels: The hotkey “a” is used by more than one label.",
        ),
        (
            _doc(
                dimensions=[
                    _dimension(
                        labels=[
                            {"value": "A", "name_en": "A", "name_zh": "甲"},
                            {"value": "B", "name_en": "B", "name_zh": "乙", "aliases": ["A"]},
                        ]
                    )
                ]
            ),
            "The label value or alias “A” appears more than once.",
        ),
    ],
)
def test_document_errors_are_specific(raw: bytes, expected: str) -> None:
    problems = _problems(raw)
    assert any(expected in p for p in problems), problems


def test_wrong_format_version_is_the_only_problem_reported() -> None:
    problems = _problems(_doc(format_version=2, dimensions=[_dimension(scope="visit")]))
    assert problems == [
        "format_version: Unsupported codebook format_version 2: this version reads 1."
    ]


async def test_import_round_trip_into_another_project(db: AsyncSession) -> None:
    lead, source = await _setup(db)
    fear = await label_by_value(db, source, "emotion", "Fear")
    await service.edit_label(
        db, lead.id, source, "emotion", fear.id, _edit(fear, description="惧怕 <b>", hotkey="~")
    )
    await service.remove_dimension(db, lead.id, source, "guide")
    exported = service.export_json(await core.load(db, source))
    target = await seeded_project(db, lead=lead)
    version = await service.import_codebook(db, lead.id, target, service.parse_document(exported))
    assert version == 2
    assert core.snapshot(await core.load(db, target)) == json.loads(exported)
    # Importing the same again changes nothing and records no version.
    again = await service.import_codebook(db, lead.id, target, service.parse_document(exported))
    assert again is None
    assert target.codebook_version == 2


async def test_import_refused_when_values_depend_on_what_it_drops(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    await add_source_values(db, project, "emotion", [["Anger"], ["Anger"]])
    await add_source_values(db, project, "strategy", [["Question", "Information"]])
    await add_source_values(db, project, "guide", ["A free-text guide."], position=-1)
    before = core.snapshot(await core.load(db, project))
    doc = json.loads(service.export_json(await core.load(db, project)))
    emotion, strategy = doc["dimensions"][2], doc["dimensions"][3]
    emotion["labels"] = [x for x in emotion["labels"] if x["value"] != "Anger"]
    strategy["max_labels"] = 1
    doc["dimensions"] = [d for d in doc["dimensions"] if d["key"] != "guide"]
    with pytest.raises(service.InUse) as caught:
        await service.import_codebook(
            db, lead.id, project, service.parse_document(json.dumps(doc).encode())
        )
    found = sorted(p.message % p.params for p in caught.value.problems)
    assert len(found) == 3
    assert "Dimension “guide” cannot be removed: stored values use it (1)." in found
    assert any("Label “Anger” of “emotion”" in p and "(2)" in p for p in found)
    assert any("“strategy” cannot go down to 1" in p and "(1)" in p for p in found)
    assert core.snapshot(await core.load(db, project)) == before
    assert project.codebook_version == 1


async def test_import_may_retire_a_used_label_by_making_it_an_alias(db: AsyncSession) -> None:
    lead, project = await _setup(db)
    await add_source_values(db, project, "emotion", [["Guilty"]])
    doc = json.loads(service.export_json(await core.load(db, project)))
    emotion = doc["dimensions"][2]
    emotion["labels"] = [x for x in emotion["labels"] if x["value"] != "Guilty"]
    shame = next(x for x in emotion["labels"] if x["value"] == "Shame")
    shame["aliases"] = ["Guilty"]
    await service.import_codebook(
        db, lead.id, project, service.parse_document(json.dumps(doc).encode())
    )
    assert (await label_by_value(db, project, "emotion", "Shame")).aliases == ["Guilty"]
    assert "Guilty" not in await _labels(db, project, "emotion")
