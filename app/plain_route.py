"""`PlainRoute`: FastAPI routes whose dependencies are called directly, planned once.

On every request FastAPI solves a route's dependencies with its general solver: for each level
of the tree it reads the query, header and cookie parameters, validates each parameter through
pydantic and keeps a cache of the answers. For the workspace's save (one dependency taking the
request and two path parameters, an endpoint returning a `Response`) that walk cost more CPU
than the save's own Python work. A `PlainRoute` looks at its dependency tree once; when it is
plain, it calls the dependencies itself:

- every dependency is an `async` callable without sub-dependencies, taking only the request
  and path parameters annotated plain `str` or `int` (no `Path(...)` constraints), each one
  used once; the endpoint takes only those dependencies (named or in `dependencies=`), the
  request and such path parameters;
- nothing else: no query, header, cookie or body parameters, background tasks, response,
  security scopes, generator dependencies or concurrency limits.

Then the dependencies run in FastAPI's order, each with the request and its path parameters,
and the endpoint with their answers. A path parameter that is not a plain decimal integer
(at most 4,300 digits) where an `int` is declared, a value a typed path converter made, any
request made while dependency overrides are set, and every route that is not plain go
through FastAPI's own handler, so their answers (a 422's body, an override in a test) are
FastAPI's. FastAPI's telemetry of dependencies is not recorded for planned routes. The
dependencies still carry the route's authorisation: only who calls them changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_DIGITS = 4300  # Python's int() refuses longer decimal strings; pydantic answers 422 for them

_UNSUPPORTED = (
    "query_params",
    "header_params",
    "cookie_params",
    "body_params",
    "websocket_param_name",
    "http_connection_param_name",
    "response_param_name",
    "background_tasks_param_name",
    "security_scopes_param_name",
    "own_oauth_scopes",
    "concurrency",
)


@dataclass(frozen=True)
class _Call:
    """One callable of the plan: what it is called with, and where its answer goes."""

    call: Callable[..., Any]
    name: str | None  # the endpoint's parameter its answer fills (None: called for effect)
    request: str | None  # its parameter taking the request
    path: tuple[tuple[str, str, bool], ...]  # (parameter, path key, is int)


class PlainRoute(APIRoute):
    """An `APIRoute` whose plain dependency tree is called directly (module docstring)."""

    plain = False  # whether the last handler built calls the dependencies directly

    def get_route_handler(self) -> Handler:
        general = super().get_route_handler()
        effective = _effective(self)
        plan = _plan(effective.dependant)
        self.plain = plan is not None
        if plan is None:
            return general
        *dependencies, endpoint = plan
        provider = effective.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if provider is not None and getattr(provider, "dependency_overrides", None):
                return await general(request)
            params = request.path_params
            calls = []
            for step in plan:
                arguments = _arguments(step, request, params)
                if arguments is None:  # not a plain integer: FastAPI says why
                    return await general(request)
                calls.append(arguments)
            values = calls[-1]
            for step, arguments in zip(dependencies, calls[:-1], strict=True):
                answer = await step.call(**arguments)
                if step.name is not None:
                    values[step.name] = answer
            response = await endpoint.call(**values)
            if not isinstance(response, Response):
                raise TypeError(f"{self.path}: a PlainRoute's endpoint returns a Response")
            return response

        return handler


def _arguments(step: _Call, request: Request, params: dict[str, Any]) -> dict[str, Any] | None:
    found: dict[str, Any] = {step.request: request} if step.request else {}
    for name, key, is_int in step.path:
        value = params[key]
        if not isinstance(value, str):  # a typed path converter ({id:int}): FastAPI decides
            return None
        if is_int:
            if not (value.isascii() and value.isdigit() and len(value) <= _DIGITS):
                return None
            value = int(value)
        found[name] = value
    return found


def _effective(route: APIRoute) -> Any:
    """What FastAPI builds this handler for: the route, or for a route of an included router
    (FastAPI 0.160 and later) its effective context, whose dependency tree adds the include's
    dependencies and whose overrides provider is the app's."""
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = context_var.get() if context_var is not None else None
    if context is not None and getattr(context, "original_route", None) is route:
        return context
    return route


def _plan(dependant: Dependant) -> list[_Call] | None:
    """The dependencies, in FastAPI's order, then the endpoint; None when not plain."""
    steps: list[_Call] = []
    seen: set[int] = set()
    for sub in dependant.dependencies:
        if sub.dependencies or not _is_async(sub.call) or id(sub.call) in seen:
            return None
        seen.add(id(sub.call))
        step = _step(sub, sub.name)
        if step is None:
            return None
        steps.append(step)
    endpoint = _step(dependant, None)
    if endpoint is None or not _is_async(dependant.call):
        return None
    return [*steps, endpoint]


def _step(dependant: Dependant, name: str | None) -> _Call | None:
    if dependant.call is None or any(getattr(dependant, a, None) for a in _UNSUPPORTED):
        return None
    path = []
    for field in dependant.path_params:
        annotation = field.field_info.annotation
        if annotation not in (int, str) or field.field_info.metadata:  # constraints: FastAPI's
            return None
        path.append((field.name, field.alias, annotation is int))
    return _Call(dependant.call, name, dependant.request_param_name, tuple(path))


def _is_async(call: Any) -> bool:
    if inspect.isclass(call):
        return False
    function = call if inspect.isroutine(call) else getattr(call, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(function)
