"""A synchronous client for the NCI GDC API (or the local mirror), with paging and retries.

**Paging.** :meth:`GdcClient.iter_pages` POSTs ``{"filters", "fields", "expand", "from", "size", "sort",
"format": "JSON"}`` and advances ``from`` by the page size until ``from >= pagination.total``. Offset paging over
an unsorted index may skip or repeat documents, so a sort is always sent: by default the endpoint's id field
(``case_id:asc``, ``file_id:asc``, ``project_id:asc``), see :data:`DEFAULT_SORT`.

**Retries** follow :mod:`oncograph.sources.http_retry`: 429, 5xx, timeouts, connection errors and broken
bodies (a body shorter than its Content-Length, JSON that does not parse, an envelope without ``data``) are
retried up to ``max_attempts`` attempts in all. Before retry *n* (1-based) the client waits a full-jitter
backoff, ``uniform(0, min(backoff_max_s, backoff_base_s * 2**(n-1)))``; when the response carried
``Retry-After`` (seconds or an HTTP date) the wait is ``max(Retry-After, backoff)``, but never longer than
``backoff_max_s`` - a server asking for more gets an earlier retry rather than stalling a harvest. When every
attempt failed, :class:`SourceUnavailableError` names the URL, the attempts and the last failure. Any other
4xx raises :class:`GdcRequestError` at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict

from oncograph.errors import SourceError
from oncograph.settings import Settings
from oncograph.sources.http_retry import Retry, RetryingClient, RetryPolicy, is_retryable_status

logger = logging.getLogger(__name__)

GdcEndpoint = Literal["cases", "files", "projects"]

DEFAULT_SORT: Final[dict[str, str]] = {
    "cases": "case_id:asc",
    "files": "file_id:asc",
    "projects": "project_id:asc",
}
"""The sort sent when the caller gives none, so that offset paging is stable."""

CASE_EXPAND_GROUPS: Final[tuple[str, ...]] = (
    "annotations", "demographic", "diagnoses", "diagnoses.annotations", "diagnoses.pathology_details",
    "diagnoses.treatments", "exposures", "family_histories", "follow_ups", "follow_ups.molecular_tests",
    "follow_ups.other_clinical_attributes", "project", "project.program", "samples", "samples.annotations",
    "samples.portions", "samples.portions.analytes", "samples.portions.analytes.aliquots",
    "samples.portions.analytes.aliquots.annotations", "samples.portions.analytes.aliquots.center",
    "samples.portions.analytes.annotations", "samples.portions.annotations", "samples.portions.center",
    "samples.portions.slides", "samples.portions.slides.annotations", "summary", "summary.data_categories",
    "summary.experimental_strategies", "tissue_source_site",
)  # fmt: skip
"""GDC's documented ``/cases`` expand groups (API docs Appendix A) for clinical, project and biospecimen data."""

FILE_EXPAND_GROUPS: Final[tuple[str, ...]] = (
    "analysis", "analysis.input_files", "analysis.metadata", "annotations", "archive", "associated_entities",
    "cases", "cases.project", "cases.samples", "cases.samples.portions", "cases.samples.portions.analytes",
    "cases.samples.portions.analytes.aliquots", "center", "downstream_analyses", "index_files", "metadata_files",
)  # fmt: skip
"""A practical subset of GDC's ``/files`` expand groups."""

PROJECT_EXPAND_GROUPS: Final[tuple[str, ...]] = (
    "program", "summary", "summary.data_categories", "summary.experimental_strategies",
)  # fmt: skip
"""GDC's ``/projects`` expand groups."""

_HINT = "check the network and the GDC status page, or retry later; the harvest can be resumed"


