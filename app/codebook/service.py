"""Codebook editing rules: leads rename and add freely; nothing may orphan a stored value.

Every change locks the project's row (codebook changes of one project run one at a time),
bumps the codebook version through `core.record_version` and writes an audit event. Services
never commit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.codebook import core
from app.codebook.core import CodebookView, DimensionView
from app.codebook.schemas import (
    FORMAT,
    CodebookDocument,
    DimensionCreate,
    DimensionDoc,
    DimensionEdit,
    LabelCreate,
    LabelDoc,
    LabelEdit,
)
from app.errors import Conflict, Invalid, NotFound
from app.i18n import N_
from app.models import (
    CodebookDimension,
    CodebookLabel,
    CodebookVersion,
    Dialogue,
    Project,
    SourceAnnotation,
    User,
)

MAX_IMPORT_BYTES = 1024 * 1024
MAX_LISTED_PROBLEMS = 50

CHANGE_REFUSED = N_("Nothing was changed: stored values depend on it.")
IMPORT_REFUSED = N_(
    "The codebook was not imported: stored values depend on what it removes or narrows. "
    "Nothing was changed."
)
DOCUMENT_INVALID = N_("The codebook was not imported: the JSON has errors. Nothing was changed.")


@dataclass(frozen=True)
class Problem:
    """One reason for a refusal: a translatable message, its %-parameters, and where."""

    message: str
    params: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""


class InUse(Conflict):
    """Refused because stored values depend on what the change would remove or narrow."""

    def __init__(self, problems: Sequence[Problem], message: str = CHANGE_REFUSED) -> None:
        super().__init__(message)
        self.problems = list(problems)


class DocumentInvalid(Invalid):
    """An import whose JSON is unreadable or breaks the codebook format."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(DOCUMENT_INVALID)
        self.problems = list(problems)


# --- Counting the values that depend on the codebook ----------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Which stored values of `dimension` to count: all, those using one of `spellings`, or
    those holding more than `more_than` labels."""

    dimension: str
    spellings: frozenset[str] | None = None
    more_than: int | None = None


def _matches(usage: Usage) -> ColumnElement[bool]:
    conditions = [SourceAnnotation.dimension == usage.dimension]
    if usage.spellings is not None:
        conditions.append(SourceAnnotation.labels.overlap(sorted(usage.spellings)))
    if usage.more_than is not None:
        conditions.append(func.cardinality(SourceAnnotation.labels) > usage.more_than)
    return and_(*conditions)


async def count_values(db: AsyncSession, project_id: int, usages: Sequence[Usage]) -> list[int]:
    """How many stored values each question matches, all counted in one pass.

    Stored values are the source annotations of the project's dialogues, spelled verbatim;
    people's annotations are to be added here (and only here) when they exist.
    """
    if not usages:
        return []
    query = (
        select(*(func.count().filter(_matches(u)) for u in usages))
        .select_from(SourceAnnotation)
        .join(Dialogue, Dialogue.id == SourceAnnotation.dialogue_id)
        .where(
            Dialogue.project_id == project_id,
            SourceAnnotation.dimension.in_(sorted({u.dimension for u in usages})),
        )
    )
    return [int(n) for n in (await db.execute(query)).one()]


# --- The rules: which changes would orphan values -------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What stored values of one dimension depend on."""

    scope: str
    speaker: str
    kind: str
    max_labels: int | None
    labels: Mapping[str, frozenset[str]]  # label value -> its spellings (value and aliases)

    @property
    def spellings(self) -> frozenset[str]:
        return frozenset().union(*self.labels.values())


def shape_of(view: DimensionView) -> Shape:
    d = view.dimension
    labels = {label.value: frozenset((label.value, *label.aliases)) for label in view.labels}
    return Shape(d.scope, d.speaker, d.kind, d.max_labels, labels)


def _doc_shape(doc: DimensionDoc | None) -> Shape | None:
    if doc is None:
        return None
    labels = {label.value: frozenset((label.value, *label.aliases)) for label in doc.labels}
    return Shape(doc.scope, doc.speaker, doc.kind, doc.max_labels, labels)


