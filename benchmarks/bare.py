"""The baseline: a bare Starlette app answering static bytes, without reading the request body.

``GET /work/N`` answers the same bytes after N microseconds of busy work: the calibration that
shows what a handler's own work costs in throughput on this machine, whatever the work is.
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_BODY = b'{"code":200,"message":"success","data":{"taskId":"task_12345678","state":"processing"}}'


async def _static(request: Request) -> Response:
    return Response(_BODY, media_type="application/json")


async def _work(request: Request) -> Response:
    end = time.perf_counter() + request.path_params["us"] / 1e6
    while time.perf_counter() < end:
        pass
    return Response(_BODY, media_type="application/json")


app = Starlette(
    routes=[
        Route("/status", _static, methods=["GET"]),
        Route("/submit", _static, methods=["POST"]),
        Route("/work/{us:int}", _work, methods=["GET"]),
    ]
)
