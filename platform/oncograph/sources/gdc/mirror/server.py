"""A local, GDC-compatible HTTP server over a :class:`MirrorStore` (stdlib ``http.server``, HTTP/1.1 keep-alive).

Routes (each also under ``/v0/``), GET and POST:

- ``/status`` - the store's status object, flat (no envelope), never faulted.
- ``/cases``, ``/files``, ``/projects`` - search: ``{"data": {"hits": [...], "pagination": {...}}, "warnings": {}}``.
- ``/cases/{id}``, ``/files/{id}``, ``/projects/{id}`` - one entity: ``{"data": {...}, "warnings": {}}``.
- ``/data/{file_id}`` - a file's bytes, when the server was given data files; see
  :mod:`~oncograph.sources.gdc.mirror.data_files` (stand-in ids, ranges, 403 for controlled files).

Parameters come from the query string and, for POST, from a JSON object body (``filters`` as an object or a
JSON-encoded string) or a form-encoded body; body values win. Errors are JSON ``{"message": ...}`` with 400
(bad parameters), 404 (unknown id or path), 405, 411, or 500. See :mod:`~oncograph.sources.gdc.mirror.faults`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from oncograph.sources.faults import FaultConfig, FaultInjector
from oncograph.sources.gdc.mirror.data_files import DataFile, DataFiles, answer_data
from oncograph.sources.gdc.mirror.search import RequestError, entity_body, parse_search_params, search_body
from oncograph.sources.gdc.mirror.store import ENDPOINTS, Endpoint, MirrorStore
from oncograph.sources.local_server import BackgroundServer, JsonHandler, LocalHTTPServer

_LIST_PARAMS = frozenset({"fields", "expand"})
_MAX_BODY = 64 * 1024 * 1024


class MirrorHTTPServer(LocalHTTPServer):
    """The threading HTTP server; carries the store and the fault injector for its handlers."""

    def __init__(
        self,
        address: tuple[str, int],
        store: MirrorStore,
        injector: FaultInjector,
        data_files: Mapping[str, DataFile] | None = None,
    ) -> None:
        super().__init__(address, _Handler, injector)
        self.store = store
        self.data_files: Mapping[str, DataFile] = data_files or {}


class _Handler(JsonHandler):
    server_version = "oncograph-gdc-mirror/1"
    label = "GDC mirror"

    def error_body(self, message: str) -> bytes:
        return orjson.dumps({"message": message})

    def dispatch(self) -> None:
        server = cast(MirrorHTTPServer, self.server)
        store = server.store
        try:
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.split("/") if p]
            if parts[:1] == ["v0"]:
                parts = parts[1:]
            params = self._params(url.query)
            if parts == ["status"]:
                self.send_json(200, orjson.dumps(store.status))
                return
            if len(parts) == 2 and parts[0] == "data" and self.command == "GET":
                decision = self.injector.decide()
                if not self.send_fault(decision):
                    answer_data(self, parts[1], files=server.data_files, store=store, decision=decision)
                return
            if not parts or parts[0] not in ENDPOINTS or len(parts) > 2:
                raise RequestError(f"no such endpoint: {url.path}", status=404)
            endpoint: Endpoint = parts[0]
            decision = self.injector.decide()
            if self.send_fault(decision):
                return
            index = store.index(endpoint)
            if len(parts) == 2:
                body = entity_body(index, parts[1], params)
            else:
                body = search_body(index, parse_search_params(endpoint, params))
            self.send_answer(body, decision)
        except RequestError as exc:
            if exc.status in (411, 413):  # the body was not read: the connection cannot be reused
                self.close_connection = True
            self.send_json(exc.status, self.error_body(str(exc)))

    def _params(self, query: str) -> dict[str, Any]:
        params: dict[str, Any] = {}
        _merge_pairs(params, parse_qsl(query, keep_blank_values=True))
        if self.command != "POST":
            return params
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise RequestError("chunked request bodies are not supported; send Content-Length", status=411)
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise RequestError(f"request body too large ({length} bytes)", status=413)
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw.strip():
            return params
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded":
            _merge_pairs(params, parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            return params
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RequestError(f"request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RequestError("request body must be a JSON object of search parameters")
        params.update(body)
        return params


def _merge_pairs(params: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    for key, value in pairs:
        if key in _LIST_PARAMS and params.get(key):
            params[key] = f"{params[key]},{value}"
        else:
            params[key] = value


class MirrorServer(BackgroundServer):
    """A mirror on a background thread; use as a context manager or call :meth:`start`/:meth:`stop`."""

    thread_name = "gdc-mirror"
    label = "GDC mirror"

    def __init__(
        self,
        store: MirrorStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | FaultInjector | None = None,
        data_files: DataFiles | Path | None = None,
    ) -> None:
        """Bind the server (``port=0`` picks a free port); ``faults`` is a config or a ready injector;
        ``data_files`` (a folder, or files already read) are served on ``/data/{stand-in id}``."""
        self.injector = faults if isinstance(faults, FaultInjector) else FaultInjector(faults)
        files = DataFiles.from_directory(data_files) if isinstance(data_files, Path) else data_files
        self.httpd = MirrorHTTPServer((host, port), store, self.injector, files)


@contextlib.contextmanager
def serve_mirror(
    store: MirrorStore,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: FaultConfig | FaultInjector | None = None,
    data_files: DataFiles | Path | None = None,
) -> Iterator[str]:
    """Run a mirror on a background thread for the duration of the ``with`` block and yield its base URL.

    Pass a :class:`FaultInjector` (rather than a :class:`FaultConfig`) to read its counters afterwards.

    Example:
        >>> with serve_mirror(MirrorStore.from_directory(path)) as url:  # doctest: +SKIP
        ...     with GdcClient(base_url=url) as client:
        ...         client.status()
    """
    with MirrorServer(store, host=host, port=port, faults=faults, data_files=data_files) as server:
        yield server.url


def run_mirror(
    store: MirrorStore,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    faults: FaultConfig | FaultInjector | None = None,
    data_files: DataFiles | Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C returns normally); ``on_ready`` gets the URL."""
    MirrorServer(store, host=host, port=port, faults=faults, data_files=data_files).run_foreground(on_ready)