@dataclass(frozen=True)
class Check:
    usage: Usage
    message: str
    params: Mapping[str, Any]


def breaking_checks(key: str, old: Shape, new: Shape | None) -> list[Check]:
    """What must have no stored values for `old` to become `new` (None: removed)."""
    whole, at = Usage(key), {"dimension": key}
    if new is None:
        msg = N_("Dimension “%(dimension)s” cannot be removed: stored values use it (%(count)d).")
        return [Check(whole, msg, at)]
    if new.kind != old.kind:
        msg = N_("The kind of “%(dimension)s” cannot change: stored values use it (%(count)d).")
        return [Check(whole, msg, at)]
    checks = []
    if new.scope != old.scope:
        msg = N_("The scope of “%(dimension)s” cannot change: stored values use it (%(count)d).")
        checks.append(Check(whole, msg, at))
    if new.speaker not in (old.speaker, "any"):
        msg = N_(
            "The speaker of “%(dimension)s” can only widen to any speaker: "
            "stored values use it (%(count)d)."
        )
        checks.append(Check(whole, msg, at))
    if old.max_labels and new.max_labels and new.max_labels < old.max_labels:
        msg = N_(
            "The label limit of “%(dimension)s” cannot go down to %(max)d: "
            "stored values have more labels (%(count)d)."
        )
        usage = Usage(key, more_than=new.max_labels)
        checks.append(Check(usage, msg, {**at, "max": new.max_labels}))
    remaining = new.spellings
    for value, spellings in old.labels.items():
        if missing := spellings - remaining:
            msg = N_(
                "Label “%(label)s” of “%(dimension)s” cannot be removed: stored values use it "
                "(%(count)d). Merge it into another label instead."
            )
            if value in remaining:
                msg = N_(
                    "Aliases of label “%(label)s” of “%(dimension)s” cannot be removed: "
                    "stored values use them (%(count)d)."
                )
            checks.append(Check(Usage(key, spellings=missing), msg, {**at, "label": value}))
    return checks


async def refusals(db: AsyncSession, project_id: int, checks: Sequence[Check]) -> list[Problem]:
    counts = await count_values(db, project_id, [c.usage for c in checks])
    return [
        Problem(c.message, {**c.params, "count": n})
        for c, n in zip(checks, counts, strict=True)
        if n
    ]


# --- Shared steps of every change -----------------------------------------------------------------


async def _lock(db: AsyncSession, project: Project) -> CodebookView:
    """Serialize the project's codebook changes (version numbers) and load the codebook."""
    await db.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    return await core.load(db, project)


def _dimension(codebook: CodebookView, key: str) -> DimensionView:
    view = codebook.get(key)
    if view is None:
        raise NotFound("No such dimension in this codebook.")
    return view


def _label(view: DimensionView, label_id: int) -> CodebookLabel:
    label = next((label for label in view.labels if label.id == label_id), None)
    if label is None:
        raise NotFound("No such label in this dimension.")
    return label


def etag(item: CodebookDimension | CodebookLabel) -> str:
    """A digest of what an edit form shows, to notice someone else's edit in between."""
    if isinstance(item, CodebookLabel):
        fields: list[Any] = [item.name_en, item.name_zh, item.description, item.hotkey]
        fields.append(list(item.aliases))
    else:
        fields = [item.name_en, item.name_zh, item.description, item.scope, item.speaker]
        fields += [item.kind, item.max_labels, item.required]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


def _assign(item: object, values: Mapping[str, Any]) -> list[str]:
    """Set attributes; the names of those that really changed."""
    changed = [name for name, value in values.items() if getattr(item, name) != value]
    for name in changed:
        setattr(item, name, values[name])
    return changed


def _check_hotkey(view: DimensionView, hotkey: str | None, label_id: int | None = None) -> None:
    taken = next((x for x in view.labels if x.hotkey == hotkey and x.id != label_id), None)
    if hotkey is not None and taken is not None:
        raise Invalid(
            "The hotkey “%(hotkey)s” is already used by “%(label)s” in this dimension.",
            field="hotkey",
            hotkey=hotkey,
            label=taken.value,
        )


