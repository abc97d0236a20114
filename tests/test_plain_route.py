"""`PlainRoute` answers exactly as FastAPI's own route does, and is used where it should be."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response

from app.plain_route import PlainRoute

CALLS: list[str] = []
REQUESTS: list[weakref.ref[Request]] = []


class Allow:
    """Like the app's role dependencies: a callable instance taking the request and path."""

    async def __call__(self, request: Request, slug: str, item_id: int) -> dict[str, Any]:
        CALLS.append(f"allow {slug} {item_id}")
        if slug == "deny":
            raise HTTPException(status_code=403, detail="Not yours.")
        return {"slug": slug, "item": item_id, "header": request.headers.get("x-who")}


async def audit(request: Request) -> None:
    CALLS.append("audit")


async def refuse_all() -> None:
    raise HTTPException(status_code=401, detail="Please log in.")


async def session() -> AsyncIterator[str]:
    yield "session"


@pytest.fixture(params=["included", "direct"])
def direct(request: pytest.FixtureRequest) -> bool:
    """The routes in an included router (FastAPI wraps their handlers), or on the app's own
    router (a `PlainRoute` serves its planned requests itself)."""
    return bool(request.param == "direct")


def _app(route_class: type[APIRoute], direct: bool = False, **include: Any) -> FastAPI:
    router = APIRouter(prefix="/api", route_class=route_class)

    @router.post("/things/{slug}/items/{item_id}", dependencies=[Depends(audit)])
    async def save(
        found: Annotated[dict[str, Any], Depends(Allow())], request: Request, item_id: int
    ) -> Response:
        return JSONResponse({"found": found, "again": item_id, "path": request.url.path})

    @router.get("/things/{slug}/session")
    async def with_session(slug: str, value: Annotated[str, Depends(session)]) -> Response:
        return JSONResponse({"value": value})

    @router.get("/things/{slug}/at-least/{n}")
    async def constrained(n: Annotated[int, Path(ge=1, le=1000)]) -> Response:
        return JSONResponse({"n": n})

    @router.get("/things/{slug}/converted/{n:int}")
    async def converted(slug: str, n: str) -> Response:
        return JSONResponse({"n": repr(n)})

    @router.get("/things/{slug}/stacks")
    async def stacks(request: Request, slug: str) -> Response:
        return JSONResponse({"stacks": "fastapi_function_astack" in request.scope})

    @router.post("/things/{slug}/small", max_body_size=10)
    async def small(request: Request, slug: str) -> Response:
        return JSONResponse({"length": len(await request.body())})

    @router.get("/things/{slug}/weak")
    async def weak(request: Request, slug: str) -> Response:
        REQUESTS.append(weakref.ref(request))
        return JSONResponse({})

    @router.get("/things/{slug}/plain")
    async def returns_a_dict(slug: str) -> Any:
        return {"slug": slug}

    app = FastAPI()
    if not direct:
        app.include_router(router, **include)
        app.state.router = router
        return app
    assert not include
    for route in router.routes:
        assert isinstance(route, APIRoute)
        app.router.add_api_route(
            route.path,
            route.endpoint,
            methods=list(route.methods),
            dependencies=route.dependencies,
            route_class_override=route_class,
            max_body_size=route.max_body_size,
        )
    app.state.router = app.router
    return app


async def _ask(
    app: FastAPI, method: str, path: str, content: bytes | None = None
) -> tuple[int, Any, list[str]]:
    CALLS.clear()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.request(method, path, headers={"x-who": "ann"}, content=content)
    body = answer.json() if answer.headers.get("content-type") == "application/json" else None
    return answer.status_code, body, list(CALLS)


PATHS = [
    ("POST", "/api/things/p1/items/7"),  # both dependencies, then the endpoint
    ("POST", "/api/things/p1/items/007"),  # pydantic's int: 7
    ("POST", "/api/things/deny/items/7"),  # the dependency refuses
    ("POST", "/api/things/p1/items/abc"),  # FastAPI's 422
    ("POST", "/api/things/p1/items/-3"),  # not plain digits: FastAPI decides (-3)
    ("POST", "/api/things/p1/items/%20"),  # blank
    ("POST", "/api/things/p1/items/99999999999999999999999"),  # wider than 64 bits
    ("GET", "/api/things/p1/items/7"),  # method not allowed
    ("GET", "/api/things/p1/session"),  # a generator dependency: FastAPI's handler
    ("POST", "/api/things/p1/items/" + "9" * 4301),  # too long for int(): pydantic's 422
    ("GET", "/api/things/p1/at-least/0"),  # a Path(...) constraint: FastAPI's handler
    ("GET", "/api/things/p1/at-least/5000"),
    ("GET", "/api/things/p1/at-least/7"),
    ("GET", "/api/things/p1/converted/12"),  # an int made by the path converter, a str declared
]


