"""The default Psy-Insight codebook: dimensions and their vocabularies, as plain data.

Label values are the exact English strings used in the Psy-Insight v7 files.  Another module
turns :data:`PSY_INSIGHT_CODEBOOK` into database rows; readers take :func:`default_vocabulary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from app.formats import model as m

Scope = Literal["session", "turn"]
Applies = Literal["client", "counselor", "any"]
Kind = Literal["label", "text"]

_HOTKEYS = "1234567890qwertyuiopasdfghjkl"


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """One label of a closed vocabulary."""

    value: str
    name_zh: str
    hotkey: str


@dataclass(frozen=True, slots=True)
class DimensionSpec:
    """One codebook dimension; ``max_labels`` is None for free text."""

    key: str
    name_en: str
    name_zh: str
    scope: Scope
    speaker: Applies
    kind: Kind
    max_labels: int | None
    required: bool
    labels: tuple[LabelSpec, ...] = ()
    source_key: str = ""


def _labels(pairs: list[tuple[str, str]]) -> tuple[LabelSpec, ...]:
    return tuple(LabelSpec(en, zh, _HOTKEYS[i]) for i, (en, zh) in enumerate(pairs))


PSYCHOTHERAPIES = _labels(
    [
        ("Cognitive Behavioral Therapy", "认知行为疗法"),
        ("Solution-Focused Brief Therapy", "焦点解决短期疗法"),
        ("Psychoanalytic Therapy", "精神分析疗法"),
        ("Client-Centered Therapy", "来访者中心疗法"),
        ("Adlerian Therapy", "阿德勒疗法"),
        ("Family Therapy", "家庭治疗"),
        ("Marriage and Family Systems Therapy", "婚姻与家庭系统治疗"),
        ("Rational Emotive Behavior Therapy", "理性情绪行为疗法"),
        ("Acceptance Commitment Therapy", "接纳承诺疗法"),
        ("Gestalt Therapy", "格式塔疗法"),
        ("Reality Therapy", "现实疗法"),
        ("Postmodern Therapy", "后现代疗法"),
        ("Existential Therapy", "存在主义疗法"),
        ("Psychodynamic Therapy with Infants and Parents", "婴儿与父母心理动力学治疗"),
        ("Multicultural Integration Therapy", "多元文化整合疗法"),
        ("Feminist Therapy", "女性主义疗法"),
        ("Unknown", "未知"),
    ]
)
TOPICS = _labels(
    [
        ("Partner Relationship Issues", "伴侣关系问题"),
        ("Ongoing Depression", "持续抑郁"),
        ("Child-Parent Relationship Issues", "亲子关系问题"),
        ("Appearance Anxiety", "容貌焦虑"),
        ("Job Crisis", "职业危机"),
        ("Academic Pressure", "学业压力"),
        ("Procrastination", "拖延"),
        ("Friend Problems", "朋友问题"),
        ("School Bullying", "校园霸凌"),
        ("Substance Abuse", "物质滥用"),
        ("Sleep Problems", "睡眠问题"),
    ]
)
EMOTIONS = _labels(
    [
        ("Anxiety", "焦虑"),
        ("Depression", "抑郁"),
        ("Sadness", "悲伤"),
        ("Anger", "愤怒"),
        ("Fear", "恐惧"),
        ("Guilty", "内疚"),
        ("Shame", "羞耻"),
        ("Neutral", "中性"),
        ("Unknown", "未知"),
        ("Others", "其他"),
        ("Happiness", "快乐"),
    ]
)
STRATEGIES = _labels(
    [
        ("Question", "提问"),
        ("Restatement or Paraphrasing", "重述或释义"),
        ("Reflection of Feelings", "情感反映"),
        ("Self-disclosure", "自我表露"),
        ("Affirmation and Reassurance", "肯定与安慰"),
        ("Providing Suggestions", "提供建议"),
        ("Information", "提供信息"),
        ("Others", "其他"),
        ("Role-play", "角色扮演"),
        ("Unknown", "未知"),
    ]
)

PSY_INSIGHT_CODEBOOK: tuple[DimensionSpec, ...] = (
    DimensionSpec(
        m.PSYCHOTHERAPY,
        "Psychotherapy",
        "疗法",
        "session",
        "any",
        "label",
        1,
        False,
        PSYCHOTHERAPIES,
        "psychotherapy",
    ),
    DimensionSpec(m.TOPIC, "Topic", "主题", "session", "any", "label", 1, False, TOPICS, "topic"),
    DimensionSpec(
        m.EMOTION,
        "Emotion",
        "情绪",
        "turn",
        "client",
        "label",
        len(EMOTIONS),
        False,
        EMOTIONS,
        "emotional label",
    ),
    DimensionSpec(
        m.STRATEGY,
        "Strategy",
        "策略",
        "turn",
        "counselor",
        "label",
        2,
        False,
        STRATEGIES,
        "strategy",
    ),
    DimensionSpec(
        m.REASONING,
        "Reasoning",
        "推理",
        "turn",
        "counselor",
        "text",
        None,
        False,
        source_key="reasoning",
    ),
    DimensionSpec(
        m.OBSERVATION,
        "Observation",
        "观察",
        "turn",
        "client",
        "text",
        None,
        False,
        source_key="observation",
    ),
    DimensionSpec(
        m.GUIDE, "Guide", "指导", "session", "any", "text", None, False, source_key="guide"
    ),
    DimensionSpec(
        m.SUMMARY, "Summary", "总结", "session", "any", "text", None, False, source_key="summary"
    ),
)

# Spellings found in released files that mean a vocabulary label; readers accept them and keep
# the file's spelling verbatim so that an export reproduces the file.
LABEL_ALIASES: Mapping[str, Mapping[str, str]] = {
    m.PSYCHOTHERAPY: {"Cognitive Behaviour Therapy": "Cognitive Behavioral Therapy"},
    m.STRATEGY: {"Reflection of feelings": "Reflection of Feelings"},  # ESConv's spelling
}


def default_vocabulary() -> dict[str, frozenset[str]]:
    """Dimension key -> allowed label values, for every label dimension of the codebook."""
    return {
        dim.key: frozenset(label.value for label in dim.labels)
        for dim in PSY_INSIGHT_CODEBOOK
        if dim.kind == "label"
    }


def canonical_label(dimension: str, value: str) -> str:
    """The vocabulary spelling of a label (resolves known aliases)."""
    return LABEL_ALIASES.get(dimension, {}).get(value, value)
