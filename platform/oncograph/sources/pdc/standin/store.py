"""The recorded PDC responses, indexed by root field and arguments, and the rules for answering from them.

Each recording (:data:`~oncograph.sources.pdc.standin.recorded_queries.RECORDED_QUERIES`) is parsed to learn
which root field, alias and arguments each recorded value answers. A request is answered thus:

1. Arguments are normalised: ``acceptDUA`` and empty or null filters are dropped (PDC treats ``""`` as "no
   filter"); ``offset``/``limit``/``getAll`` are paging, not filters.
2. A recording with the same root field and the same filters answers with its recorded value.
3. Otherwise, for a field returning a list, the most specific recording whose filters are a strict subset of
   the request's answers with those of its items that carry every extra filter with an equal value (a
   recorded complete answer to a broader query, narrowed; an item without the field is left out).
4. Otherwise there is no recording: a list field answers ``[]``, ``Paginated`` answers ``total: 0`` with
   empty lists, anything else ``null`` - what PDC answers for no match. Nothing is made up.
5. Paging slices the list (``Paginated``: its list fields) by ``offset``/``limit``; a ``Paginated`` answer's
   ``pagination`` is computed from the request's paging and the total.

A value the schema declares as a list but that was recorded as one object (2019 ``case``) is served as a
one-element list. Fields a recording did not capture come back ``null``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from graphql import (
    FieldNode,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    value_from_ast_untyped,
)

from oncograph.errors import InputFormatError
from oncograph.sources.pdc.standin.recorded_queries import RECORDED_QUERIES, RecordedQuery
from oncograph.sources.pdc.standin.schema import build_pdc_schema, list_fields, unwrap

IGNORED_ARGS: Final = frozenset({"acceptDUA"})
PAGING_ARGS: Final = frozenset({"offset", "limit", "getAll"})


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded root-field value: ``field(filters)`` answered ``value`` (``where`` says from which file)."""

    field: str
    filters: Mapping[str, Any]
    value: Any
    where: str


