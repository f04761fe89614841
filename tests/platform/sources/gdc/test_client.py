"""The GDC client against the real mirror (and a scripted HTTP server for broken responses)."""

from __future__ import annotations

import contextlib
import email.utils
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from oncograph.errors import SourceError, SourceUnavailableError
from oncograph.settings import Settings
from oncograph.sources.gdc.client import CASE_EXPAND_GROUPS, GdcClient, GdcRequestError, GdcStatus
from oncograph.sources.gdc.mirror import FaultConfig, FaultInjector, MirrorStore, nested_paths, serve_mirror

DATA = Path(__file__).resolve().parents[4] / "data" / "gdc"
CHOL = {"op": "in", "content": {"field": "cases.project.project_id", "value": ["TCGA-CHOL"]}}


class Recorder:
    """An injectable ``sleep`` (and clock) that records waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _chol_documents(store: MirrorStore) -> list[dict[str, Any]]:
    docs = [d for d in store.documents("cases") if d.get("project", {}).get("project_id") == "TCGA-CHOL"]
    return sorted(docs, key=lambda d: d["case_id"])


def _without_id(hit: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hit.items() if k != "id"}


# ---------------------------------------------------------------- happy paths


def test_status_and_release_label(mirror_url: str) -> None:
    with GdcClient(mirror_url) as client:
        status = client.status()
        assert status.tag == "8.5.0" and status.status == "OK"
        assert client.release_label() == "Data Release 45.0 - December 04, 2025"


def test_release_label_of_an_old_api_without_data_release() -> None:
    examples = orjson.loads((DATA / "gdc_api_json" / "gdc_status_examples.json").read_bytes())["examples"]
    old = next(e["response"] for e in examples if e["response"].get("tag") == "1.2.0")
    with serve_mirror(MirrorStore.from_documents(status=old)) as url, GdcClient(url) as client:
        assert client.release_label() == "tag 1.2.0"
    assert GdcStatus().release_label() == "unknown"


def test_paging_a_project_returns_exactly_the_stored_documents(
    mirror_url: str, mirror_store: MirrorStore
) -> None:
    expected = _chol_documents(mirror_store)
    groups = nested_paths(expected)
    assert groups <= set(CASE_EXPAND_GROUPS)  # GDC's documented groups cover the real CHOL documents
    with GdcClient(mirror_url, page_size=7) as client:
        pages = list(client.iter_pages("cases", filters=CHOL, expand=CASE_EXPAND_GROUPS))
        assert [p.from_ for p in pages] == [0, 7, 14, 21, 28, 35, 42, 49]
        assert [len(p.hits) for p in pages] == [7] * 7 + [2]
        assert all(p.total == 51 and p.raw_bytes > 0 for p in pages)
        hits = [h for p in pages for h in p.hits]
        assert [h["id"] for h in hits] == [d["case_id"] for d in expected]  # default sort case_id:asc
        assert [_without_id(h) for h in hits] == expected
        assert client.attempts == 8 and client.retries == 0
        resumed = list(client.iter_hits("cases", filters=CHOL, fields=["submitter_id"], start=49))
        assert [h["id"] for h in resumed] == [d["case_id"] for d in expected[49:]]


def test_get_projects_and_settings(mirror_url: str, mirror_store: MirrorStore) -> None:
    settings = Settings(gdc_url=mirror_url, gdc_page_size=3, gdc_max_attempts=2)
    with GdcClient.from_settings(settings, backoff_base_s=0.0) as client:
        assert (client.page_size, client.max_attempts, client.backoff_base_s) == (3, 2, 0.0)
        projects = client.projects()
        assert [p["id"] for p in projects] == sorted(mirror_store.index("projects").ids)
        case = client.get("cases", "0775583e-c0a0-4f18-9ca2-8f89cedce3d6", expand=["demographic"])
        assert case["submitter_id"] == "TCGA-4G-AAZO" and "demographic" in case
        with pytest.raises(GdcRequestError) as err:
            client.get("cases", "no-such-case")
        assert err.value.status_code == 404 and "not found" in str(err.value)
        assert client.retries == 0


# ---------------------------------------------------------------- faults and retries


def test_faulty_mirror_yields_the_identical_hit_list(mirror_url: str, mirror_store: MirrorStore) -> None:
    # The bucket refills only while the client waits (shared fake clock), so the run is deterministic:
    # 50 requests/s with a burst of 2 means every third request is answered 429.
    recorder = Recorder()
    config = FaultConfig(fail_rate=0.3, truncate_rate=0.1, rate_limit=50, rate_burst=2, seed=7)
    injector = FaultInjector(config, clock=recorder.clock)
    with GdcClient(mirror_url, page_size=60) as clean_client:
        clean = list(clean_client.iter_hits("cases", expand=["diagnoses", "demographic"]))
    with serve_mirror(mirror_store, faults=injector) as url:
        client = GdcClient(
            url, page_size=60, max_attempts=40, backoff_max_s=0.05, sleep=recorder.sleep, rng=random.Random(1)
        )
        with client:
            faulty = list(client.iter_hits("cases", expand=["diagnoses", "demographic"]))
            chol = [h for p in client.iter_pages("cases", filters=CHOL, expand=CASE_EXPAND_GROUPS, page_size=7)
                    for h in p.hits]  # fmt: skip
    assert faulty == clean and len(faulty) == 1590
    assert [_without_id(h) for h in chol] == _chol_documents(mirror_store)
    counters = injector.counters
    assert counters.errors > 0 and counters.truncated > 0 and counters.rate_limited > 0
    assert client.retries == counters.errors + counters.truncated + counters.rate_limited
    assert client.attempts == counters.requests  # every attempt reached the mirror
    assert len(recorder.waits) == client.retries and max(recorder.waits) <= 0.05  # Retry-After 1 s, capped


def test_always_failing_server_gives_up_with_a_clear_message(mirror_store: MirrorStore) -> None:
    recorder = Recorder()
    with serve_mirror(mirror_store, faults=FaultConfig(fail_rate=1.0)) as url:
        client = GdcClient(url, max_attempts=4, backoff_base_s=0.5, backoff_max_s=1.5,
                           sleep=recorder.sleep, rng=random.Random(3))  # fmt: skip
        with client, pytest.raises(SourceUnavailableError) as err:
            list(client.iter_pages("cases", filters=CHOL))
    message = str(err.value)
    assert f"POST {url}/cases failed after 4 attempts" in message
    assert "simulated server error" in message and "HTTP 50" in message
    assert err.value.hint and "retry later" in err.value.hint
    assert client.attempts == 4 and client.retries == 3
    assert len(recorder.waits) == 3
    assert all(0 <= w <= cap for w, cap in zip(recorder.waits, (0.5, 1.0, 1.5), strict=True))


def test_retry_after_is_honoured_and_capped(mirror_store: MirrorStore) -> None:
    recorder = Recorder()
    injector = FaultInjector(FaultConfig(rate_limit=0.5, rate_burst=1), clock=recorder.clock)
    with serve_mirror(mirror_store, faults=injector) as url:
        with GdcClient(url, backoff_base_s=0.1, backoff_max_s=30, sleep=recorder.sleep) as client:
            client.get("projects", "TARGET-NBL")  # takes the only token
            client.get("projects", "TARGET-NBL")  # 429, Retry-After: 2
        assert recorder.waits == [2.0] and injector.counters.rate_limited == 1
        recorder.waits.clear()
        with GdcClient(url, backoff_base_s=0.1, backoff_max_s=0.5, sleep=recorder.sleep) as client:
            client.get("projects", "TARGET-NBL")  # bucket empty again: Retry-After 2, but one wait <= 0.5 s
        assert recorder.waits == [0.5, 0.5, 0.5, 0.5]


def test_malformed_filters_fail_at_once_without_retries(mirror_url: str) -> None:
    recorder = Recorder()
    with GdcClient(mirror_url, sleep=recorder.sleep) as client:
        with pytest.raises(SourceError, match="unknown op 'bogus'") as err:
            list(client.iter_pages("cases", filters={"op": "bogus", "content": {}}))
        assert isinstance(err.value, GdcRequestError) and err.value.status_code == 400
        assert client.attempts == 1 and recorder.waits == []


def test_timeouts_and_refused_connections_are_retried(mirror_store: MirrorStore) -> None:
    recorder = Recorder()
    with (
        serve_mirror(mirror_store, faults=FaultConfig(latency_ms=400)) as url,
        GdcClient(url, timeout_s=0.05, max_attempts=2, sleep=recorder.sleep) as client,
        pytest.raises(SourceUnavailableError, match="last failure: timeout"),
    ):
        client.get("projects", "TARGET-NBL")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with GdcClient(f"http://127.0.0.1:{port}", max_attempts=3, sleep=recorder.sleep) as client:
        with pytest.raises(SourceUnavailableError, match="after 3 attempts; last failure: connection error"):
            client.status()
        assert client.attempts == 3


# ---------------------------------------------------------------- broken bodies (scripted real HTTP server)

Reply = tuple[int, dict[str, str], bytes, int | None]
PAGE = orjson.dumps({"data": {"hits": [{"id": "p1", "project_id": "p1"}],
                              "pagination": {"count": 1, "total": 1, "size": 10, "from": 0, "sort": "",
                                             "page": 1, "pages": 1}}, "warnings": {}})  # fmt: skip


class _Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self) -> None:
        script: list[Reply] = self.server.script  # type: ignore[attr-defined]
        status, headers, body, cut = script.pop(0) if len(script) > 1 else script[0]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if cut is None else body[:cut])
        if cut is not None:
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def scripted(*replies: Reply) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.script = list(replies)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_broken_bodies_are_retried() -> None:
    recorder = Recorder()
    replies: list[Reply] = [
        (200, {}, b'{"data": {"hits": [', None),  # JSON that does not parse
        (200, {}, b'{"warnings": {}}', None),  # an envelope without data
        (200, {}, PAGE, len(PAGE) // 2),  # fewer bytes than Content-Length, then close
        (200, {}, PAGE, None),
    ]
    with scripted(*replies) as url, GdcClient(url, sleep=recorder.sleep, backoff_base_s=0.01) as client:
        assert client.projects() == [{"id": "p1", "project_id": "p1"}]
        assert client.retries == 3 and len(recorder.waits) == 3


def test_retry_after_http_date() -> None:
    recorder = Recorder()
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    replies: list[Reply] = [(503, {"Retry-After": when}, b'{"message": "down"}', None), (200, {}, PAGE, None)]
    with scripted(*replies) as url, GdcClient(url, sleep=recorder.sleep, backoff_base_s=0.01) as client:
        client.projects()
    assert len(recorder.waits) == 1 and 1.5 < recorder.waits[0] <= 3.0


def test_an_empty_page_before_total_is_an_error() -> None:
    short = orjson.dumps({"data": {"hits": [], "pagination": {"count": 0, "total": 30, "size": 10, "from": 10,
                                                              "sort": "", "page": 2, "pages": 3}}})  # fmt: skip
    with (
        scripted((200, {}, short, None)) as url,
        GdcClient(url, page_size=10) as client,
        pytest.raises(SourceError, match="empty page at from=0 although total=30"),
    ):
        list(client.iter_pages("projects", filters=None))
