"""Request dependencies: one database transaction per request, and the caller behind the API key.

Dependencies that do no I/O are ``async`` (FastAPI runs them on the event loop); a sync one costs a hand-off
to the request thread pool and back (``api_threads``), several per request under load.

The session's transaction commits when the route returns and before the response is sent (dependency scope
``function``), so a 201 means the cohort is stored, and rolls back when the route raises.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from oncograph.access import Scope, authenticate
from oncograph.access.suppression import AGGREGATE_ROLE, Suppression, suppression_for
from oncograph.db import get_engine, session_factory, transaction
from oncograph.db.models import ROLES, Principal
from oncograph.errors import AuthenticationError, PermissionDeniedError
from oncograph.settings import Settings
from oncograph_api.errors import InvalidParameter
from oncograph_api.schemas import UNSTORABLE_TEXT, unstorable_text

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
"""aggregate < viewer < curator < admin."""


class ApiState:
    """What the app was built with; the engine is made on first use (never at import or app creation)."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self._engine = engine
        self._sessions: sessionmaker[Session] | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = get_engine(self.settings)
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = session_factory(self.engine)
        return self._sessions


async def get_state(request: Request) -> ApiState:
    state = request.app.state.oncograph
    assert isinstance(state, ApiState)
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with transaction(state.sessions) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_connection(session: SessionDep) -> Connection:
    """The connection of the request's session (same transaction), for the core's Core-level readers."""
    return session.connection()


ConnectionDep = Annotated[Connection, Depends(get_connection)]

_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="An oncograph API key (`oncograph users key NAME` issues one).",
)
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description="The same API key as `Authorization: Bearer <key>`.",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal, the access scope its reads are computed under, and the small-count
    suppression its counts get (only aggregate-only principals have one; see
    :mod:`oncograph.access.suppression`)."""

    principal: Principal
    scope: Scope
    suppression: Suppression

    @property
    def role(self) -> str:
        return self.principal.role


def get_any_caller(
    session: SessionDep,
    state: StateDep,
    api_key: Annotated[str | None, Security(_api_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Caller:
    """The caller of a key from ``X-API-Key`` or ``Authorization: Bearer``.

    Raises:
        AuthenticationError: no key, or one that is unknown, revoked or of a disabled principal (HTTP 401).
    """
    key = api_key or (bearer.credentials if bearer is not None else None)
    if not key:
        raise AuthenticationError(
            "this endpoint needs an API key",
            hint="send it as the X-API-Key header or as Authorization: Bearer <key>",
        )
    authenticated = authenticate(session, key)
    if authenticated is None:
        raise AuthenticationError(
            "the API key is not valid (unknown, revoked, or its user is disabled)",
            hint="ask an admin for a new key (`oncograph users key NAME`)",
        )
    suppression = suppression_for(authenticated.principal.role, state.settings.min_cell_count)
    return Caller(authenticated.principal, authenticated.scope, suppression)


AnyCallerDep = Annotated[Caller, Depends(get_any_caller)]
"""Any authenticated caller, aggregate-only ones included: for endpoints that answer with (suppressed)
counts only."""


async def get_caller(caller: AnyCallerDep) -> Caller:
    """A caller with record-level access (viewer and above).

    Raises:
        PermissionDeniedError: an aggregate-only principal (HTTP 403): this endpoint returns records or exact
            counts of chosen patients.
    """
    if caller.role == AGGREGATE_ROLE:
        raise PermissionDeniedError(
            "this endpoint answers with patient records or exact counts; your key has aggregate-only access",
            hint="use GET /projects, GET /fields and POST /facets, or ask an admin for the viewer role",
        )
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
"""A caller with record-level access: the default for every endpoint."""


def _list_query_params(dependant: Any) -> set[str]:
    """Names of the query parameters of a route (and its dependencies) that take several values."""
    names = set()
    for param in dependant.query_params:
        origin = get_origin(param.field_info.annotation)
        args = get_args(param.field_info.annotation)
        if origin in (list, set, tuple) or any(get_origin(a) in (list, set, tuple) for a in args):
            names.add(param.alias)
    for sub in dependant.dependencies:
        names |= _list_query_params(sub)
    return names


async def storable_parameters(request: Request) -> None:
    """Refuse (HTTP 422) a path or query parameter that PostgreSQL could not hold as text (a NUL character),
    and a single-valued query parameter given more than once (``?transform=a&transform=b`` would silently
    mean ``b``), before any route compares it with the database. Run for every route (the app's dependency)."""
    route = request.scope.get("route")
    if route is not None and hasattr(route, "dependant"):
        names = [name for name, _ in request.query_params.multi_items()]
        repeated = {n for n in names if names.count(n) > 1} - _list_query_params(route.dependant)
        for name in sorted(repeated):
            raise InvalidParameter(f"query.{name}", "given more than once; give it once")
    for where, items in (
        ("path", request.path_params.items()),
        ("query", request.query_params.multi_items()),
    ):
        for name, value in items:
            if unstorable_text(value) is not None:
                raise InvalidParameter(f"{where}.{name}", UNSTORABLE_TEXT)


def require_role(role: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets ``role`` and higher roles through, and refuses others with HTTP 403."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    async def check(caller: CallerDep) -> Caller:
        if ROLE_RANK.get(caller.role, -1) < ROLE_RANK[role]:
            raise PermissionDeniedError(
                f"this needs the {role} role; you are a {caller.role}",
                hint="ask an admin to change your role",
            )
        return caller

    return check


CuratorDep = Annotated[Caller, Depends(require_role("curator"))]
