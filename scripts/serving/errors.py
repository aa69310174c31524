"""OpenAI's error shape, ``{"error": {"message", "type", "param", "code"}}``, for every error the server answers.

:class:`APIError` is what route code raises; :func:`install_error_handlers` makes FastAPI answer it, its request
validation errors (malformed JSON: 400; wrong field types: 422) and plain HTTP errors (404, 405, 413) in that shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               405: "invalid_request_error", 413: "request_too_large", 422: "invalid_request_error",
               500: "server_error", 503: "server_error"}


class APIError(Exception):
    """An error answered as ``status`` with OpenAI's error body."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 error_type: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.error_type = error_type or ERROR_TYPES.get(status, "invalid_request_error")


def error_body(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """``{"error": {...}}`` as OpenAI sends it."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSONResponse with the OpenAI error body for ``status``."""
    body = error_body(message, ERROR_TYPES.get(status, "invalid_request_error"), param, code)
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "invalid JSON")
        return error_response(400, f"the request body is not valid JSON ({detail}); send a JSON object",
                              code="json_invalid")
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    seen = first.get("input")
    shown = repr(seen) if len(repr(seen)) <= 80 else repr(seen)[:77] + "..."
    message = f"{param or 'body'}: {first.get('msg', 'invalid value')} (got {shown})"
    if len(errors) > 1:
        message += f"; and {len(errors) - 1} more problem(s)"
    return error_response(422, message, param=param, code=str(first.get("type", "invalid_value")))


def install_error_handlers(app: FastAPI) -> None:
    """Answer APIError, validation errors and HTTP errors in OpenAI's shape."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        body = error_body(exc.message, exc.error_type, exc.param, exc.code)
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        code = None
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see GET /v1/models, POST /v1/chat/completions"
        elif exc.status_code == 400:  # FastAPI could not read the body (e.g. bytes that are not UTF-8)
            message, code = "the request body is not valid JSON (undecodable bytes); send a JSON object", "json_invalid"
        return error_response(exc.status_code, message, code=code, headers=getattr(exc, "headers", None))
