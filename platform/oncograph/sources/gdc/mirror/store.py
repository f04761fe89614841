"""The mirror's documents: one :class:`EndpointIndex` per endpoint plus the ``/status`` value set.

Everything expensive is computed lazily and cached, because the mirror must serve tens of thousands of
documents per second: the values of a field path across all documents (a *column*, used by filters and sort),
the ordered result of a (filters, sort) query, and the serialized bytes of each (document, projection).
Documents are treated as immutable once stored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from oncograph.errors import InputFormatError
from oncograph.sources.gdc.mirror.filters import Column, Node, column_entry, evaluate
from oncograph.sources.gdc.mirror.projection import Projection

Endpoint = Literal["cases", "files", "projects"]
ENDPOINTS: Final[tuple[Endpoint, ...]] = ("cases", "files", "projects")
ID_FIELDS: Final[Mapping[Endpoint, str]] = {"cases": "case_id", "files": "file_id", "projects": "project_id"}

RECORDED_STATUS: Final[Mapping[str, Any]] = {
    "commit": "8f7c2a51ab0084b216ad1b62a3fae8b945439c53",
    "data_release": "Data Release 45.0 - December 04, 2025",
    "status": "OK",
    "tag": "8.5.0",
}
"""The real ``/status`` value set recorded in 2025/26 (``data/gdc/gdc_api_json/gdc_status_examples.json``)."""

_QUERY_CACHE_SIZE = 512
_PROJECTION_CACHES = 32


def document_id(endpoint: Endpoint, document: Mapping[str, Any]) -> str | None:
    """The id a document is served under: ``case_id``/``file_id``/``project_id``, else ``id``; None if neither."""
    for key in (ID_FIELDS[endpoint], "id"):
        value = document.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ``field:asc|desc`` sort term (path without the endpoint prefix)."""

    path: tuple[str, ...]
    descending: bool = False


