"""A local PDC-compatible GraphQL endpoint over :class:`RecordedPdc` (stdlib ``http.server``, HTTP/1.1).

- ``POST /graphql`` with a JSON body ``{"query", "variables"?, "operationName"?}``, or ``GET /graphql?query=``.
- The query is parsed, validated and executed by graphql-core against PDC's schema; every root field resolves
  from the recordings (:mod:`~oncograph.sources.pdc.standin.store`).
- GraphQL errors (syntax, validation, a failing resolver) come back as ``{"errors": [...]}`` (with ``data``
  when execution started) and HTTP 200, as GraphQL servers answer. A request that is not GraphQL at all (no
  query, body not JSON) gets 400 with an ``errors`` body; an unknown path 404.
- Every answer carries ``X-PDC-Standin-Release``: the recorded data's release label. The real PDC has no such
  header, which is how a client tells the two apart.

Transport faults come from the GDC mirror's :class:`~oncograph.sources.gdc.mirror.faults.FaultInjector`
(429 with Retry-After, 500/502/503, latency, truncated bodies). ``fail_fields`` makes the named root fields'
resolvers fail, so that a client sees a genuine GraphQL ``errors`` body.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, cast
from urllib.parse import parse_qs, urlsplit

import orjson
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema, graphql_sync

from oncograph.sources.gdc.mirror.faults import FaultConfig, FaultInjector
from oncograph.sources.local_server import BackgroundServer
from oncograph.sources.pdc.standin.store import RecordedPdc

logger = logging.getLogger(__name__)

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


class PdcHTTPServer(ThreadingHTTPServer):
    """The threading HTTP server; carries the schema, the release label and the fault injector."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self, address: tuple[str, int], schema: GraphQLSchema, release: str, injector: FaultInjector
    ) -> None:
        super().__init__(address, _Handler)
        self.schema = schema
        self.release = release
        self.injector = injector
        self.execute_lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oncograph-pdc-standin/1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        server = cast(PdcHTTPServer, self.server)
        try:
            url = urlsplit(self.path)
            if url.path.rstrip("/") != GRAPHQL_PATH:
                self._drain()
                self._send(404, _errors(f"no such path: {url.path}; the endpoint is {GRAPHQL_PATH}"))
                return
            request = self._request(url.query)
            if isinstance(request, str):
                self._send(400, _errors(request))
                return
            decision = server.injector.decide()
            if decision.kind == "rate_limited":
                headers = {"Retry-After": str(decision.retry_after_s)}
                self._send(429, _errors("rate limit exceeded (stand-in fault injection)"), headers)
                return
            if decision.kind == "error":
                self._send(decision.status, _errors(f"simulated server error {decision.status}"))
                return
            query, variables, operation = request
            with server.execute_lock:  # graphql-core does not promise thread safety; answers are small
                result = graphql_sync(
                    server.schema, query, variable_values=variables, operation_name=operation
                )
            formatted = result.formatted
            if formatted.get("data") is None and formatted.get("errors"):
                formatted.pop("data", None)  # the request failed before execution: the spec omits data
            body = orjson.dumps(formatted)
            cut = int(len(body) * decision.cut_fraction) if decision.kind == "truncate" else None
            self._send(200, body, truncate_at=cut)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug: answer 500 rather than dropping the connection
            logger.exception("PDC stand-in failed on %s %s", self.command, self.path)
            self._send(500, _errors(f"internal stand-in error: {type(exc).__name__}: {exc}"))

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

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        truncate_at: int | None = None,
    ) -> None:
        server = cast(PdcHTTPServer, self.server)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header(RELEASE_HEADER, server.release)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if truncate_at is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate_at is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[: max(0, min(len(body) - 1, truncate_at))])
        self.wfile.flush()
        self.close_connection = True


def _errors(message: str) -> bytes:
    return orjson.dumps({"errors": [GraphQLError(message).formatted]})


class PdcStandinServer(BackgroundServer):
    """The stand-in on a background thread; use as a context manager or call :meth:`start`/:meth:`stop`.

    ``url`` is the GraphQL endpoint, e.g. ``http://127.0.0.1:54321/graphql``.
    """

    thread_name = "pdc-standin"
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
    try:
        if on_ready is not None:
            on_ready(server.url)
        server.httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        logger.info("PDC stand-in on %s stopped", server.url)
    finally:
        server.httpd.server_close()
