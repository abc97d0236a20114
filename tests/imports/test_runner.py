"""Imports against real PostgreSQL: the real corpora, every bad input, sources, duplicates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.codebook.core import load
from app.errors import Conflict
from app.exports.source import write_psy_insight
from app.imports import load as loading
from app.imports import runner
from app.models import CodebookVersion, Dialogue, ImportBatch, Project
from tests.imports.helpers import Env, make_env, require_shared, v7_bytes, v7_record


@pytest.fixture
async def env(fresh_db_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    async for e in make_env(fresh_db_url, tmp_path):
        yield e


def _key_order(value: object) -> object:
    if isinstance(value, dict):
        return [(k, _key_order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_key_order(v) for v in value]
    return None


async def test_real_corpora_import_and_export_back_unchanged(env: Env, tmp_path: Path) -> None:
    shared = require_shared()
    expected = {"en": (520, 6208, 29), "cn": (431, 5776, 21)}
    for lang, (dialogues, turns, flagged) in expected.items():
        batch = await env.run(shared / f"{lang}_data_version7.json", source=f"{lang}-release")
        assert batch.status == "succeeded", batch.errors[:3]
        assert (batch.dialogues_new, batch.turns, batch.flagged_turns) == (
            dialogues,
            turns,
            flagged,
        )
        assert batch.format == "psy_insight_v7"
    assert (await env.counts())[:2] == (951, 11984)
    async with env.database.sessionmaker() as db:
        project = await db.get(Project, env.project_id)
        assert project is not None
        for lang, language in (("en", "en"), ("cn", "zh")):
            files = await write_psy_insight(db, project, f"{lang}-release", tmp_path / "out")
            assert [p.name for p, _ in files] == [f"imp-{lang}-release-{language}.json"]
            exported = json.loads(files[0][0].read_text(encoding="utf-8"))
            original = json.loads(
                (shared / f"{lang}_data_version7.json").read_text(encoding="utf-8")
            )
            assert exported == original
            assert _key_order(exported) == _key_order(original)


BAD_FILES = [
    ("truncated", b'[{"dialog_id": "1"', "truncated_json", "the file is truncated"),
    ("utf16", "[]".encode("utf-16"), "wrong_encoding", "UTF-16"),
    ("latin1", '[{"a": "é"}]'.encode("latin-1"), "wrong_encoding", "Latin-1"),
    ("bomb", b"[" * 100_000, "nesting_too_deep", "at most 64 levels"),
    ("empty", b"", "empty_file", "the file is empty"),
    ("binary", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "binary_file", "PNG image"),
    ("scalar", b"42", "wrong_top_level", "JSON array"),
]


@pytest.mark.parametrize(
    ("name", "data", "code", "message"), BAD_FILES, ids=[c[0] for c in BAD_FILES]
)
async def test_unreadable_files_import_nothing(
    env: Env, name: str, data: bytes, code: str, message: str
) -> None:
    await env.run(v7_bytes([v7_record("000001")]), source="before")
    before = await env.counts()
    batch = await env.run(data, name=f"{name}.json")
    assert batch.status == "failed"
    assert batch.errors[0]["code"] == code
    assert message in batch.errors[0]["message"]
    assert batch.message == "The file has errors; nothing was imported."
    assert await env.counts() == before


async def test_record_errors_are_located_and_nothing_is_written(env: Env) -> None:
    good = v7_record("000001")
    unknown = v7_record("000002", emotion=["Anxiety", "Bliss"])
    missing = v7_record("000003")
    del missing["dialog"]
    wrong_type = v7_record("000004")
    wrong_type["dialog"] = "not a list"
    batch = await env.run(v7_bytes([good, unknown, missing, wrong_type]))
    assert batch.status == "failed"
    by_code = {e["code"]: e for e in batch.errors}
    assert by_code["unknown_label"]["dialog_id"] == "000002"
    assert by_code["unknown_label"]["position"] == 0
    assert by_code["unknown_label"]["record"] == 1
    assert "Bliss" in by_code["unknown_label"]["message"]
    assert by_code["missing_key"]["path"] == "dialog"
    assert by_code["wrong_type"]["record"] == 3
    assert await env.counts() == (0, 0, 0)


async def test_nul_characters_are_located_and_nothing_is_written(env: Env) -> None:
    """`\\u0000` is valid JSON, but PostgreSQL stores it neither in text nor in jsonb."""
    content = v7_record("000001")
    content["dialog"][1]["content"] = "Tell me\u0000 more."
    meta = v7_record("000002")
    meta["background"] = "A student.\u0000"
    label = v7_record("000003")
    label["dialog"][0]["observation"] = "\u0000"
    clean = v7_record("000004")
    batch = await env.run(v7_bytes([clean, content, meta, label]))
    assert batch.status == "failed"
    found = [
        (e["code"], e["record"], e["dialog_id"], e["position"], e["path"]) for e in batch.errors
    ]
    assert found == [
        ("nul_character", 1, "000001", 1, "content"),
        ("nul_character", 2, "000002", None, "metadata.background"),
        ("nul_character", 3, "000003", 0, "observation"),
    ]
    assert "\\u0000" in batch.errors[0]["message"]
    assert await env.counts() == (0, 0, 0)
    # the same file without them imports
    for record, (path, fixed) in zip(
        (content, meta, label), (("content", "Tell me more."), ("background", "A student."),
                                 ("observation", "tired")), strict=True
    ):  # fmt: skip
        if path == "background":
            record[path] = fixed
        else:
            record["dialog"][0 if path == "observation" else 1][path] = fixed
    assert (await env.run(v7_bytes([clean, content, meta, label]), name="fixed.json")).status == (
        "succeeded"
    )


async def test_nul_in_keys_and_ids_is_reported_not_stored(env: Env) -> None:
    """The report itself is jsonb: NUL in a key, a path or a dialog_id is shown escaped."""
    keyed = v7_record("000001")
    keyed["background\u0000"] = {"x": "y\u0000"}
    twice = [v7_record("00\u00002"), v7_record("00\u00002")]
    batch = await env.run(v7_bytes([keyed, *twice]))
    assert batch.status == "failed"
    found = {(e["code"], e["dialog_id"], e["path"]) for e in batch.errors}
    assert ("nul_character", "000001", "metadata.'background\\x00'") in found
    assert ("nul_character", "000001", "metadata.background\\u0000.x") in found
    assert ("duplicate_dialog_id", "00\\u00002", "dialog_id") in found
    assert ("nul_character", "00\\u00002", "dialog_id") in found
    assert batch.message != "The import failed on our side; nothing was imported."
    assert await env.counts() == (0, 0, 0)


async def test_duplicate_dialog_id_in_one_file(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Located at the repeat, naming the first: records counted across the reader's chunks,
    and a bad record in between counts too."""
    monkeypatch.setattr(runner, "CHUNK", 2)
    bad = v7_record("000009")
    bad["dialog"] = "not a list"
    records = [v7_record(f"{i:06d}") for i in range(1, 4)] + [bad, v7_record("000002")]
    batch = await env.run(v7_bytes(records))
    assert batch.status == "failed"
    found = [(e["code"], e["record"]) for e in batch.errors]
    assert found == [("wrong_type", 3), ("duplicate_dialog_id", 4)]
    assert "first at record[1]" in batch.errors[1]["message"]
    assert await env.counts() == (0, 0, 0)