async def _versioned(
    db: AsyncSession,
    actor_id: int | None,
    project: Project,
    change: str,
    action: str,
    object_id: object,
    **details: Any,
) -> int:
    await db.flush()
    version = await core.record_version(db, project, actor_id, change)
    record(db, actor_id, action, "codebook", object_id, project_id=project.id, **details)
    return version


# --- Labels -------------------------------------------------------------------------------------


async def edit_label(
    db: AsyncSession, actor_id: int, project: Project, key: str, label_id: int, data: LabelEdit
) -> bool:
    """Rename a label or change its description or hotkey; its stored value never changes."""
    view = _dimension(await _lock(db, project), key)
    label = _label(view, label_id)
    if data.etag and data.etag != etag(label):
        raise Conflict("Someone else changed this label since you opened the page. Reload.")
    _check_hotkey(view, data.hotkey, label.id)
    changed = _assign(
        label, data.model_dump(include={"name_en", "name_zh", "description", "hotkey"})
    )
    if changed:
        change = f"label {label.value!r} of {key}: {', '.join(changed)} changed"
        await _versioned(
            db, actor_id, project, change, "codebook.label.update", key, value=label.value
        )
    return bool(changed)


async def add_label(
    db: AsyncSession, actor_id: int, project: Project, key: str, data: LabelCreate
) -> CodebookLabel:
    """Add a label to a closed vocabulary; its value must not already be a label or alias."""
    view = _dimension(await _lock(db, project), key)
    if view.dimension.kind != "label":
        raise Invalid("A free-text field has no labels.")
    if data.value in shape_of(view).spellings:
        raise Invalid(
            "“%(value)s” is already a label or an alias in this dimension.",
            field="value",
            value=data.value,
        )
    _check_hotkey(view, data.hotkey)
    label = CodebookLabel(
        dimension_id=view.dimension.id,
        position=max((x.position for x in view.labels), default=-1) + 1,
        aliases=[],
        **data.model_dump(include={"value", "name_en", "name_zh", "description", "hotkey"}),
    )
    db.add(label)
    change = f"label {data.value!r} added to {key}"
    await _versioned(db, actor_id, project, change, "codebook.label.add", key, value=data.value)
    return label


async def remove_label(
    db: AsyncSession, actor_id: int, project: Project, key: str, label_id: int
) -> None:
    """Remove a label that no stored value uses (otherwise: merge it)."""
    view = _dimension(await _lock(db, project), key)
    label = _label(view, label_id)
    old = shape_of(view)
    new = replace(old, labels={v: s for v, s in old.labels.items() if v != label.value})
    if problems := await refusals(db, project.id, breaking_checks(key, old, new)):
        raise InUse(problems)
    await db.delete(label)
    change = f"label {label.value!r} removed from {key}"
    await _versioned(db, actor_id, project, change, "codebook.label.remove", key, value=label.value)


async def merge_label(
    db: AsyncSession, actor_id: int, project: Project, key: str, label_id: int, into_id: int
) -> None:
    """Retire a label: its value and aliases become aliases of another label of the dimension.

    Stored values keep their spelling (they export unchanged) and now count as the other label.
    """
    view = _dimension(await _lock(db, project), key)
    source = next((x for x in view.labels if x.id == label_id), None)
    if source is None:
        raise Invalid("Choose a label of this dimension.", field="label")
    target = next((x for x in view.labels if x.id == into_id and x.id != label_id), None)
    if target is None:
        raise Invalid("Choose another label of this dimension to merge into.", field="into")
    moved = [s for s in (source.value, *source.aliases) if s not in target.aliases]
    target.aliases = [*target.aliases, *moved]
    await db.delete(source)
    change = f"label {source.value!r} merged into {target.value!r} in {key}"
    await _versioned(
        db,
        actor_id,
        project,
        change,
        "codebook.label.merge",
        key,
        value=source.value,
        into=target.value,
    )


# --- Dimensions -----------------------------------------------------------------------------------

_DIMENSION_FIELDS = {
    "name_en",
    "name_zh",
    "description",
    "scope",
    "speaker",
    "kind",
    "max_labels",
    "required",
}


