"""The fast dispatch layer picks the route, and the path parameters, that Starlette's router picks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.routing import BaseRoute, Match, Route
from veomock.mocks import Clock, build_app, create_state
from veomock.mocks.app import RouteIndex

METHODS = ("GET", "HEAD", "POST", "DELETE")


def _router_choice(routes: list[BaseRoute], method: str, path: str) -> tuple[BaseRoute, dict[str, Any]] | None:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "path_params": {}}
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.FULL:
            return route, child.get("path_params", {})
    return None


def _paths(routes: list[BaseRoute]) -> list[str]:
    out = ["/", "/nowhere", "/_veomock/jobs/j-1", "/_veomock/health", "/v1/", "/v1//x"]
    for route in routes:
        if isinstance(route, Route) and "{" in route.path and "rest" not in route.path:
            filled = route.path
            for name in route.param_convertors:
                filled = filled.replace("{" + name + "}", f"{name}-7.a_b")
            out += [filled, filled + "/more", filled.replace("-7.a_b", ""), filled.upper(), filled + ".mp4"]
    return out


@pytest.fixture(scope="module")
def routes() -> list[BaseRoute]:
    return list(build_app(create_state(clock=Clock(speed=0))).routes)


def test_every_parameterised_contract_route_is_indexed(routes: list[BaseRoute]) -> None:
    layer = RouteIndex(routes)
    indexed = {route.path for filed in layer.prefixed.values() for _, route in filed}
    params = {r.path for r in routes if isinstance(r, Route) and "{" in r.path and not r.path.startswith("/{")}
    assert indexed == params and len(params) >= 7  # parameterised status and media paths


@pytest.mark.parametrize("method", METHODS)
def test_the_fast_layer_agrees_with_the_router(routes: list[BaseRoute], method: str) -> None:
    layer = RouteIndex(routes)
    for path in _paths(routes):
        expected = _router_choice(routes, method, path)
        static = layer.table.get((method, path))
        fast = (static, {}) if static else (None if path.startswith(layer.mounts) else layer._find(method, path))
        if fast is None:  # left to the router: only what the layer does not serve
            assert expected is None or not isinstance(expected[0], Route) or expected[0].path.startswith("/{")
        else:
            assert fast == expected, (method, path)


def test_an_earlier_route_under_another_prefix_wins_as_in_the_router() -> None:
    async def endpoint(request: Any) -> Any:
        raise AssertionError("not called")

    first, second = Route("/a/{x}/c", endpoint, methods=["GET"]), Route("/a/b/{y}", endpoint, methods=["GET"])
    for order in ([first, second], [second, first]):
        layer = RouteIndex(order)
        found = layer._find("GET", "/a/b/c")
        assert found is not None and found[0] is order[0]
        assert found == _router_choice(list(order), "GET", "/a/b/c")


def test_a_repeated_path_is_matched_from_a_bounded_cache(routes: list[BaseRoute]) -> None:
    index = RouteIndex(routes)
    param = next(r for r in routes if isinstance(r, Route) and "{" in r.path and not r.path.startswith("/{"))
    method = sorted(param.methods or ())[0]
    paths = [re.sub(r"\{[^}]+\}", f"job-{i}", param.path) for i in range(index.RECENT + 50)]
    for path in paths + paths[-10:]:
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        found = index.find(scope)
        assert found is not None and found == index._find(method, path)
        found[1]["changed"] = "by the handler"  # each request gets its own parameters
        again = index.find(scope)
        assert again is not None and "changed" not in again[1]
    assert len(index._recent) == index.RECENT