async def test_errors_stop_at_the_limit(env: Env) -> None:
    records = [v7_record(f"{i:06d}", emotion=["Nope"]) for i in range(150)]
    batch = await env.run(v7_bytes(records))
    assert batch.status == "failed"
    assert batch.error_count == 100
    assert batch.errors[-1]["code"] == "too_many_errors"


async def test_reimport_under_the_same_source_is_refused_by_name(env: Env) -> None:
    data = v7_bytes([v7_record("000001")])
    first = await env.run(data, source="people")
    assert first.status == "succeeded"
    with pytest.raises(
        Conflict, match=rf"already imported under source “people”: import #{first.id} “file.json”"
    ):
        await env.run(data, source="people", name="renamed.json")
    assert await env.counts() == (1, 2, 8)  # 4 session values, 2 per turn


async def test_same_dialogues_under_another_source_add_annotations(env: Env) -> None:
    await env.run(v7_bytes([v7_record("000001"), v7_record("000002")]), source="people")
    model = v7_bytes([v7_record("000001", emotion=["Sadness"]), v7_record("000002")])
    batch = await env.run(model, source="model-draft")
    assert (batch.status, batch.dialogues_new, batch.dialogues_matched) == ("succeeded", 0, 2)
    dialogues, turns, annotations = await env.counts()
    assert (dialogues, turns) == (2, 4)
    assert annotations == 2 * 2 * 8  # two sources, two dialogues
    async with env.database.sessionmaker() as db:
        labels = await db.scalar(
            select(Dialogue.session_labels).where(Dialogue.external_id == "000001")
        )
    assert labels["topic"] == ["Sleep Problems"]