async def add_dimension(
    db: AsyncSession, actor_id: int, project: Project, data: DimensionCreate
) -> CodebookDimension:
    """Add a label dimension or free-text field at the end of the codebook."""
    codebook = await _lock(db, project)
    if codebook.get(data.key) is not None:
        raise Invalid(
            "A dimension with the key “%(key)s” already exists.", field="key", key=data.key
        )
    dimension = CodebookDimension(
        project_id=project.id,
        key=data.key,
        position=max((d.dimension.position for d in codebook.dimensions), default=-1) + 1,
        **data.model_dump(include=_DIMENSION_FIELDS),
    )
    db.add(dimension)
    change = f"{data.kind} dimension {data.key} added"
    await _versioned(db, actor_id, project, change, "codebook.dimension.add", data.key)
    return dimension


async def edit_dimension(
    db: AsyncSession, actor_id: int, project: Project, key: str, data: DimensionEdit
) -> bool:
    """Rename freely; scope, speaker, kind and a lower label limit only when no value objects."""
    view = _dimension(await _lock(db, project), key)
    dimension = view.dimension
    if data.etag and data.etag != etag(dimension):
        raise Conflict("Someone else changed this dimension since you opened the page. Reload.")
    if data.kind == "text" and view.labels:
        raise Invalid(
            "Remove the labels of this dimension before making it a free-text field.",
            field="kind",
        )
    old = shape_of(view)
    new = replace(
        old, scope=data.scope, speaker=data.speaker, kind=data.kind, max_labels=data.max_labels
    )
    if problems := await refusals(db, project.id, breaking_checks(key, old, new)):
        raise InUse(problems)
    changed = _assign(dimension, data.model_dump(include=_DIMENSION_FIELDS))
    if changed:
        change = f"dimension {key}: {', '.join(changed)} changed"
        await _versioned(
            db, actor_id, project, change, "codebook.dimension.update", key, fields=changed
        )
    return bool(changed)


async def remove_dimension(db: AsyncSession, actor_id: int, project: Project, key: str) -> None:
    """Remove a dimension (and its labels) that no stored value uses."""
    view = _dimension(await _lock(db, project), key)
    if problems := await refusals(db, project.id, breaking_checks(key, shape_of(view), None)):
        raise InUse(problems)
    await db.delete(view.dimension)  # its labels go with it (ON DELETE CASCADE)
    change = f"dimension {key} removed"
    await _versioned(db, actor_id, project, change, "codebook.dimension.remove", key)


# --- Export and import --------------------------------------------------------------------------


def export_json(codebook: CodebookView) -> bytes:
    return (json.dumps(core.snapshot(codebook), ensure_ascii=False, indent=2) + "\n").encode()


class _RepeatedName(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _RepeatedName(name)
        result[name] = value
    return result


def _no_constant(name: str) -> None:
    raise ValueError(name)  # NaN and Infinity are not JSON


def _fail(message: str, **params: Any) -> DocumentInvalid:
    return DocumentInvalid([Problem(message, params)])


def _load_json(raw: bytes) -> object:
    if len(raw) > MAX_IMPORT_BYTES:
        raise _fail(N_("The codebook is larger than 1 MB."))
    if not raw.strip():
        raise _fail(N_("Choose a file or paste the codebook JSON."))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(N_("The codebook is not UTF-8 text.")) from None
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
    except _RepeatedName as exc:
        raise _fail(
            N_("The JSON repeats the name “%(name)s” in one object."), name=exc.name
        ) from None
    except json.JSONDecodeError as exc:
        msg = N_("This is not valid JSON (line %(line)d, column %(column)d).")
        raise _fail(msg, line=exc.lineno, column=exc.colno) from None
    except (ValueError, RecursionError):
        raise _fail(N_("This is not valid JSON.")) from None


def parse_document(raw: bytes) -> CodebookDocument:
    """Read an uploaded or pasted codebook strictly; every problem is listed with its place."""
    data = _load_json(raw)
    if not isinstance(data, dict):
        raise _fail(N_("The codebook must be a JSON object."))
    if data.get("format") != FORMAT:
        msg = N_("This is not a codebook file: “format” must be “%(expected)s”.")
        raise _fail(msg, expected=FORMAT)
    try:
        return CodebookDocument.model_validate(data)
    except ValidationError as exc:
        raise DocumentInvalid(_document_problems(exc)) from None


_PYDANTIC_MESSAGES = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("Unknown field."),
    "string_type": N_("Must be a string."),
    "int_type": N_("Must be a whole number."),
    "bool_type": N_("Must be true or false."),
    "list_type": N_("Must be a list."),
    "model_type": N_("Must be an object."),
    "dict_type": N_("Must be an object."),
}