class EndpointIndex:
    """The documents of one endpoint in store order, with lazily built lookup and serialization caches."""

    def __init__(self, endpoint: Endpoint, documents: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self.endpoint: Endpoint = endpoint
        self.ids: list[str] = []
        self.documents: list[dict[str, Any]] = []
        self._position: dict[str, int] = {}
        for entity_id, doc in documents:
            if entity_id in self._position:
                raise InputFormatError(f"duplicate {endpoint} id {entity_id!r}")
            self._position[entity_id] = len(self.ids)
            self.ids.append(entity_id)
            self.documents.append(doc)
        self._lock = threading.Lock()
        self._columns: dict[tuple[str, ...], Column] = {}
        self._queries: OrderedDict[tuple[bytes, tuple[SortKey, ...]], list[int]] = OrderedDict()
        self._encoded: OrderedDict[Projection, dict[tuple[int, bool], bytes]] = OrderedDict()
        self._by_id: list[int] | None = None
        self._orders: dict[tuple[SortKey, ...], tuple[list[int], list[int]]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, entity_id: str) -> int | None:
        """Index of the document with ``entity_id``, or None."""
        return self._position.get(entity_id)

    def column(self, path: tuple[str, ...]) -> Column:
        """Normalised non-null values at ``path`` for every document (computed once per path)."""
        col = self._columns.get(path)
        if col is None:
            col = [column_entry(doc, path) for doc in self.documents]
            self._columns[path] = col
        return col

    def select(self, node: Node | None, filters_key: bytes, sort: tuple[SortKey, ...]) -> list[int]:
        """Indices of the matching documents in response order (cached per canonical filters + sort)."""
        key = (filters_key, sort)
        with self._lock:
            cached = self._queries.get(key)
            if cached is not None:
                self._queries.move_to_end(key)
                return cached
        matched = None if node is None else evaluate(node, self.column, len(self))
        if sort:
            order, rank = self._sorted(sort)
            result = list(order) if matched is None else sorted(matched, key=rank.__getitem__)
        else:
            result = list(range(len(self))) if matched is None else sorted(matched)
        with self._lock:
            self._queries[key] = result
            if len(self._queries) > _QUERY_CACHE_SIZE:
                self._queries.popitem(last=False)
        return result

    def _sorted(self, sort: tuple[SortKey, ...]) -> tuple[list[int], list[int]]:
        # Ties are broken by id so that paging is deterministic; missing values sort last in both directions;
        # multi-valued fields sort by their smallest (asc) or largest (desc) value, as Elasticsearch does.
        # Returns the order and each document's rank in it (cached per sort).
        cached = self._orders.get(sort)
        if cached is not None:
            return cached
        if self._by_id is None:
            self._by_id = sorted(range(len(self)), key=self.ids.__getitem__)
        order = list(self._by_id)
        for term in reversed(sort):
            col = self.column(term.path)
            keys: list[tuple[int, int, Any]] = []
            for vals in col:
                ranked = [
                    (0, v) if isinstance(v, float) else (1, v) for v in vals if isinstance(v, float | str)
                ]
                if not ranked:
                    keys.append((0 if term.descending else 1, 0, 0.0))
                else:
                    rank, value = max(ranked) if term.descending else min(ranked)
                    keys.append((1 if term.descending else 0, rank, value))
            order.sort(key=keys.__getitem__, reverse=term.descending)
        positions = [0] * len(order)
        for position, index in enumerate(order):
            positions[index] = position
        self._orders[sort] = (order, positions)
        return order, positions

    def encoded(self, index: int, projection: Projection, *, with_id: bool = True) -> bytes:
        """The serialized projection of document ``index``; search hits get ``id`` first (cached)."""
        with self._lock:
            cache = self._encoded.get(projection)
            if cache is None:
                cache = {}
                self._encoded[projection] = cache
                if len(self._encoded) > _PROJECTION_CACHES:
                    self._encoded.popitem(last=False)
            else:
                self._encoded.move_to_end(projection)
        key = (index, with_id)
        body = cache.get(key)
        if body is None:
            projected = projection.apply(self.documents[index])
            if with_id:
                projected = {"id": self.ids[index], **projected}
                projected["id"] = self.ids[index]
            body = orjson.dumps(projected)
            cache[key] = body
        return body


class MirrorStore:
    """Documents per endpoint (``cases``, ``files``, ``projects``) keyed by id, and a ``/status`` dict."""

    def __init__(
        self,
        documents: Mapping[Endpoint, Iterable[tuple[str, dict[str, Any]]]],
        status: Mapping[str, Any] | None = None,
    ) -> None:
        """Create a store from ``(id, document)`` pairs per endpoint; ``status`` defaults to the recorded DR45."""
        self.status: dict[str, Any] = dict(RECORDED_STATUS if status is None else status)
        self._indexes: dict[Endpoint, EndpointIndex] = {
            ep: EndpointIndex(ep, documents.get(ep, ())) for ep in ENDPOINTS
        }

    def index(self, endpoint: Endpoint) -> EndpointIndex:
        """The :class:`EndpointIndex` of ``endpoint``."""
        return self._indexes[endpoint]

    def get(self, endpoint: Endpoint, entity_id: str) -> dict[str, Any] | None:
        """The stored document, or None."""
        idx = self._indexes[endpoint]
        pos = idx.position(entity_id)
        return None if pos is None else idx.documents[pos]

    def documents(self, endpoint: Endpoint) -> list[dict[str, Any]]:
        """All stored documents of ``endpoint`` in store order (do not mutate them)."""
        return list(self._indexes[endpoint].documents)

    def counts(self) -> dict[str, int]:
        """Number of documents per endpoint."""
        return {ep: len(idx) for ep, idx in self._indexes.items()}

    @classmethod
    def from_documents(
        cls,
        *,
        cases: Iterable[dict[str, Any]] = (),
        files: Iterable[dict[str, Any]] = (),
        projects: Iterable[dict[str, Any]] = (),
        status: Mapping[str, Any] | None = None,
    ) -> MirrorStore:
        """Build an in-memory store, e.g. from synthetic documents in a benchmark.

        Raises:
            InputFormatError: a document has no id (``case_id``/``file_id``/``project_id`` or ``id``) or an id
                occurs twice.
        """

        def keyed(endpoint: Endpoint, docs: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
            out = []
            for n, doc in enumerate(docs):
                entity_id = document_id(endpoint, doc)
                if entity_id is None:
                    raise InputFormatError(f"{endpoint} document #{n} has no {ID_FIELDS[endpoint]} or id")
                out.append((entity_id, doc))
            return out

        return cls(
            {
                "cases": keyed("cases", cases),
                "files": keyed("files", files),
                "projects": keyed("projects", projects),
            },
            status,
        )

    @classmethod
    def from_directory(cls, directory: Path) -> MirrorStore:
        """Read a mirror directory: ``status.json`` and ``cases/``, ``files/``, ``projects/`` of ``*.json``.

        Each JSON file holds a list of documents or one document; ``*.source.json`` sidecars (provenance) are
        not served. A missing ``status.json`` means the recorded DR45 status.

        Raises:
            InputFormatError: the directory is not a mirror directory, a file is not JSON, a document has no id,
                or an id occurs in two places.
        """
        directory = Path(directory)
        endpoint_dirs = [directory / ep for ep in ENDPOINTS if (directory / ep).is_dir()]
        if not endpoint_dirs:
            raise InputFormatError(
                f"{directory} is not a GDC mirror directory (no cases/, files/ or projects/ folder)",
                hint="build one with build_mirror_directory() or `oncograph gdc-server --data data/gdc`",
            )
        status_path = directory / "status.json"
        status = _read_json(status_path) if status_path.is_file() else None
        if status is not None and not isinstance(status, dict):
            raise InputFormatError(f"{status_path} must hold one JSON object")
        documents: dict[Endpoint, list[tuple[str, dict[str, Any]]]] = {}
        for endpoint in ENDPOINTS:
            seen: dict[str, Path] = {}
            pairs: list[tuple[str, dict[str, Any]]] = []
            folder = directory / endpoint
            for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                if path.name.endswith(".source.json"):
                    continue
                data = _read_json(path)
                docs = data if isinstance(data, list) else [data]
                for n, doc in enumerate(docs):
                    entity_id = document_id(endpoint, doc) if isinstance(doc, dict) else None
                    if entity_id is None:
                        raise InputFormatError(
                            f"{path}: document #{n} is not an object with {ID_FIELDS[endpoint]} or id"
                        )
                    if entity_id in seen:
                        raise InputFormatError(
                            f"{endpoint} id {entity_id!r} occurs in {seen[entity_id]} and {path}"
                        )
                    seen[entity_id] = path
                    pairs.append((entity_id, doc))
            documents[endpoint] = pairs
        return cls(documents, status)


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InputFormatError(f"cannot read {path} as JSON: {exc}") from exc
