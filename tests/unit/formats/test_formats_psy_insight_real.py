"""The released Psy-Insight v7 files: counts, flags, exact round trip, flat memory.

The files live in ../shared beside the repository and are never copied into it.
"""

from __future__ import annotations

import io
import json
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from app.formats import Dialogue, DialogueReader, ReadOptions, default_vocabulary, psy_insight
from app.formats.model import FLAG_ALL_EMOTIONS, JsonValue

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "psy-insight"
EN, CN = DATA / "en_data_version7.json", DATA / "cn_data_version7.json"

pytestmark = pytest.mark.skipif(
    not (EN.is_file() and CN.is_file()),
    reason=f"the released Psy-Insight v7 files are not at {DATA} (../shared is absent)",
)


def _read(path: Path) -> tuple[DialogueReader, list[Dialogue]]:
    reader = DialogueReader(path, ReadOptions(vocabulary=default_vocabulary()))
    items = list(reader)
    dialogues = [item for item in items if isinstance(item, Dialogue)]
    assert len(dialogues) == len(items), [item for item in items if not isinstance(item, Dialogue)]
    return reader, dialogues


def _key_orders(value: JsonValue) -> JsonValue:
    """The key order of every object, recursively (values dropped)."""
    if isinstance(value, dict):
        return [list(value), [_key_orders(item) for item in value.values()]]
    if isinstance(value, list):
        return [_key_orders(item) for item in value]
    return None


@pytest.fixture(scope="module")
def english() -> tuple[DialogueReader, list[Dialogue]]:
    return _read(EN)


@pytest.fixture(scope="module")
def chinese() -> tuple[DialogueReader, list[Dialogue]]:
    return _read(CN)


def test_counts_match_formats_md(
    english: tuple[DialogueReader, list[Dialogue]], chinese: tuple[DialogueReader, list[Dialogue]]
) -> None:
    for (reader, dialogues), sessions, turns, lang in (
        (english, 520, 6208, "en"),
        (chinese, 431, 5776, "zh"),
    ):
        assert reader.format == "psy_insight_v7"
        assert len(dialogues) == sessions
        assert sum(len(d.turns) for d in dialogues) == turns
        assert {d.language for d in dialogues} == {lang}
        assert reader.new_labels == {}
        assert reader.newline == "\r\n"


def test_ids_and_quirks(
    english: tuple[DialogueReader, list[Dialogue]], chinese: tuple[DialogueReader, list[Dialogue]]
) -> None:
    en, cn = english[1], chinese[1]
    assert (cn[0].external_id, cn[-1].external_id) == ("000001", "000431")
    assert (en[0].external_id, en[-1].external_id) == ("000432", "000951")
    qa = Counter(repr(d.metadata["is_same_qa"]) for d in cn)
    assert qa["''"] == 1
    assert qa["0"] + qa["1"] == 430
    cbt = Counter(a.labels for d in en + cn if (a := d.annotation("psychotherapy")))
    assert cbt[("Cognitive Behaviour Therapy",)] == 40
    assert cbt[("Cognitive Behavioral Therapy",)] == 191
    assert cbt[()] == 1  # psychotherapy "" in the Chinese file
    positions = [t.position for t in en[0].turns]
    assert positions == list(range(len(en[0].turns)))
    ref = Counter(
        type(t.extras["reference_labels"]).__name__
        for d in en
        for t in d.turns
        if "reference_labels" in t.extras
    )
    assert ref == {"list": 151, "str": 129}
    assert sum(1 for d in cn for t in d.turns if "labels" in t.extras) == 572


def test_fifty_all_emotion_turns_are_flagged(
    english: tuple[DialogueReader, list[Dialogue]], chinese: tuple[DialogueReader, list[Dialogue]]
) -> None:
    def flagged(dialogues: list[Dialogue]) -> int:
        found = [t for d in dialogues for t in d.turns if FLAG_ALL_EMOTIONS in t.flags]
        assert all(t.speaker == "client" for t in found)
        return len(found)

    assert (flagged(english[1]), flagged(chinese[1])) == (29, 21)


@pytest.mark.parametrize("path", [EN, CN], ids=["en", "cn"])
def test_write_back_is_byte_identical(path: Path) -> None:
    reader, dialogues = _read(path)
    out = io.StringIO(newline="")
    count = psy_insight.write(dialogues, out, newline=reader.newline)
    text = out.getvalue()
    original = path.read_bytes()
    assert count == (520 if path == EN else 431)
    assert json.loads(text) == json.loads(original)
    assert _key_orders(json.loads(text)) == _key_orders(json.loads(original))
    assert text.encode("utf-8") == original


def _peak_bytes(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = sum(1 for _ in DialogueReader(path))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_on_a_five_times_larger_file(tmp_path: Path) -> None:
    text = EN.read_text(encoding="utf-8")
    body = text.strip()[1:-1].strip()
    big = tmp_path / "en_x5.json"
    big.write_text("[\r\n" + ",\r\n".join([body] * 5) + "\r\n]", encoding="utf-8")
    assert big.stat().st_size > 4.9 * EN.stat().st_size
    started = time.perf_counter()
    small_count, small_peak = _peak_bytes(EN)
    big_count, big_peak = _peak_bytes(big)
    print(
        f"peak {small_peak} B for {EN.stat().st_size} B, {big_peak} B for "
        f"{big.stat().st_size} B ({time.perf_counter() - started:.1f} s traced)"
    )
    assert (small_count, big_count) == (520, 2600)
    assert big_peak < small_peak * 1.25
    assert small_peak < EN.stat().st_size  # well under the file size: nothing accumulates