def _document_problems(exc: ValidationError) -> list[Problem]:
    errors = exc.errors()
    marker = [e for e in errors if e["loc"][:1] == ("format_version",)]
    problems = []
    for err in (marker or errors)[:MAX_LISTED_PROBLEMS]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        params: Mapping[str, Any] = {}
        if err["type"] == "codebook":
            message, params = err["msg"], err.get("ctx", {})
        elif err["type"] == "value_error":
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            message = _PYDANTIC_MESSAGES.get(err["type"], err["msg"])
        problems.append(Problem(message, params, where.removeprefix(".")))
    return problems


async def import_codebook(
    db: AsyncSession, actor_id: int, project: Project, doc: CodebookDocument
) -> int | None:
    """Replace the codebook with `doc` unless stored values depend on what it removes or
    narrows; None when it is already identical (no new version)."""
    codebook = await _lock(db, project)
    incoming = {d.key: d for d in doc.dimensions}
    checks = [
        check
        for view in codebook.dimensions
        for check in breaking_checks(view.key, shape_of(view), _doc_shape(incoming.get(view.key)))
    ]
    if problems := await refusals(db, project.id, checks):
        raise InUse(problems[:MAX_LISTED_PROBLEMS], IMPORT_REFUSED)
    wanted = [d.model_dump() for d in doc.dimensions]
    if core.snapshot(codebook)["dimensions"] == wanted:
        return None
    for view in codebook.dimensions:
        if view.key not in incoming:
            await db.delete(view.dimension)
    for position, spec in enumerate(doc.dimensions):
        await _put_dimension(db, project, codebook.get(spec.key), spec, position)
    return await _versioned(
        db,
        actor_id,
        project,
        "imported from JSON",
        "codebook.import",
        project.slug,
        dimensions=[d.key for d in doc.dimensions],
    )


async def _put_dimension(
    db: AsyncSession, project: Project, view: DimensionView | None, spec: DimensionDoc, pos: int
) -> None:
    dimension = view.dimension if view else CodebookDimension(project_id=project.id, key=spec.key)
    _assign(dimension, {**spec.model_dump(include=_DIMENSION_FIELDS), "position": pos})
    if view is None:
        db.add(dimension)
        await db.flush()
    old = {label.value: label for label in (view.labels if view else [])}
    for label in old.values():
        if label.value not in {s.value for s in spec.labels}:
            await db.delete(label)
    for position, label_spec in enumerate(spec.labels):
        _put_label(db, dimension, old.get(label_spec.value), label_spec, position)


def _put_label(
    db: AsyncSession,
    dimension: CodebookDimension,
    label: CodebookLabel | None,
    spec: LabelDoc,
    position: int,
) -> None:
    if label is None:
        label = CodebookLabel(dimension_id=dimension.id, value=spec.value)
        db.add(label)
    values = spec.model_dump(include={"name_en", "name_zh", "description", "hotkey", "aliases"})
    _assign(label, {**values, "position": position})


# --- History --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionRow:
    version: int
    change: str
    author: str | None
    created_at: datetime


async def history(db: AsyncSession, project: Project, limit: int = 100) -> list[VersionRow]:
    """The project's latest codebook versions, newest first, with who made them."""
    query = (
        select(
            CodebookVersion.version,
            CodebookVersion.change,
            User.name,
            CodebookVersion.created_at,
        )
        .outerjoin(User, User.id == CodebookVersion.created_by_id)
        .where(CodebookVersion.project_id == project.id)
        .order_by(CodebookVersion.version.desc())
        .limit(limit)
    )
    return [VersionRow(*row) for row in (await db.execute(query)).all()]
