"""A synchronous client for PDC's GraphQL API (``https://pdc.cancer.gov/graphql``) or the local stand-in.

**Queries.** Studies (``studyCatalog``, ``study`` several at a time through aliases), a study's cases with
samples and aliquots (``paginatedCasesSamplesAliquots``), its files (``filesPerStudy``) and cases by submitter
id (``case``). Field lists come from :mod:`~oncograph.sources.pdc.queries`, narrowed to what the server's
schema has (introspection, once per client).

**Paging.** PDC pages with ``offset``/``limit``. ``paginatedCasesSamplesAliquots`` reports ``total``: pages are
asked until ``offset >= total``. ``filesPerStudy`` returns a bare list: pages are asked until one comes back
shorter than ``limit``.

**Retries** (:mod:`oncograph.sources.http_retry`, as :class:`~oncograph.sources.gdc.client.GdcClient`): 429, 5xx, timeouts, connection errors and
broken bodies (short body, JSON that does not parse, neither ``data`` nor ``errors``) are retried up to
``max_attempts`` attempts, waiting ``uniform(0, min(backoff_max_s, backoff_base_s * 2**(n-1)))`` before retry
*n*, or ``Retry-After`` when longer, never more than ``backoff_max_s``. Then :class:`SourceUnavailableError`.
A GraphQL ``errors`` body (with HTTP 200, or 400 as Apollo sends for invalid queries) is not retried: it
raises :class:`PdcGraphQLError` naming the query and PDC's messages. Other 4xx raise :class:`PdcRequestError`.

**Release.** PDC has no release endpoint. The stand-in marks every answer with the recorded data's label
(``X-PDC-Standin-Release``); for the live API the release is the harvest date: ``pdc live <host> harvested
<YYYY-MM-DD>`` (UTC).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson

from oncograph.errors import SourceError
from oncograph.sources.http_retry import Retry, RetryingClient, RetryPolicy, is_retryable_status
from oncograph.sources.pdc import queries as q

logger = logging.getLogger(__name__)

DEFAULT_URL: Final = "https://pdc.cancer.gov/graphql"
RELEASE_HEADER: Final = "X-PDC-Standin-Release"
_HINT = "check the network and PDC's status, or retry later"


class PdcGraphQLError(SourceError):
    """PDC answered a query with GraphQL ``errors``; sending the same query again will not help."""

    def __init__(self, query_name: str, messages: Sequence[str], *, url: str) -> None:
        joined = "; ".join(messages) or "(no message)"
        super().__init__(
            f"PDC GraphQL query {query_name} failed at {url}: {joined}",
            hint="PDC rejected the query or its arguments; retrying will not help",
        )
        self.query_name = query_name
        self.messages = list(messages)


class PdcRequestError(SourceError):
    """PDC rejected a request with a 4xx other than 429, without a GraphQL ``errors`` body."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message, hint="check --pdc-url: it must be PDC's GraphQL endpoint")
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class PdcPage:
    """One answer of a root field: its items and where they came from."""

    field: str
    args: dict[str, Any]
    items: list[Any]
    offset: int
    total: int | None
    """``total`` of a ``Paginated`` answer; None for bare lists."""

    def location(self, base_url: str, index: int) -> str:
        """``<url> filesPerStudy(study_submitter_id=S038-3, offset=50, limit=50) > item 3``."""
        args = ", ".join(f"{k}={v}" for k, v in self.args.items() if v is not None)
        return f"{base_url} {self.field}({args}) > item {self.offset + index}"


