"""One place where errors become Heroku's `{"id", "message"}` bodies."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiku.errors import KikuError

log = logging.getLogger("kiku.api")

_HTTP_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    415: "unsupported_media_type",
    422: "invalid_params",
}


def kiku_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KikuError)
    headers = {"WWW-Authenticate": 'Basic realm="kiku"'} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request failed."
    if exc.status_code == 404:
        message = "The requested API endpoint was not found. Are you using the right HTTP verb?"
    body = {"id": _HTTP_IDS.get(exc.status_code, "bad_request"), "message": message}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if part != "body")
        problems.append(f"{where}: {error['msg']}" if where else error["msg"])
    message = "Invalid params: " + "; ".join(problems) if problems else "Invalid params."
    return JSONResponse({"id": "invalid_params", "message": message}, status_code=422)


def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.exception(
        "unexpected error in %s %s (request %s)", request.method, request.url.path, request_id
    )
    body = {
        "id": "internal_server_error",
        "message": f"Internal server error; report request id {request_id} to your operator.",
    }
    return JSONResponse(body, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(KikuError, kiku_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
