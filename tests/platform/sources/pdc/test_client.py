"""The PDC client against the real stand-in: queries, offset/limit paging, retries, GraphQL errors."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from oncograph.errors import SourceUnavailableError
from oncograph.sources.gdc.mirror import FaultConfig, FaultInjector
from oncograph.sources.pdc import PdcClient, PdcGraphQLError
from oncograph.sources.pdc.standin import RECORDED_QUERIES, RecordedPdc, RecordedQuery, serve_pdc

FILES = RECORDED_QUERIES[4]
STUDIES = RECORDED_QUERIES[1]
CASE = RECORDED_QUERIES[3]


def _harvest(client: PdcClient) -> dict[str, Any]:
    """Everything the client reads from the recordings, in one comparable value."""
    ids = client.study_catalog()
    return {
        "release": client.release_label(),
        "catalog": ids,
        "studies": {k: v.items for k, v in client.studies(ids).items()},
        "files": [
            f for p in client.iter_study_files("S038-3", file_type="RAW", page_size=40) for f in p.items
        ],
        "cases": client.cases("01BR001").items,
        "study_cases": [c for p in client.iter_study_cases("PDC000111") for c in p.items],
    }


def test_reads_the_recordings(pdc_url: str, recorded: Callable[[RecordedQuery], Any]) -> None:
    with PdcClient(pdc_url.removesuffix("/graphql")) as client:  # a bare host gets /graphql appended
        got = _harvest(client)
        assert client.url == pdc_url
    assert got["release"].startswith("pdc recorded responses sha256:")
    assert got["catalog"] == [
        e["pdc_study_id"] for e in recorded(RECORDED_QUERIES[0])["data"]["studyCatalog"]
    ]
    for sid, studies in recorded(STUDIES)["data"].items():
        (study,) = got["studies"][sid]
        want = dict(studies[0])
        want_counts = [c["files_count"] for c in want.pop("filesCount")]
        assert {k: study[k] for k in want} == want  # every recorded field, as recorded
        assert [c["files_count"] for c in study["filesCount"]] == want_counts
        assert study["study_submitter_id"] is None  # asked for, but not in the recording
    assert [f["file_name"] for f in got["files"]] == [
        f["file_name"] for f in recorded(FILES)["data"]["filesPerStudy"]
    ]
    (case,) = got["cases"]
    assert case["gdc_case_id"] == recorded(CASE)["data"]["case"]["gdc_case_id"]
    assert got["study_cases"] == []  # no recording of paginatedCasesSamplesAliquots


def test_pages_files_with_offset_and_limit(
    pdc_store: RecordedPdc, recorded: Callable[[RecordedQuery], Any]
) -> None:
    want = recorded(FILES)["data"]["filesPerStudy"]
    injector = FaultInjector()
    with serve_pdc(pdc_store, faults=injector) as url, PdcClient(url) as client:
        client.type_fields()
        before = injector.counters.requests
        pages = list(client.iter_study_files("S038-3", file_type="RAW", page_size=50))
        assert injector.counters.requests - before == 3
        exact = list(client.iter_study_files("S038-3", file_type="RAW", page_size=144))
    assert [(p.offset, len(p.items)) for p in pages] == [(0, 50), (50, 50), (100, 44)]
    assert [{k: f[k] for k in want[0]} for p in pages for f in p.items] == want
    assert [(p.offset, len(p.items)) for p in exact] == [(0, 144), (144, 0)]  # a full page asks once more
    assert (
        pages[1]
        .location(url, 3)
        .endswith("filesPerStudy(study_submitter_id=S038-3, file_type=RAW, offset=50, limit=50) > item 53")
    )


def test_retries_under_faults_give_the_same_result(pdc_store: RecordedPdc, pdc_url: str, clock: Any) -> None:
    with PdcClient(pdc_url) as client:
        clean = _harvest(client)
    fake = clock()
    config = FaultConfig(fail_rate=0.25, truncate_rate=0.2, rate_limit=20.0, rate_burst=2, seed=7)
    injector = FaultInjector(config, clock=fake)
    options: dict[str, Any] = {
        "max_attempts": 12,
        "backoff_max_s": 2.0,
        "sleep": fake.sleep,
        "rng": random.Random(1),
    }
    with serve_pdc(pdc_store, faults=injector) as url, PdcClient(url, **options) as client:
        faulty = _harvest(client)
        retries = client.retries
    assert faulty == clean
    counters = injector.counters
    assert counters.errors and counters.truncated and counters.rate_limited
    assert retries == counters.errors + counters.truncated + counters.rate_limited
    assert max(fake.sleeps) <= 2.0
    assert sum(1 for s in fake.sleeps if s >= 1.0) >= counters.rate_limited  # Retry-After: 1 honoured


def test_gives_up_with_a_clear_error(pdc_store: RecordedPdc, clock: Any) -> None:
    fake = clock()
    server = serve_pdc(pdc_store, faults=FaultConfig(fail_rate=1.0))
    with server as url, PdcClient(url, max_attempts=4, sleep=fake.sleep, rng=random.Random(0)) as client:
        with pytest.raises(SourceUnavailableError) as err:
            client.study_catalog()
        assert client.attempts == 4
    message = str(err.value)
    assert "PdcStudyCatalog" in message and "after 4 attempts" in message and "HTTP 50" in message
    assert len(fake.sleeps) == 3 and all(0 <= s <= 0.5 * 2**i for i, s in enumerate(fake.sleeps))


def test_an_errors_body_is_a_clear_source_error_and_is_not_retried(pdc_store: RecordedPdc) -> None:
    with serve_pdc(pdc_store, fail_fields=frozenset({"filesPerStudy"})) as url, PdcClient(url) as client:
        client.type_fields()
        attempts = client.attempts
        with pytest.raises(PdcGraphQLError) as err:
            list(client.iter_study_files("S038-3"))
        assert client.attempts == attempts + 1
        with pytest.raises(PdcGraphQLError, match="Cannot query field 'nope'"):
            client.query("{ nope }", name="Nope")
    assert err.value.query_name == "PdcStudyFiles"
    assert "PDC GraphQL query PdcStudyFiles failed" in str(err.value)
    assert "simulated resolver failure in filesPerStudy (stand-in fault injection) (at filesPerStudy)" in str(
        err.value
    )


def test_asks_only_for_fields_the_server_has(pdc_url: str) -> None:
    with PdcClient(pdc_url) as client:
        fields = client.type_fields()
    assert fields is not None
    assert "gdc_case_id" in fields["Case"]  # the 2019 field the recordings carry
    assert {"study_submitter_id", "aliquots_count"} <= fields["Study"]
