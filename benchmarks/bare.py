"""The baseline: a bare Starlette app answering static bytes, without reading the request body."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_BODY = b'{"code":200,"message":"success","data":{"taskId":"task_12345678","state":"processing"}}'


async def _static(request: Request) -> Response:
    return Response(_BODY, media_type="application/json")


app = Starlette(routes=[Route("/status", _static, methods=["GET"]), Route("/submit", _static, methods=["POST"])])