@pytest.mark.parametrize(("method", "path"), PATHS)
async def test_answers_as_fastapi_does(method: str, path: str, direct: bool) -> None:
    expected = await _ask(_app(APIRoute, direct), method, path)
    assert await _ask(_app(PlainRoute, direct), method, path) == expected


async def test_plain_routes_are_planned_and_others_are_not(direct: bool) -> None:
    app = _app(PlainRoute, direct)
    for method, path in PATHS:  # routes are built when first used
        await _ask(app, method, path)
    await _ask(app, "GET", "/api/things/p1/plain")
    planned = {r.path: r.plain for r in app.state.router.routes if isinstance(r, PlainRoute)}
    assert planned == {
        "/api/things/{slug}/items/{item_id}": True,
        "/api/things/{slug}/session": False,
        "/api/things/{slug}/at-least/{n}": False,
        "/api/things/{slug}/converted/{n:int}": True,
        "/api/things/{slug}/plain": True,
        "/api/things/{slug}/stacks": True,
        "/api/things/{slug}/small": True,
        "/api/things/{slug}/weak": True,
    }


async def test_the_direct_path_runs_the_dependencies_in_order(direct: bool) -> None:
    status, body, calls = await _ask(_app(PlainRoute, direct), "POST", "/api/things/p1/items/7")
    assert status == 200
    assert body == {"found": {"slug": "p1", "item": 7, "header": "ann"}, "again": 7,
                    "path": "/api/things/p1/items/7"}  # fmt: skip
    assert calls == ["audit", "allow p1 7"]


async def test_an_endpoint_not_returning_a_response_is_refused(direct: bool) -> None:
    status, _, _ = await _ask(_app(PlainRoute, direct), "GET", "/api/things/p1/plain")
    assert status == 500  # TypeError: a PlainRoute's endpoint returns a Response


async def test_dependencies_added_where_the_router_is_included_still_run() -> None:
    app = _app(PlainRoute, dependencies=[Depends(refuse_all)])
    status, body, calls = await _ask(app, "POST", "/api/things/p1/items/7")
    assert (status, body, calls) == (401, {"detail": "Please log in."}, [])


async def test_dependency_overrides_are_honoured(direct: bool) -> None:
    app = _app(PlainRoute, direct)

    async def nobody() -> None:
        CALLS.append("nobody")

    app.dependency_overrides[audit] = nobody
    status, _, calls = await _ask(app, "POST", "/api/things/p1/items/7")
    assert (status, calls) == (200, ["nobody", "allow p1 7"])


async def test_a_route_of_the_app_is_served_without_fastapis_wrapper(direct: bool) -> None:
    """On the app's router a planned request goes through Starlette's `request_response`
    (no exit stacks for `yield` dependencies, which a plain route has none of); in an
    included router FastAPI wraps the handler; FastAPI's own route always does."""
    _, body, _ = await _ask(_app(PlainRoute, direct), "GET", "/api/things/p1/stacks")
    assert body == {"stacks": not direct}
    _, body, _ = await _ask(_app(APIRoute, direct), "GET", "/api/things/p1/stacks")
    assert body == {"stacks": True}


async def test_a_body_limit_of_fastapis_holds(direct: bool) -> None:
    """A route with `max_body_size` keeps FastAPI's wrapper, which enforces it."""
    for size, expected in ((100, 413), (5, 200)):
        answers = [
            await _ask(_app(route_class, direct), "POST", "/api/things/p1/small", b"x" * size)
            for route_class in (PlainRoute, APIRoute)
        ]
        assert answers[0] == answers[1]
        assert answers[0][0] == expected
    (small,) = [r for r in _app(PlainRoute, direct).state.router.routes
                if getattr(r, "path", "") == "/api/things/{slug}/small"]  # fmt: skip
    assert isinstance(small, PlainRoute)
    assert not small.served_directly


@pytest.mark.parametrize("route_class", [PlainRoute, APIRoute])
async def test_a_request_is_freed_by_reference_counting(
    direct: bool, route_class: type[APIRoute]
) -> None:
    """Nothing of a request is left for the cyclic collector (the app tunes it for that)."""
    gc.collect()
    gc.disable()
    try:
        REQUESTS.clear()
        status, _, _ = await _ask(_app(route_class, direct), "GET", "/api/things/p1/weak")
        assert status == 200
        assert len(REQUESTS) == 1
        assert REQUESTS[0]() is None
    finally:
        gc.enable()


async def test_the_save_route_is_planned(app: FastAPI) -> None:
    from app.annotations.routes import SAVE_PATH

    (route,) = [r for r in app.router.routes if getattr(r, "path", None) == SAVE_PATH]
    assert isinstance(route, PlainRoute)
    assert route.plain
    assert route.served_directly
