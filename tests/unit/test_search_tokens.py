"""CJK bigram search tokens: what is indexed and what a query asks for."""

from __future__ import annotations

import pytest

from app.dialogues import search


def test_chinese_runs_become_overlapping_bigrams() -> None:
    assert search.tokens("我最近总是失眠") == ["我最", "最近", "近总", "总是", "是失", "失眠"]


def test_a_lone_cjk_character_is_its_own_token() -> None:
    assert search.tokens("好") == ["好"]
    assert search.tokens("a 好 b") == ["a", "好", "b"]


def test_english_words_are_lower_cased_and_split_on_punctuation() -> None:
    assert search.tokens("I can't SLEEP, at all!") == ["i", "can", "t", "sleep", "at", "all"]
    assert search.tokens("snake_case") == ["snake", "case"]


def test_mixed_text_keeps_words_and_bigrams_in_order() -> None:
    # A digit or punctuation ends a CJK run: "第" and "次" stand alone around the "2".
    assert search.tokens("CBT治疗失眠，第2次session") == [
        "cbt",
        "治疗",
        "疗失",
        "失眠",
        "第",
        "2",
        "次",
        "session",
    ]


def test_document_is_distinct_tokens_in_first_seen_order() -> None:
    assert search.document(["失眠失眠", "Sleep sleep"]) == "失眠 眠失 sleep"


def test_document_stops_at_the_token_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "MAX_TOKENS", 3)
    assert search.document(["a b c d e"]) == "a b c"


def test_query_requires_every_distinct_token() -> None:
    assert search.query("失眠") == "'失眠'"
    assert search.query("Sleep problems sleep") == "'sleep' & 'problems'"
    assert search.query("总是失眠") == "'总是' & '是失' & '失眠'"


def test_a_lone_cjk_character_queries_as_a_prefix() -> None:
    assert search.query("失") == "'失':*"
    # a single Latin letter is a whole word, never a prefix
    assert search.query("a") == "'a'"


def test_query_without_tokens_is_none() -> None:
    assert search.query("") is None
    assert search.query("?!，。 ...") is None


@pytest.mark.parametrize(
    ("token", "term"),
    [
        ("o'brien", "'o''brien'"),
        ("back\\slash", "'back\\\\slash'"),
        ("plain", "'plain'"),
    ],
)
def test_terms_are_quoted_for_to_tsquery(token: str, term: str) -> None:
    assert search._term(token) == term


def test_apostrophes_in_a_query_never_reach_to_tsquery_unquoted() -> None:
    expression = search.query("O'Brien's 'quoted' & | ! ( )")
    assert expression == "'o' & 'brien' & 's' & 'quoted'"
