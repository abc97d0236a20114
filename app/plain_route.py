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

A planned route registered on the app's own router (not through an included router) is also
served without FastAPI's per-request wrapper, through Starlette's `request_response`: the
same request, the app's exception handlers, the response; not the two exit stacks FastAPI
opens for dependencies with `yield`, which a plain plan has none of (`_Direct.asgi`).
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
from starlette.routing import request_response
from starlette.types import ASGIApp, Receive, Scope, Send

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
    served_directly = False  # whether requests to it skip FastAPI's wrapper (`_Direct.asgi`)

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self._direct: _Direct | None = None
        super().__init__(path, endpoint, **kwargs)
        # This route's own plan (included routers build their own later, through FastAPI).
        direct, self._direct = self._direct, None
        # A body limit of FastAPI's (`max_body_size`) wraps FastAPI's app: such a route keeps it.
        if direct is not None and getattr(self, "max_body_size", None) is None:
            self.app = direct.asgi(self.app)
            self.served_directly = True

    def get_route_handler(self) -> Handler:
        general = super().get_route_handler()
        effective = _effective(self)
        plan = _plan(effective.dependant)
        self.plain = plan is not None
        if plan is None:
            self._direct = None
            return general
        direct = _Direct(self.path, plan, effective.dependency_overrides_provider)
        self._direct = direct

        async def handler(request: Request) -> Response:
            arguments = direct.arguments(request.path_params)
            if arguments is None:
                return await general(request)
            return await direct.run(request, arguments)

        return handler


class _Direct:
    """A plain route's plan, and the two ways it is served.

    Through FastAPI's own ASGI wrapper (`handler` above, for routes of included routers,
    whose handlers FastAPI builds and wraps itself), or, for a route registered on the app's
    own router, through Starlette's `request_response` (`asgi`): the request, the app's
    exception handlers, the response. FastAPI's wrapper adds two `AsyncExitStack`s per
    request for dependencies with `yield`, which a plain plan never has.
    """

    def __init__(self, path: str, plan: list[_Call], provider: Any) -> None:
        *self.dependencies, self.endpoint = plan
        self.plan, self.path, self.provider = plan, path, provider

    def arguments(self, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Each step's arguments but the request; None: FastAPI's own handler answers (an
        override is set, or a path value FastAPI would refuse or convert)."""
        provider = self.provider
        if provider is not None and getattr(provider, "dependency_overrides", None):
            return None
        calls = []
        for step in self.plan:
            found = _arguments(step, params)
            if found is None:
                return None
            calls.append(found)
        return calls

    async def run(self, request: Request, calls: list[dict[str, Any]]) -> Response:
        values = calls[-1]
        if self.endpoint.request:
            values[self.endpoint.request] = request
        for step, arguments in zip(self.dependencies, calls[:-1], strict=True):
            if step.request:
                arguments[step.request] = request
            answer = await step.call(**arguments)
            if step.name is not None:
                values[step.name] = answer
        response = await self.endpoint.call(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{self.path}: a PlainRoute's endpoint returns a Response")
        return response

    def asgi(self, general: ASGIApp) -> ASGIApp:
        """The route's ASGI app: `general` (FastAPI's) when `arguments` says so."""

        async def direct(request: Request) -> Response:
            # Taken out of the scope: `run` puts the request in them, and the request holds
            # the scope; left there, every request would be a cycle for the collector.
            return await self.run(request, request.scope.pop(_ARGUMENTS))

        served = request_response(direct)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            calls = self.arguments(scope["path_params"])
            if calls is None:
                await general(scope, receive, send)
                return
            scope[_ARGUMENTS] = calls
            await served(scope, receive, send)

        return app


_ARGUMENTS = "psy.plain_route.arguments"  # the planned arguments, for `_Direct.asgi`


def _arguments(step: _Call, params: dict[str, Any]) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
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