def normalize_args(args: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split field arguments into (filters, paging), dropping ignored and empty ones."""
    filters: dict[str, Any] = {}
    paging: dict[str, Any] = {}
    for name, value in args.items():
        if name in IGNORED_ARGS or value is None or value == "":
            continue
        (paging if name in PAGING_ARGS else filters)[name] = value
    return filters, paging


def data_release_label(directory: Path) -> str:
    """``pdc recorded responses sha256:<16 hex>`` over the names and bytes of the directory's data files."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix in (".json", ".gql"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"pdc recorded responses sha256:{digest.hexdigest()[:16]}"


class RecordedPdc:
    """The schema and the recordings of a ``data/pdc`` directory; answers root fields (thread-safe, read-only)."""

    def __init__(
        self, directory: Path, sdl: Sequence[str], schema: GraphQLSchema, recordings: Sequence[Recording]
    ) -> None:
        """Use :meth:`from_directory`."""
        self.directory = directory
        self.sdl = tuple(sdl)
        self.schema = schema
        self.recordings = tuple(recordings)
        self.release = data_release_label(directory)

    @classmethod
    def from_directory(
        cls, directory: Path, queries: Sequence[RecordedQuery] = RECORDED_QUERIES
    ) -> RecordedPdc:
        """Load ``*.gql`` (the schema) and the recorded responses named by ``queries``.

        Raises:
            InputFormatError: a file is missing or unreadable, or a recording does not fit its query.
        """
        sdl = sorted(directory.glob("*.gql"))
        if not sdl:
            raise InputFormatError(f"{directory} has no PDC GraphQL SDL (*.gql)", hint="pass --data data/pdc")
        texts = [p.read_text(encoding="utf-8") for p in sdl]
        schema = build_pdc_schema(texts)
        recordings: list[Recording] = []
        for q in queries:
            recordings.extend(_recordings_of(directory, q, schema))
        return cls(directory, texts, schema, recordings)

    def new_schema(self) -> GraphQLSchema:
        """A fresh copy of the schema (a server sets its own resolvers on it)."""
        return build_pdc_schema(self.sdl)

    def counts(self) -> dict[str, int]:
        """Recorded values per root field."""
        out: dict[str, int] = {}
        for r in self.recordings:
            out[r.field] = out.get(r.field, 0) + 1
        return out

    def answer(self, field: str, args: Mapping[str, Any]) -> Any:
        """The value of root field ``field`` called with ``args`` (rules in the module docstring)."""
        query_type = self.schema.query_type
        assert query_type is not None
        named, is_list = unwrap(query_type.fields[field].type)
        filters, paging = normalize_args(args)
        value = self._lookup(field, filters, is_list)
        if is_list:
            return _page(value or [], paging)
        if isinstance(named, GraphQLObjectType) and named.name == "Paginated":
            return _paginated(named, value, paging)
        return value

    def _lookup(self, field: str, filters: dict[str, Any], is_list: bool) -> Any:
        candidates = [r for r in self.recordings if r.field == field]
        for r in candidates:
            if dict(r.filters) == filters:
                return r.value
        if not is_list:
            return None
        broader = [r for r in candidates if r.filters.items() < filters.items()]
        if not broader:
            return []
        best = max(broader, key=lambda r: len(r.filters))
        extra = {k: v for k, v in filters.items() if k not in best.filters}
        return [
            item
            for item in best.value or []
            if isinstance(item, dict) and all(k in item and item[k] == v for k, v in extra.items())
        ]


def _recordings_of(directory: Path, q: RecordedQuery, schema: GraphQLSchema) -> list[Recording]:
    path = directory / q.file
    try:
        body = orjson.loads(path.read_bytes())
        data = body[q.response_key]["data"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputFormatError(
            f"cannot read the recorded PDC response {path} [{q.response_key}]: {exc}"
        ) from exc
    operation = next(d for d in parse(q.query).definitions if isinstance(d, OperationDefinitionNode))
    query_type = schema.query_type
    assert query_type is not None
    out = []
    for node in operation.selection_set.selections:
        if not isinstance(node, FieldNode) or node.name.value not in query_type.fields:
            raise InputFormatError(f"{q.file}: recorded query selects an unknown root field")
        name = node.name.value
        key = node.alias.value if node.alias else name
        if key not in data:
            raise InputFormatError(f"{q.file} [{q.response_key}] has no data.{key}")
        args = {a.name.value: value_from_ast_untyped(a.value, q.variables) for a in node.arguments}
        filters, _ = normalize_args(args)
        value = data[key]
        if unwrap(query_type.fields[name].type)[1] and isinstance(value, dict):
            value = [value]  # recorded as one object where the schema declares a list
        out.append(Recording(name, filters, value, f"{q.file} [{q.response_key}] data.{key}"))
    return out


def _bounds(paging: Mapping[str, Any]) -> tuple[int, int | None]:
    if paging.get("getAll"):
        return 0, None
    offset = max(0, int(paging.get("offset") or 0))
    limit = paging.get("limit")
    return offset, (max(0, int(limit)) if limit is not None else None)


def _page(items: list[Any], paging: Mapping[str, Any]) -> list[Any]:
    offset, limit = _bounds(paging)
    return items[offset:] if limit is None else items[offset : offset + limit]


def _paginated(type_: GraphQLObjectType, value: Any, paging: Mapping[str, Any]) -> dict[str, Any]:
    lists = list_fields(type_)
    if not isinstance(value, dict):
        value = {"total": 0, **{name: [] for name in lists}}
    out = dict(value)
    count = 0
    for name in lists:
        if isinstance(out.get(name), list):
            out[name] = _page(out[name], paging)
            count = max(count, len(out[name]))
    total = int(out.get("total") or 0)
    offset, limit = _bounds(paging)
    if paging or "pagination" not in out:
        size = limit if limit is not None else max(total, count)
        out["pagination"] = {
            "count": count,
            "sort": "",
            "from": offset,
            "page": offset // size + 1 if size else 1,
            "total": total,
            "pages": math.ceil(total / size) if size else 1,
            "size": size,
        }
    return out