class GdcRequestError(SourceError):
    """The GDC API rejected a request (a 4xx other than 429); retrying the same request will not help."""

    def __init__(self, message: str, *, status_code: int, url: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.url = url


class DataReleaseVersion(BaseModel):
    """``data_release_version`` of ``/status`` (newer API versions only)."""

    model_config = ConfigDict(extra="allow")
    major: int | None = None
    minor: int | None = None
    release_date: str | None = None


class GdcStatus(BaseModel):
    """The flat ``/status`` object; every key is optional because old API versions lack some."""

    model_config = ConfigDict(extra="allow")
    data_release: str | None = None
    data_release_version: DataReleaseVersion | None = None
    tag: str | None = None
    commit: str | None = None
    status: str | None = None
    version: int | None = None

    def release_label(self) -> str:
        """``data_release`` (e.g. ``Data Release 45.0 - December 04, 2025``), else ``tag <tag>``, else ``unknown``."""
        if self.data_release:
            return self.data_release
        return f"tag {self.tag}" if self.tag else "unknown"


@dataclass(frozen=True, slots=True)
class GdcPage:
    """One page of a search."""

    endpoint: str
    hits: list[dict[str, Any]]
    pagination: dict[str, Any]
    from_: int
    """The ``from`` this page was requested with."""
    raw_bytes: int
    """Length of the response body."""

    @property
    def total(self) -> int:
        """``pagination.total``: documents matching the query."""
        return int(self.pagination.get("total") or 0)


class GdcClient(RetryingClient):
    """GDC API client (``/status``, ``/cases``, ``/files``, ``/projects``). Use as a context manager.

    Attributes:
        attempts: HTTP attempts made so far (including retries).
        retries: attempts that were retries of a failed one.
        bytes_received: response body bytes of successful requests.
    """

    def __init__(
        self,
        base_url: str = "https://api.gdc.cancer.gov",
        *,
        page_size: int = 500,
        timeout_s: float = 60.0,
        max_attempts: int = 8,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Create a client; the defaults equal :class:`~oncograph.settings.Settings`' defaults.

        Args:
            base_url: API root, e.g. ``https://api.gdc.cancer.gov`` or a mirror's URL (``/v0`` may be included).
            page_size: hits per page for :meth:`iter_pages`.
            timeout_s: timeout of one HTTP request.
            max_attempts: attempts per request, the first included.
            backoff_base_s: first retry delay bound; doubles each retry (full jitter).
            backoff_max_s: upper bound of one retry delay, ``Retry-After`` included.
            sleep: how to wait between attempts (inject a recorder in tests).
            rng: jitter source (inject a seeded one in tests).
            transport: an httpx transport (tests).
        """
        if page_size < 1 or max_attempts < 1:
            raise ValueError("page_size and max_attempts must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self._connect(
            user_agent="oncograph-gdc-client/0.1",
            timeout_s=timeout_s,
            policy=RetryPolicy(max_attempts, backoff_base_s, backoff_max_s),
            sleep=sleep,
            rng=rng,
            transport=transport,
        )
        self.bytes_received = 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GdcClient:
        """A client configured from ``ONCOGRAPH_GDC_*`` settings; keyword ``overrides`` win."""
        options: dict[str, Any] = {
            "base_url": settings.gdc_url,
            "page_size": settings.gdc_page_size,
            "timeout_s": settings.gdc_timeout_s,
            "max_attempts": settings.gdc_max_attempts,
            "backoff_base_s": settings.gdc_backoff_base_s,
            "backoff_max_s": settings.gdc_backoff_max_s,
        }
        options.update(overrides)
        return cls(**options)

    # ------------------------------------------------------------------ public API

    def status(self) -> GdcStatus:
        """``GET /status``: API version and data release."""
        body, _ = self._request("GET", "status", envelope=False)
        if not isinstance(body, dict):
            raise SourceError(
                f"GDC {self.base_url}/status answered {type(body).__name__}, expected an object"
            )
        return GdcStatus.model_validate(body)

    def release_label(self) -> str:
        """The data release being served, e.g. ``Data Release 45.0 - December 04, 2025`` (or ``tag 1.2.0``)."""
        return self.status().release_label()

    def iter_pages(
        self,
        endpoint: GdcEndpoint,
        *,
        filters: dict[str, Any] | None,
        fields: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        start: int = 0,
    ) -> Iterator[GdcPage]:
        """Yield the pages of a search, from ``start`` until ``from >= pagination.total``.

        Args:
            endpoint: ``cases``, ``files`` or ``projects``.
            filters: a GDC filter object, or None for everything.
            fields: dotted paths to return (``id`` is always returned).
            expand: field groups to return in full, e.g. :data:`CASE_EXPAND_GROUPS`.
            sort: ``field:asc|desc[,…]``; default :data:`DEFAULT_SORT` for the endpoint.
            page_size: hits per page; default the client's.
            start: ``from`` of the first page (to resume).

        Raises:
            SourceUnavailableError: a page kept failing.
            SourceError: a request was rejected, or the server returned an empty page before ``total``.
        """
        size = page_size or self.page_size
        offset = start
        total: int | None = None
        while True:
            payload: dict[str, Any] = {"from": offset, "size": size, "sort": sort or DEFAULT_SORT[endpoint]}
            payload["format"] = "JSON"
            if filters:
                payload["filters"] = filters
            if fields:
                payload["fields"] = ",".join(fields)
            if expand:
                payload["expand"] = ",".join(expand)
            body, length = self._request("POST", endpoint, json_body=payload)
            data = body["data"]
            hits = data.get("hits") if isinstance(data, dict) else None
            pagination = data.get("pagination") if isinstance(data, dict) else None
            if not isinstance(hits, list) or not isinstance(pagination, dict):
                raise SourceError(
                    f"GDC /{endpoint} answered a data object without hits/pagination at from={offset}"
                )
            page = GdcPage(endpoint, hits, pagination, offset, length)
            if total is not None and page.total != total:
                logger.warning(
                    "GDC /%s total changed from %d to %d while paging", endpoint, total, page.total
                )
            total = page.total
            yield page
            offset += size
            if offset >= total:
                return
            if not hits:
                raise SourceError(
                    f"GDC /{endpoint} returned an empty page at from={offset - size} although total={total}",
                    hint="the index changed during the harvest; restart it",
                )

    def iter_hits(self, endpoint: GdcEndpoint, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The hits of :meth:`iter_pages` (same keyword arguments; ``filters`` defaults to None)."""
        kwargs.setdefault("filters", None)
        for page in self.iter_pages(endpoint, **kwargs):
            yield from page.hits

    def get(
        self,
        endpoint: GdcEndpoint,
        entity_id: str,
        *,
        expand: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """``GET /<endpoint>/<id>``: one entity, unwrapped from ``data``.

        Raises:
            GdcRequestError: unknown id (status 404) or a rejected request.
        """
        params = {}
        if expand:
            params["expand"] = ",".join(expand)
        if fields:
            params["fields"] = ",".join(fields)
        body, _ = self._request("GET", f"{endpoint}/{entity_id}", params=params)
        data = body["data"]
        if not isinstance(data, dict):
            raise SourceError(f"GDC /{endpoint}/{entity_id} answered data of type {type(data).__name__}")
        return data

    def projects(
        self,
        *,
        filters: dict[str, Any] | None = None,
        fields: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every project matching ``filters``, sorted by ``project_id``."""
        return list(self.iter_hits("projects", filters=filters, fields=fields, expand=expand))

    # ------------------------------------------------------------------ transport and retries

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        envelope: bool = True,
    ) -> tuple[Any, int]:
        url = f"{self.base_url}/{path}"
        content = orjson.dumps(json_body) if json_body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None

        def send() -> httpx.Response:
            return self._http.request(method, url, content=content, headers=headers, params=params)

        def handle(response: httpx.Response) -> tuple[Any, int] | Retry:
            status = response.status_code
            if is_retryable_status(status):
                return Retry.for_status(response, _message(response))
            if status >= 400:
                raise GdcRequestError(
                    f"GDC rejected {method} {url} with HTTP {status}: {_message(response)}",
                    status_code=status,
                    url=url,
                    hint="fix the request (filters, fields, id); retrying will not help",
                )
            parsed, failure = _parse(response.content, envelope)
            if failure:
                return Retry(failure)
            self.bytes_received += len(response.content)
            return parsed, len(response.content)

        return self._retrier.call(send, handle, what=f"GDC {method} {url}", hint=_HINT)


def _parse(body: bytes, envelope: bool) -> tuple[Any, str]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return None, f"broken body: JSON does not parse ({len(body)} bytes; {exc})"
    if envelope and (not isinstance(parsed, dict) or "data" not in parsed):
        return None, "broken body: JSON envelope without 'data'"
    return parsed, ""


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if body.get(key):
                return str(body[key])[:500]
    return str(body)[:300]
