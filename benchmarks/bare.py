"""The baseline: a bare Starlette app answering static JSON, as in the performance notes."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_BODY = {"code": 200, "message": "success", "data": {"taskId": "task_12345678", "state": "processing"}}


async def _static(request: Request) -> Response:
    return JSONResponse(_BODY)


async def _post(request: Request) -> Response:
    await request.body()
    return JSONResponse(_BODY)


app = Starlette(routes=[Route("/status", _static, methods=["GET"]), Route("/submit", _post, methods=["POST"])])
