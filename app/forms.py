"""Reading an HTML form into a Pydantic schema, with per-field messages for re-rendering."""

from __future__ import annotations

import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

M = TypeVar("M", bound=BaseModel)
FormResult = tuple[M | None, dict[str, Any], dict[str, str]]


def _is_list(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    return field is not None and typing.get_origin(field.annotation) is list


async def read_form(request: Request, model: type[M]) -> FormResult[M]:
    """The parsed model (or None), the raw values to refill the form, and field errors."""
    form = await request.form()
    raw: dict[str, Any] = {}
    for name in model.model_fields:
        if _is_list(model, name):
            raw[name] = [v for v in form.getlist(name) if isinstance(v, str)]
        elif name in form:
            value = form.get(name)
            raw[name] = value if isinstance(value, str) else ""
        elif model.model_fields[name].annotation is bool:
            raw[name] = False  # an unchecked checkbox is absent from the form
    try:
        return model.model_validate(raw), raw, {}
    except ValidationError as exc:
        return None, raw, field_errors(exc)


def field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "__all__"
        errors.setdefault(name, str(err["msg"]).removeprefix("Value error, "))
    return errors


def safe_next(target: str | None, default: str = "/projects") -> str:
    """Only local paths are followed after login or a language switch (no open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default
