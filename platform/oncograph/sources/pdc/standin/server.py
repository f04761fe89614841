"""A local PDC-compatible GraphQL endpoint over :class:`RecordedPdc` (stdlib ``http.server``, HTTP/1.1).

- ``POST /graphql`` with a JSON body ``{"query", "variables"?, "operationName"?}``, or ``GET /graphql?query=``.
- The query is parsed, validated and executed by graphql-core against PDC's schema; every root field resolves
  from the recordings (:mod:`~oncograph.sources.pdc.standin.store`).
- GraphQL errors (syntax, validation, a failing resolver) come back as ``{"errors": [...]}`` (with ``data``
  when execution started) and HTTP 200, as GraphQL servers answer. A request that is not GraphQL at all (no
  query, body not JSON) gets 400 with an ``errors`` body; an unknown path 404.
- Every answer carries ``X-PDC-Standin-Release``: the recorded data's release label. The real PDC has no such
  header, which is how a client tells the two apart.

Transport faults come from the stand-ins' shared :class:`~oncograph.sources.faults.FaultInjector`
(429 with Retry-After, 500/502/503, latency, truncated bodies). ``fail_fields`` makes the named root fields'
resolvers fail, so that a client sees a genuine GraphQL ``errors`` body.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, cast
from urllib.parse import parse_qs, urlsplit

import orjson
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema, graphql_sync

from oncograph.sources.faults import FaultConfig, FaultInjector
from oncograph.sources.local_server import BackgroundServer, JsonHandler, LocalHTTPServer
from oncograph.sources.pdc.standin.store import RecordedPdc

RELEASE_HEADER: Final = "X-PDC-Standin-Release"
GRAPHQL_PATH: Final = "/graphql"
_MAX_BODY = 8 * 1024 * 1024


class StandinFault(Exception):
    """A resolver failure injected on purpose (``fail_fields``)."""


def executable_schema(store: RecordedPdc, fail_fields: frozenset[str] = frozenset()) -> GraphQLSchema:
    """A new copy of the store's schema with every root field resolving from the recordings."""
    schema = store.new_schema()
    query_type = schema.query_type
    assert query_type is not None
    for name, field in query_type.fields.items():
        field.resolve = _root_resolver(store, name, name in fail_fields)
    return schema


def _root_resolver(store: RecordedPdc, name: str, fail: bool) -> Callable[..., Any]:
    def resolve(_root: Any, _info: GraphQLResolveInfo, **args: Any) -> Any:
        if fail:
            raise StandinFault(f"simulated resolver failure in {name} (stand-in fault injection)")
        return store.answer(name, args)

    return resolve


class PdcHTTPServer(LocalHTTPServer):
    """The threading HTTP server; carries the schema, the release label and the fault injector."""

    def __init__(
        self, address: tuple[str, int], schema: GraphQLSchema, release: str, injector: FaultInjector
    ) -> None:
        super().__init__(address, _Handler, injector)
        self.schema = schema
        self.release = release
        self.execute_lock = threading.Lock()


class _Handler(JsonHandler):
    server_version = "oncograph-pdc-standin/1"
    label = "PDC stand-in"

    def error_body(self, message: str) -> bytes:
        return orjson.dumps({"errors": [GraphQLError(message).formatted]})

    def extra_headers(self) -> dict[str, str]:
        return {RELEASE_HEADER: cast(PdcHTTPServer, self.server).release}

    def dispatch(self) -> None:
        server = cast(PdcHTTPServer, self.server)
        url = urlsplit(self.path)
        if url.path.rstrip("/") != GRAPHQL_PATH:
            self._drain()
            self.send_json(404, self.error_body(f"no such path: {url.path}; the endpoint is {GRAPHQL_PATH}"))
            return
        request = self._request(url.query)
        if isinstance(request, str):
            self.send_json(400, self.error_body(request))
            return
        decision = self.injector.decide()
        if self.send_fault(decision):
            return
        query, variables, operation = request
        with server.execute_lock:  # graphql-core does not promise thread safety; answers are small
            result = graphql_sync(server.schema, query, variable_values=variables, operation_name=operation)
        formatted = result.formatted
        if formatted.get("data") is None and formatted.get("errors"):
            formatted.pop("data", None)  # the request failed before execution: the spec omits data
        self.send_answer(orjson.dumps(formatted), decision)

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.command == "POST" and 0 < length <= _MAX_BODY:
            self.rfile.read(length)

    def _request(self, query_string: str) -> tuple[str, dict[str, Any] | None, str | None] | str:
        """(query, variables, operationName), or the reason the request is not a GraphQL request."""
        if self.command == "GET":
            params = {k: v[0] for k, v in parse_qs(query_string).items()}
            body: Any = dict(params)
            if "variables" in params:
                try:
                    body["variables"] = orjson.loads(params["variables"])
                except orjson.JSONDecodeError:
                    return "variables is not valid JSON"
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > _MAX_BODY:
                self.close_connection = True
                return "send a JSON body {query, variables} with Content-Length"
            try:
                body = orjson.loads(self.rfile.read(length))
            except orjson.JSONDecodeError as exc:
                return f"request body is not valid JSON: {exc}"
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return "a GraphQL request needs a 'query' string"
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return "'variables' must be an object"
        operation = body.get("operationName")
        return body["query"], variables, operation if isinstance(operation, str) else None


class PdcStandinServer(BackgroundServer):
    """The stand-in on a background thread; use as a context manager or call :meth:`start`/:meth:`stop`.

    ``url`` is the GraphQL endpoint, e.g. ``http://127.0.0.1:54321/graphql``.
    """

    thread_name = "pdc-standin"
    label = "PDC stand-in"
    path = GRAPHQL_PATH

    def __init__(
        self,
        store: RecordedPdc,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | FaultInjector | None = None,
        fail_fields: frozenset[str] = frozenset(),
    ) -> None:
        """Bind the server (``port=0`` picks a free port).

        Args:
            store: the recordings and schema to serve.
            host: interface to listen on.
            port: port to listen on; 0 picks a free one.
            faults: transport faults (a config, or a ready injector whose counters you want to read).
            fail_fields: root fields whose resolvers fail with a GraphQL error.
        """
        query_type = store.schema.query_type
        assert query_type is not None
        unknown = sorted(fail_fields - set(query_type.fields))
        if unknown:
            raise ValueError(f"fail_fields names no root field of PDC's schema: {', '.join(unknown)}")
        self.store = store
        self.injector = faults if isinstance(faults, FaultInjector) else FaultInjector(faults)
        schema = executable_schema(store, frozenset(fail_fields))
        self.httpd = PdcHTTPServer((host, port), schema, store.release, self.injector)


@contextlib.contextmanager
def serve_pdc(
    store: RecordedPdc,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: FaultConfig | FaultInjector | None = None,
    fail_fields: frozenset[str] = frozenset(),
) -> Iterator[str]:
    """Run the stand-in on a background thread for the ``with`` block and yield its GraphQL URL."""
    with PdcStandinServer(store, host=host, port=port, faults=faults, fail_fields=fail_fields) as server:
        yield server.url


def run_pdc_standin(
    store: RecordedPdc,
    *,
    host: str = "127.0.0.1",
    port: int = 8766,
    faults: FaultConfig | FaultInjector | None = None,
    fail_fields: frozenset[str] = frozenset(),
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C returns normally); ``on_ready`` gets the URL."""
    server = PdcStandinServer(store, host=host, port=port, faults=faults, fail_fields=fail_fields)
    server.run_foreground(on_ready)
