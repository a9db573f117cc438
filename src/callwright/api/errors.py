"""Error bodies in the reference's shapes (§1.3, §1.4).

The reference uses two envelopes: style A (``{"status":"error","message",...,"errors":[str]}``)
on send-call and call control, style B (``{"data":null,"errors":[{"error","message"}]}``)
elsewhere. Real clients read either, so every error body carries ``status`` and
``message`` too; style-A routes keep ``errors`` as the list of strings their clients parse.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from callwright.api.schemas import ErrorA, ErrorB

STYLE_A = {"x-envelope": "A"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def _no_constants(name: str) -> Any:
    raise ApiError(400, "INVALID_REQUEST", f"Malformed JSON body: {name} is not a JSON number.")


def strict_json(raw: bytes) -> Any:
    """The body as JSON, refusing NaN and Infinity (Python's parser takes them; no database
    or client does)."""
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except ValueError:
        raise ApiError(400, "INVALID_REQUEST", "Malformed JSON body.") from None


def not_found(what: str = "Call") -> ApiError:
    code = "CALL_NOT_FOUND" if what == "Call" else "NOT_FOUND"
    return ApiError(404, code, f"{what} not found.")


def _is_style_a(request: Request) -> bool:
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    return extra.get("x-envelope") == "A"


def error_body(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[str] | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    if _is_style_a(request) and status not in (401,) and status < 500:
        return {"status": "error", "message": message, "errors": details or [message], "data": None}
    item: dict[str, Any] = {"error": code, "message": message}
    if field:
        item["field"] = field
    errors = [item] + [{"error": code, "message": d} for d in (details or [])[1:]]
    return {"data": None, "errors": errors, "status": "error", "message": message}


def _loc_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(
            error_body(request, 400, "INVALID_REQUEST", "Malformed JSON body."), status_code=400
        )
    details = []
    first_field = None
    for err in errors:
        loc = tuple(err.get("loc", ()))
        name = _loc_name(loc)
        if err.get("type") == "missing":
            details.append(f"Missing required parameter: {name}.")
        elif name == "body" and err.get("type") == "model_attributes_type":
            details.append("body: must be a JSON object.")
        else:
            details.append(f"{name}: {_clean(str(err.get('msg', 'invalid')))}")
        first_field = first_field or name
    message = "Invalid parameters: " + "; ".join(details)
    body = error_body(request, 400, "VALIDATION_ERROR", message, details, field=first_field)
    return JSONResponse(body, status_code=400)


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    body = error_body(request, exc.status, exc.code, exc.message, field=exc.field)
    return JSONResponse(body, status_code=exc.status)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    codes = {
        401: "AUTH_FAILURE",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        413: "PAYLOAD_TOO_LARGE",
    }
    message = exc.detail if isinstance(exc.detail, str) else "Request failed."
    body = error_body(
        request, exc.status_code, codes.get(exc.status_code, "INVALID_REQUEST"), message
    )
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _is_unstorable_text(exc: DBAPIError) -> bool:
    """PostgreSQL refuses NUL characters in text (SQLite stores them); such input is
    the client's fault, not a server error."""
    text = str(exc.orig)
    return "0x00" in text or "invalid byte sequence" in text or "\\u0000" in text


async def _database(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and _is_unstorable_text(exc):
        message = "Text may not contain NUL (\\u0000) characters."
        return JSONResponse(error_body(request, 400, "INVALID_REQUEST", message), status_code=400)
    return await _unhandled(request, exc)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    import logging

    logging.getLogger("callwright.api").exception("unhandled error")
    body = error_body(request, 500, "INTERNAL_SERVER_ERROR", "Internal server error.")
    return JSONResponse(body, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(Exception, _unhandled)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(doc: dict[str, Any]) -> None:
    """Make the OpenAPI document tell the truth about the errors above.

    FastAPI documents a 422 that this app never sends (validation failures are 400s) and
    knows nothing of the 401 from the key check, the 404 for ids a key cannot see, or the
    413 of the body limit. Every operation gets those here, in the envelope it really
    uses, so routers only declare what is particular to them (a 409, a 429, ...).
    """
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _, defs = models_json_schema(
        [(ErrorA, "serialization"), (ErrorB, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    for name, schema in defs.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            own = ErrorA if operation.get("x-envelope") == "A" else ErrorB
            if responses.pop("422", None) is not None:
                _declare(responses, 400, own, "Invalid parameters or malformed JSON.")
            if operation.get("security"):
                _declare(responses, 401, ErrorB, "Missing, unknown or revoked API key.")
                if "{" in path:
                    _declare(responses, 404, own, "No such resource in the key's org.")
            if method not in ("get", "head", "options"):
                _declare(responses, 413, ErrorB, "Request body over the size limit.")


def _declare(responses: dict[str, Any], status: int, model: type, description: str) -> None:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    responses.setdefault(
        str(status),
        {"description": description, "content": {"application/json": {"schema": ref}}},
    )
