"""The one place that turns errors into HTTP: an RFC 9457 ``application/problem+json`` body for every error.

``PROBLEMS`` maps each error class to a status and a problem type; the first class in it that an error is an
instance of decides. Client errors (4xx) carry the error's own message, which says what was wrong and what to
do. Server errors (5xx) never carry internals: the body names a reference that the server log repeats next to
the full traceback.
"""

from __future__ import annotations

import contextlib
import http
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from oncograph.cohorts.filters import FilterError, Problem
from oncograph.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    DatabaseError,
    NotFoundError,
    OncographError,
    PermissionDeniedError,
    SourceUnavailableError,
    ValidationError,
)
from oncograph_api.schemas import Problem as ProblemSchema

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:oncograph:problem:"
WWW_AUTHENTICATE = 'Bearer realm="oncograph"'


@dataclass(frozen=True, slots=True)
class ProblemKind:
    status: int
    slug: str
    title: str
    safe: bool = True
    """The error's message may be shown to the client (False: a generic text and a log reference)."""


class InvalidParameter(ValidationError):
    """A request parameter the core refused, with where it is (``query.cursor``)."""

    def __init__(self, loc: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = [Problem(loc, message)]


class ContentTooLarge(OncographError):
    """A request body larger than the endpoint takes (refused before it is read to the end or parsed)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the request body is larger than {limit:,} bytes",
            hint="send less at once: split an id list over several requests, or upload an id file to "
            "POST /cohorts/upload",
        )
        self.limit = limit


PROBLEMS: Sequence[tuple[type[Exception], ProblemKind]] = (
    (ContentTooLarge, ProblemKind(413, "too-large", "Content too large")),
    (FilterError, ProblemKind(422, "invalid-filter", "Invalid filter")),
    (ValidationError, ProblemKind(422, "invalid-request", "Invalid request")),
    (AuthenticationError, ProblemKind(401, "unauthenticated", "Authentication required")),
    (PermissionDeniedError, ProblemKind(403, "forbidden", "Forbidden")),
    (NotFoundError, ProblemKind(404, "not-found", "Not found")),
    (ConflictError, ProblemKind(409, "conflict", "Conflict")),
    (IntegrityError, ProblemKind(409, "conflict", "Conflict", safe=False)),
    (SourceUnavailableError, ProblemKind(503, "source-unavailable", "Source unavailable")),
    # every pooled connection busy for the pool timeout: the server is saturated, not broken
    (PoolTimeoutError, ProblemKind(503, "busy", "Server busy", safe=False)),
    (DatabaseError, ProblemKind(503, "database-unavailable", "Database unavailable", safe=False)),
    (OperationalError, ProblemKind(503, "database-unavailable", "Database unavailable", safe=False)),
    (InterfaceError, ProblemKind(503, "database-unavailable", "Database unavailable", safe=False)),
    (ConfigurationError, ProblemKind(500, "internal", "Internal server error", safe=False)),
    (OncographError, ProblemKind(500, "internal", "Internal server error", safe=False)),
    (Exception, ProblemKind(500, "internal", "Internal server error", safe=False)),
)

_GENERIC_DETAIL = {
    409: "the request conflicts with the current state; see the server log",
    503: "the database is unavailable; try again shortly",
    500: "an unexpected error occurred; see the server log",
}


def problem_kind(exc: BaseException) -> ProblemKind:
    return next(kind for cls, kind in PROBLEMS if isinstance(exc, cls))


def problem_response(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    hint: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if hint:
        body["hint"] = hint
    if errors is not None:
        body["errors"] = errors
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": WWW_AUTHENTICATE}
    if status == 503:
        headers = {**(headers or {}), "Retry-After": "1"}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def error_response(request: Request, exc: Exception) -> JSONResponse:
    """The problem response for ``exc`` by the table (for code outside the exception handlers: middleware)."""
    return _error_response(request, exc)


def _error_response(request: Request, exc: Exception) -> JSONResponse:
    kind = problem_kind(exc)
    if not kind.safe:
        reference = uuid.uuid4().hex[:12]
        log_at = log.warning if kind.status < 500 or kind.status == 503 else log.error
        log_at(
            "%s %s failed (reference %s): %s",
            request.method,
            request.url.path,
            reference,
            kind.title,
            exc_info=exc,
        )
        return problem_response(
            request,
            status=kind.status,
            slug=kind.slug,
            title=kind.title,
            detail=f"{_GENERIC_DETAIL.get(kind.status, _GENERIC_DETAIL[500])} (reference {reference})",
        )
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    hint = exc.hint if isinstance(exc, OncographError) and exc.hint else None
    errors: list[dict[str, str]] | None = None
    if isinstance(exc, FilterError | InvalidParameter):
        errors = [p.to_json() for p in exc.problems]
    elif kind.status == 422:
        errors = [{"loc": "request", "msg": message}]
    return problem_response(
        request,
        status=kind.status,
        slug=kind.slug,
        title=kind.title,
        detail=message,
        hint=hint,
        errors=errors,
    )


def _loc(parts: Sequence[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "invalid"))} for e in exc.errors()]
    first = errors[0] if errors else {"loc": "request", "msg": "invalid"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return problem_response(
        request,
        status=422,
        slug="invalid-request",
        title="Invalid request",
        detail=f"invalid request at {first['loc']}: {first['msg']}{more}",
        errors=errors,
    )


def _http_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors (no such route, method not allowed, upload too large) in the same shape; a status
    that the table maps gets the table's slug and title."""
    known = next((kind for _, kind in PROBLEMS if kind.status == exc.status_code and kind.safe), None)
    try:
        phrase = http.HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    if exc.status_code in (404, 405) and detail == phrase:
        detail = f"no endpoint {request.method} {request.url.path} (GET /docs lists the endpoints)"
    title = known.title if known else phrase
    slug = known.slug if known else phrase.lower().replace(" ", "-") or f"http-{exc.status_code}"
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return problem_response(
        request,
        status=exc.status_code,
        slug=slug,
        title=title,
        detail=detail,
        headers=headers or None,
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document gives the request's path (RFC 9110 ``Allow``). Starlette's own 405 names
    only the first route of the path (``Allow: POST`` for ``/cohorts``, which also answers GET). A path that
    matches a literal path (``/cohorts/upload``) is that resource, not an instance of ``/cohorts/{cohort_id}``."""
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    matching = [template for template in paths if compile_path(template)[0].match(request.url.path)]
    literal = [template for template in matching if "{" not in template]
    methods = {method.upper() for template in literal or matching for method in paths[template]}
    if "GET" in methods:
        methods.add("HEAD")
    return [method for method in _METHODS if method in methods]


_DESCRIPTIONS = {
    401: "No API key, or an invalid one (with a `WWW-Authenticate` header).",
    403: "Your role does not allow this.",
    404: "No such resource, or one you may not see.",
    409: "Conflicts with the current state.",
    413: "The request body is too large (the `detail` names the limit).",
    422: "The request is invalid; `errors` lists every problem with its location.",
    503: "The database is unavailable.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these statuses, each a problem document (plus 500 always)."""
    out: dict[int | str, dict[str, Any]] = {
        status: {"model": ProblemSchema, "description": _DESCRIPTIONS.get(status, "An error.")}
        for status in statuses
    }
    out[500] = {
        "model": ProblemSchema,
        "description": "An unexpected error (details only in the server log).",
    }
    return out


def problem_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    """Move the error responses of an OpenAPI document from ``application/json`` to the problem media type, and
    document the 400 of a body that cannot be read (FastAPI's answer to a JSON body that is not UTF-8) and the
    413 of one over the size limit."""
    problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "requestBody" in operation and "400" not in responses:
                responses["400"] = {
                    "description": "The body could not be read (e.g. JSON that is not UTF-8).",
                    "content": dict(problem),
                }
            if "requestBody" in operation and "413" not in responses:
                responses["413"] = {"description": _DESCRIPTIONS[413], "content": dict(problem)}
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if str(status)[:1] in ("4", "5") and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return schema


@contextlib.contextmanager
def located(prefix: str) -> Iterator[None]:
    """Prefix the locations of a FilterError raised inside (``filters...`` -> ``body.filters...``), so every
    ``errors[].loc`` of the API reads from the top of the request."""
    try:
        yield
    except FilterError as exc:
        raise FilterError([Problem(f"{prefix}.{p.loc}", p.msg) for p in exc.problems]) from exc


@contextlib.contextmanager
def parameter(loc: str) -> Iterator[None]:
    """Name the parameter (``query.cursor``) of a ValidationError raised inside (FilterErrors pass through)."""
    try:
        yield
    except FilterError:
        raise
    except ValidationError as exc:
        message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise InvalidParameter(loc, message, hint=exc.hint or None) from exc


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        return _error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_response(request, exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _http_response(request, exc)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for cls, _ in PROBLEMS:
        app.add_exception_handler(cls, on_error)