class PdcClient(RetryingClient):
    """PDC GraphQL client; use as a context manager.

    Attributes:
        attempts: HTTP attempts made so far (including retries).
        retries: attempts that were retries of a failed one.
        standin_release: the release label a stand-in announced, None for the live API.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        page_size: int = 100,
        timeout_s: float = 60.0,
        max_attempts: int = 8,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Create a client.

        Args:
            url: the GraphQL endpoint; a bare ``http://host:port`` gets ``/graphql`` appended.
            page_size: ``limit`` of paged queries.
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
        parts = urlsplit(url)
        self.url = url.rstrip("/") + ("/graphql" if parts.path in ("", "/") else "")
        self.page_size = page_size
        self._connect(
            user_agent="oncograph-pdc-client/0.1",
            timeout_s=timeout_s,
            policy=RetryPolicy(max_attempts, backoff_base_s, backoff_max_s),
            sleep=sleep,
            rng=rng,
            transport=transport,
        )
        self._type_fields: q.TypeFields | None = None
        self._introspected = False
        self.standin_release: str | None = None

    # ------------------------------------------------------------------ public API

    def query(
        self, document: str, variables: Mapping[str, Any] | None = None, *, name: str
    ) -> dict[str, Any]:
        """POST one GraphQL request and return its ``data``.

        Raises:
            PdcGraphQLError: the answer carried ``errors``.
            PdcRequestError: a 4xx without a GraphQL body.
            SourceUnavailableError: transport failures outlasted the retries.
        """
        payload = orjson.dumps({"query": document, "variables": dict(variables or {}), "operationName": None})
        return self._post(payload, name)

    def release_label(self) -> str:
        """The stand-in's recorded-data label, else ``pdc live <host> harvested <UTC date>``."""
        if self.standin_release is None:
            self.query("query PdcPing { __typename }", name="PdcPing")
        if self.standin_release is not None:
            return self.standin_release
        return f"pdc live {urlsplit(self.url).netloc} harvested {dt.datetime.now(dt.UTC).date().isoformat()}"

    def type_fields(self) -> q.TypeFields | None:
        """Field names of the types the client queries, by introspection; None when the server refuses it."""
        if not self._introspected:
            self._introspected = True
            try:
                data = self.query(q.TYPE_FIELDS_QUERY, name="PdcTypeFields")
            except PdcGraphQLError as exc:
                logger.warning("PDC refused introspection (%s); querying the default field lists", exc)
                return None
            self._type_fields = {
                t: frozenset(f["name"] for f in (v or {}).get("fields") or [] if isinstance(f, dict))
                for t, v in data.items()
                if isinstance(v, dict)
            }
        return self._type_fields

    def study_catalog(self) -> list[str]:
        """Every ``pdc_study_id`` of ``studyCatalog``, in PDC's order."""
        data = self.query(
            "query PdcStudyCatalog { studyCatalog(acceptDUA: true) { pdc_study_id } }", name="PdcStudyCatalog"
        )
        return [
            str(e["pdc_study_id"])
            for e in _as_list(data.get("studyCatalog"))
            if isinstance(e, dict) and e.get("pdc_study_id")
        ]

    def studies(self, pdc_study_ids: Sequence[str], *, batch: int = 20) -> dict[str, PdcPage]:
        """``study(pdc_study_id)`` for each id, ``batch`` ids per request (aliases); an unknown id maps to no items."""
        out: dict[str, PdcPage] = {}
        available = self.type_fields()
        for start in range(0, len(pdc_study_ids), batch):
            ids = list(pdc_study_ids[start : start + batch])
            document, variables = q.aliased_studies(ids, available)
            data = self.query(document, variables, name="PdcStudies")
            for i, sid in enumerate(ids):
                out[sid] = PdcPage("study", {"pdc_study_id": sid}, _as_list(data.get(f"s{i}")), 0, None)
        return out

    def study(self, selector: str) -> PdcPage:
        """``study(pdc_study_id | study_submitter_id)`` (PDC may return several versions)."""
        key = q.study_key(selector)
        body = q.selection("Study", q.STUDY_FIELDS, self.type_fields())
        document, variables = q.operation("PdcStudy", "study", {key: ("String", selector)}, body)
        data = self.query(document, variables, name="PdcStudy")
        return PdcPage("study", {key: selector}, _as_list(data.get("study")), 0, None)

    def cases(self, case_submitter_id: str) -> PdcPage:
        """``case(case_submitter_id)``: the case in every project that has that submitter id."""
        body = q.selection("Case", q.CASE_FIELDS, self.type_fields())
        args = {"case_submitter_id": ("String", case_submitter_id)}
        document, variables = q.operation("PdcCase", "case", args, body)
        data = self.query(document, variables, name="PdcCase")
        return PdcPage("case", {"case_submitter_id": case_submitter_id}, _as_list(data.get("case")), 0, None)

    def iter_study_cases(self, selector: str, *, page_size: int | None = None) -> Iterator[PdcPage]:
        """Pages of ``paginatedCasesSamplesAliquots`` for a study, until ``offset >= total``.

        Raises:
            SourceError: an empty page before ``total`` (the study changed while paging).
        """
        limit = page_size or self.page_size
        case_body = q.selection("Case", q.CASE_FIELDS, self.type_fields())
        body = (
            f"{{ total casesSamplesAliquots {case_body} pagination {{ count from page total pages size }} }}"
        )
        key = q.study_key(selector)
        offset = 0
        while True:
            args = {key: ("String", selector), "offset": ("Int", offset), "limit": ("Int", limit)}
            document, variables = q.operation("PdcStudyCases", "paginatedCasesSamplesAliquots", args, body)
            data = self.query(document, variables, name="PdcStudyCases").get("paginatedCasesSamplesAliquots")
            paginated = data if isinstance(data, dict) else {}
            items = _as_list(paginated.get("casesSamplesAliquots"))
            total = int(paginated.get("total") or 0)
            page_args = {key: selector, "offset": offset, "limit": limit}
            yield PdcPage("paginatedCasesSamplesAliquots", page_args, items, offset, total)
            offset += limit
            if offset >= total:
                return
            if not items:
                raise SourceError(
                    f"PDC paginatedCasesSamplesAliquots({key}={selector}) returned an empty page at "
                    f"offset {offset - limit} although total={total}",
                    hint="the study changed during the harvest; run it again",
                )

    def iter_study_files(
        self, selector: str, *, file_type: str | None = None, page_size: int | None = None
    ) -> Iterator[PdcPage]:
        """Pages of ``filesPerStudy`` for a study (optionally one ``file_type``), until a short page.

        Raises:
            SourceError: the server ignored ``offset`` (the same page twice).
        """
        limit = page_size or self.page_size
        body = q.selection("FilePerStudy", q.FILE_FIELDS, self.type_fields())
        key = q.study_key(selector)
        offset = 0
        previous: list[Any] | None = None
        while True:
            args = {
                key: ("String", selector),
                "file_type": ("String", file_type),
                "offset": ("Int", offset),
                "limit": ("Int", limit),
            }
            document, variables = q.operation("PdcStudyFiles", "filesPerStudy", args, body)
            items = _as_list(self.query(document, variables, name="PdcStudyFiles").get("filesPerStudy"))
            if items and items == previous:
                raise SourceError(f"PDC filesPerStudy({key}={selector}) ignored offset {offset}")
            page_args = {key: selector, "file_type": file_type, "offset": offset, "limit": limit}
            yield PdcPage("filesPerStudy", page_args, items, offset, None)
            if len(items) < limit:
                return
            previous = items
            offset += limit

    # ------------------------------------------------------------------ transport and retries

    def _post(self, payload: bytes, name: str) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}

        def send() -> httpx.Response:
            return self._http.post(self.url, content=payload, headers=headers)

        def handle(response: httpx.Response) -> dict[str, Any] | Retry:
            release = response.headers.get(RELEASE_HEADER)
            if release:
                self.standin_release = release
            status = response.status_code
            body, failure = _parse(response.content)
            if is_retryable_status(status):
                return Retry.for_status(response, "; ".join(_messages(body)) or None)
            if status in (200, 400) and isinstance(body, dict) and body.get("errors"):
                raise PdcGraphQLError(name, _messages(body), url=self.url)
            if status >= 400:
                detail = "; ".join(_messages(body)) or response.text[:300].strip()
                raise PdcRequestError(
                    f"PDC rejected {name} at {self.url} with HTTP {status}: {detail}", status_code=status
                )
            if failure:
                return Retry(failure)
            return body["data"]  # type: ignore[no-any-return]

        return self._retrier.call(send, handle, what=f"PDC query {name} at {self.url}", hint=_HINT)


def _parse(content: bytes) -> tuple[Any, str]:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        return None, f"broken body: JSON does not parse ({len(content)} bytes; {exc})"
    if not isinstance(body, dict) or not (isinstance(body.get("data"), dict) or body.get("errors")):
        return None, "broken body: neither 'data' nor 'errors'"
    return body, ""


def _messages(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    out = []
    for err in body["errors"]:
        message = str(err.get("message")) if isinstance(err, dict) else str(err)
        path = err.get("path") if isinstance(err, dict) else None
        out.append(f"{message} (at {'.'.join(map(str, path))})" if path else message)
    return out


def _as_list(value: Any) -> list[Any]:
    """A root field's answer as a list: 2019 PDC answered ``case`` with one object."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