async def test_same_id_with_different_turns_is_refused(env: Env) -> None:
    await env.run(v7_bytes([v7_record("000001")]), source="people")
    changed = v7_bytes([v7_record("000001", content="Something else entirely.")])
    batch = await env.run(changed, source="model-draft")
    assert batch.status == "failed"
    assert batch.errors[0]["code"] == "different_dialogue"
    assert await env.counts() == (1, 2, 8)  # 4 session values, 2 per turn


async def test_unknown_labels_can_be_added_to_the_codebook(env: Env) -> None:
    data = v7_bytes([v7_record("000001", emotion=["Anxiety", "Loneliness"])])
    assert (await env.run(data, source="a")).status == "failed"
    batch = await env.run(data, source="b", add_new_labels=True)
    assert batch.status == "succeeded"
    assert batch.new_labels == {"emotion": {"Loneliness": 1}}
    async with env.database.sessionmaker() as db:
        project = await db.get(Project, env.project_id)
        assert project is not None
        codebook = await load(db, project)
        versions = list(
            await db.scalars(
                select(CodebookVersion.version).where(CodebookVersion.project_id == project.id)
            )
        )
    emotion = codebook.get("emotion")
    assert emotion is not None
    assert "Loneliness" in [label.value for label in emotion.labels]
    assert codebook.version == 2
    assert versions == [1, 2]


async def test_other_formats_import(env: Env) -> None:
    jsonl = (
        b'{"dialog_id": "j1", "turns": [{"speaker": "client", "content": "hi"},'
        b' {"speaker": "counselor", "content": "hello"}]}\n'
    )
    batch = await env.run(jsonl, name="d.jsonl", source="jsonl")
    assert batch.status == "succeeded", batch.errors
    assert (batch.format, batch.dialogues_new, batch.turns) == ("jsonl", 1, 2)
    text = "来访者：我最近睡不好。\n心理咨询师：能多说一些吗？\n".encode()
    batch = await env.run(text, name="c1.txt", source="cpsycound", fmt="cpsycound")
    assert batch.status == "succeeded", batch.errors
    assert batch.turns == 2


async def test_a_problem_after_streamed_chunks_rolls_them_back(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "CHUNK", 2)  # the first records are sent before the bad one
    monkeypatch.setattr(loading, "BATCH_ROWS", 1)
    records = [v7_record(f"{i:06d}") for i in range(7)]
    records.append(v7_record("000099", emotion=["Bliss"]))
    batch = await env.run(v7_bytes(records))
    assert batch.status == "failed"
    assert [(e["code"], e["record"]) for e in batch.errors] == [("unknown_label", 7)]
    assert await env.counts() == (0, 0, 0)
    fixed = await env.run(v7_bytes([*records[:7], v7_record("000099")]), name="fixed.json")
    assert (fixed.status, fixed.dialogues_new, fixed.turns) == ("succeeded", 8, 16)
    assert await env.counts() == (8, 16, 64)


@pytest.mark.parametrize("chunk", [250, 2], ids=["in-the-last-copy", "in-an-early-copy"])
async def test_a_database_error_in_a_copy_leaves_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(runner, "CHUNK", chunk)
    monkeypatch.setattr(loading, "BATCH_ROWS", 1)
    # A database error the checks do not foresee: with the NUL check off, the text reaches
    # COPY, and PostgreSQL text cannot hold NUL: the source values' COPY of the first chunk fails
    monkeypatch.setattr(runner, "nul_fields", lambda dialogue: iter(()))
    records = [v7_record(f"{i:06d}") for i in range(6)]
    records[0]["dialog"][1]["reasoning"] = "a\u0000b"
    with pytest.raises(Exception, match="0x00"):
        await env.run(v7_bytes(records))
    assert await env.counts() == (0, 0, 0)
    async with env.database.sessionmaker() as db:
        batch = await db.scalar(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(1))
    assert batch is not None
    assert (batch.status, batch.message) == (
        "failed",
        "The import failed on our side; nothing was imported.",
    )


async def test_a_file_error_after_a_failed_copy_is_what_the_batch_reports(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "CHUNK", 2)
    monkeypatch.setattr(loading, "BATCH_ROWS", 1)
    monkeypatch.setattr(runner, "nul_fields", lambda dialogue: iter(()))  # as above
    records = [v7_record(f"{i:06d}") for i in range(4)]
    records[1]["dialog"][1]["reasoning"] = "a\u0000b"  # its COPY is in flight, and fails
    records[3] = v7_record("000003", emotion=["Bliss"])  # the file's own problem
    batch = await env.run(v7_bytes(records))
    assert (batch.status, [e["code"] for e in batch.errors]) == ("failed", ["unknown_label"])
    assert await env.counts() == (0, 0, 0)
