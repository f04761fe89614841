"""GDC search and single-entity requests against a :class:`MirrorStore`: parameters in, response bytes out.

Parameters follow GDC_API.md §2: ``filters`` (object, or a JSON-encoded string), ``fields`` and ``expand``
(comma-separated strings or lists), ``size`` (default 10) and ``from`` (default 0) as ints or digit strings,
``sort`` (``field:asc|desc``, comma-separated; no direction means asc), ``format`` (JSON only) and ``pretty``
(accepted, ignored). ``facets`` is not supported (400). Unknown parameters are ignored.

Response order: with ``sort``, by the sort terms, ties broken by id; without, store order (the order the
documents were loaded in), which is deterministic but not GDC's relevance order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from oncograph.sources.gdc.mirror.filters import FilterError, Node, parse_filters, strip_prefix
from oncograph.sources.gdc.mirror.projection import Projection
from oncograph.sources.gdc.mirror.store import Endpoint, EndpointIndex, SortKey

DEFAULT_SIZE = 10


class RequestError(Exception):
    """A request the mirror answers with an HTTP error; ``status`` is the code, the message goes in the body."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class SearchParams:
    """A validated search request."""

    filters: Node | None
    filters_key: bytes
    projection: Projection
    size: int
    from_: int
    sort: tuple[SortKey, ...]
    sort_echo: str


def pagination(*, total: int, count: int, size: int, from_: int, sort: str = "") -> dict[str, Any]:
    """GDC's pagination block: ``page = from // size + 1``, ``pages = ceil(total / size)``; 0/0 when no hits.

    With ``size=0`` (a count-only request) GDC reports page 1 and ``pages = total``, as if size were 1.
    """
    if total == 0:
        page = pages = 0
    else:
        per_page = size if size > 0 else 1
        page = from_ // per_page + 1
        pages = math.ceil(total / per_page)
    return {
        "count": count,
        "total": total,
        "size": size,
        "from": from_,
        "sort": sort,
        "page": page,
        "pages": pages,
    }


def parse_search_params(endpoint: Endpoint, raw: Mapping[str, Any]) -> SearchParams:
    """Validate raw request parameters (query string and/or body) for a search.

    Raises:
        RequestError: a parameter is malformed; the message says which and why.
    """
    _check_format(raw)
    if raw.get("facets") not in (None, "", []):
        raise RequestError("facets are not supported by the oncograph GDC mirror; request hits only")
    filters_raw = raw.get("filters")
    if isinstance(filters_raw, str | bytes):
        text = filters_raw.strip() if isinstance(filters_raw, str) else filters_raw.decode("utf-8", "replace")
        try:
            filters_raw = orjson.loads(text) if text else None
        except orjson.JSONDecodeError as exc:
            raise RequestError(f"filters is not valid JSON: {exc}") from exc
    try:
        node = parse_filters(filters_raw, endpoint)
    except FilterError as exc:
        raise RequestError(f"invalid filters: {exc}") from exc
    filters_key = b"" if node is None else orjson.dumps(filters_raw, option=orjson.OPT_SORT_KEYS)
    sort, sort_echo = _sort_terms(endpoint, raw.get("sort"))
    return SearchParams(
        filters=node,
        filters_key=filters_key,
        projection=parse_projection(endpoint, raw),
        size=_non_negative_int(raw, "size", DEFAULT_SIZE),
        from_=_non_negative_int(raw, "from", 0),
        sort=sort,
        sort_echo=sort_echo,
    )


def parse_projection(endpoint: Endpoint, raw: Mapping[str, Any]) -> Projection:
    """The ``fields``/``expand`` of a request."""
    return Projection.parse(endpoint, _names(raw, "fields"), _names(raw, "expand"))


def search_body(index: EndpointIndex, params: SearchParams) -> bytes:
    """The full JSON response body of a search."""
    matched = index.select(params.filters, params.filters_key, params.sort)
    page = matched[params.from_ : params.from_ + params.size]
    hits = b",".join(index.encoded(i, params.projection) for i in page)
    block = pagination(
        total=len(matched), count=len(page), size=params.size, from_=params.from_, sort=params.sort_echo
    )
    return b'{"data":{"hits":[' + hits + b'],"pagination":' + orjson.dumps(block) + b'},"warnings":{}}'


def entity_body(index: EndpointIndex, entity_id: str, raw: Mapping[str, Any]) -> bytes:
    """The JSON body of ``GET /<endpoint>/<id>``: ``{"data": {...}, "warnings": {}}``.

    Like the recorded real responses, the entity carries no added ``id`` key.

    Raises:
        RequestError: 404 for an unknown id, 400 for malformed parameters.
    """
    _check_format(raw)
    projection = parse_projection(index.endpoint, raw)
    pos = index.position(entity_id)
    if pos is None:
        raise RequestError(f"{index.endpoint[:-1]} {entity_id!r} not found", status=404)
    return b'{"data":' + index.encoded(pos, projection, with_id=False) + b',"warnings":{}}'


def _check_format(raw: Mapping[str, Any]) -> None:
    fmt = raw.get("format")
    if fmt in (None, ""):
        return
    if not isinstance(fmt, str) or fmt.strip().upper() != "JSON":
        raise RequestError(
            f"format={fmt} is not supported by the oncograph GDC mirror; it serves JSON only (format=JSON)"
        )


def _names(raw: Mapping[str, Any], key: str) -> list[str]:
    value = raw.get(key)
    if value in (None, ""):
        return []
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise RequestError(f"{key} must be a comma-separated string of dotted field names, got {item!r}")
        names.extend(n.strip() for n in item.split(",") if n.strip())
    return names


def _non_negative_int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise RequestError(f"{key} must be a non-negative integer, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise RequestError(f"{key} must be a non-negative integer, got {value!r}")
    if number < 0:
        raise RequestError(f"{key} must be a non-negative integer, got {value!r}")
    return number


def _sort_terms(endpoint: Endpoint, value: Any) -> tuple[tuple[SortKey, ...], str]:
    if value in (None, ""):
        return (), ""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in items):
        raise RequestError(f"sort must be a string like 'submitter_id:asc', got {value!r}")
    echo = ",".join(items)
    terms: list[SortKey] = []
    for term in (t.strip() for t in echo.split(",")):
        if not term:
            continue
        field, _, direction = term.partition(":")
        direction = direction.strip().lower() or "asc"
        path = strip_prefix(endpoint, field)
        if not path or direction not in ("asc", "desc"):
            raise RequestError(f"sort term {term!r} must look like 'field:asc' or 'field:desc'")
        terms.append(SortKey(path, direction == "desc"))
    return tuple(terms), echo
