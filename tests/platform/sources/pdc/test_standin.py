"""The PDC stand-in: graphql-core over PDC's real SDL, answering the recorded queries with the recordings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from graphql import parse

from oncograph.errors import InputFormatError
from oncograph.sources.pdc.standin import (
    RECORDED_QUERIES,
    RELEASE_HEADER,
    RecordedPdc,
    RecordedQuery,
    build_pdc_schema,
    fixup_sdl,
    missing_types,
    serve_pdc,
)


def _post(url: str, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=10)


@pytest.mark.parametrize("query", RECORDED_QUERIES, ids=lambda q: f"{q.file}[{q.response_key}]")
def test_answers_each_recorded_query_with_the_recording(
    pdc_url: str, query: RecordedQuery, recorded: Callable[[RecordedQuery], Any]
) -> None:
    response = _post(pdc_url, query.query, query.variables)
    assert response.status_code == 200
    got, want = response.json(), recorded(query)
    if query.file.startswith("pdc_graphql_case_01BR001"):
        # 2019 PDC answered one object; today's SDL (and so the stand-in) says case: [Case]
        assert got == {"data": {"case": [want["data"]["case"]]}}
    elif query.file.startswith("pdc_graphql_getPaginatedUIStudy"):
        # the gen3 test author trimmed pagination and Paginated.__typename from the recorded answer
        answer, recorded_answer = got["data"]["getPaginatedUIStudy"], want["data"]["getPaginatedUIStudy"]
        assert {k: answer[k] for k in recorded_answer} == recorded_answer
        assert set(answer) - set(recorded_answer) == {"pagination", "__typename"}
        assert answer["pagination"] == {
            "count": 1, "sort": "", "from": 0, "page": 1, "total": 1, "pages": 1, "size": 10,
            "__typename": "Pagination",
        }  # fmt: skip
    else:
        assert got == want


def test_every_recording_is_indexed(pdc_store: RecordedPdc) -> None:
    assert pdc_store.counts() == {
        "studyCatalog": 1, "study": 3, "getPaginatedUIStudy": 1, "case": 1, "filesPerStudy": 1, "uiStudy": 2,
    }  # fmt: skip
    assert pdc_store.release.startswith("pdc recorded responses sha256:")


def test_no_recording_answers_like_pdc_for_no_match(pdc_url: str) -> None:
    data = _post(
        pdc_url,
        '{ study(pdc_study_id: "PDC000999") { pdc_study_id } '
        'case(case_submitter_id: "01BR001", pdc_study_id: "PDC000109") { case_id } '
        'filesPerStudy(study_submitter_id: "S038-3") { file_name } '
        'paginatedCasesSamplesAliquots(pdc_study_id: "PDC000109", offset: 0, limit: 5) '
        "{ total casesSamplesAliquots { case_id } pagination { total from size } } }",
    ).json()
    assert data == {
        "data": {
            "study": [],
            "case": [],
            "filesPerStudy": [],  # only the RAW files of S038-3 were recorded, never "all its files"
            "paginatedCasesSamplesAliquots": {
                "total": 0,
                "casesSamplesAliquots": [],
                "pagination": {"total": 0, "from": 0, "size": 5},
            },
        }
    }


def test_narrows_a_recorded_broader_answer(pdc_url: str, recorded: Callable[[RecordedQuery], Any]) -> None:
    files = recorded(RECORDED_QUERIES[4])["data"]["filesPerStudy"]
    one = files[7]["file_name"]
    data = _post(
        pdc_url,
        '{ filesPerStudy(study_submitter_id: "S038-3", file_type: "RAW", file_name: $n) { file_name md5sum } '
        'studyCatalog(pdc_study_id: "PDC000110") { pdc_study_id } }'.replace(
            "$n", orjson.dumps(one).decode()
        ),
    ).json()["data"]
    assert data["filesPerStudy"] == [{"file_name": one, "md5sum": files[7]["md5sum"]}]
    assert data["studyCatalog"] == [{"pdc_study_id": "PDC000110"}]


def test_graphql_errors_come_back_in_an_errors_body_with_http_200(pdc_url: str) -> None:
    syntax = _post(pdc_url, "{ study(")
    unknown = _post(pdc_url, "{ allPrograms { program_id } }")  # a type whose SDL is not bundled
    for response in (syntax, unknown):
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"errors"} and body["errors"][0]["message"]
    assert "Cannot query field 'program_id' on type 'Program'" in unknown.json()["errors"][0]["message"]
    assert syntax.headers[RELEASE_HEADER].startswith("pdc recorded responses sha256:")


def test_failing_field_gives_a_resolver_error_with_path(pdc_store: RecordedPdc) -> None:
    with serve_pdc(pdc_store, fail_fields=frozenset({"filesPerStudy"})) as url:
        body = _post(url, '{ filesPerStudy(study_submitter_id: "S038-3") { file_name } }').json()
    assert body["data"] == {"filesPerStudy": None}
    assert body["errors"][0]["path"] == ["filesPerStudy"]
    assert "simulated resolver failure in filesPerStudy" in body["errors"][0]["message"]
    with pytest.raises(ValueError, match="nope"):
        serve_pdc(pdc_store, fail_fields=frozenset({"nope"})).__enter__()


def test_get_requests_and_non_graphql_requests(pdc_url: str) -> None:
    got = httpx.get(pdc_url, params={"query": "{ studyCatalog { pdc_study_id } }"}, timeout=10)
    assert got.status_code == 200 and len(got.json()["data"]["studyCatalog"]) == 3
    not_json = httpx.post(pdc_url, content=b"{nope", headers={"Content-Type": "application/json"}, timeout=10)
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["errors"][0]["message"]
    assert httpx.post(pdc_url.replace("/graphql", "/other"), json={}, timeout=10).status_code == 404


def test_schema_fixups_are_only_what_graphql_core_cannot_build(pdc_data: Path) -> None:
    texts = [p.read_text() for p in sorted(pdc_data.glob("*.gql"))]
    document = parse("\n".join(texts))
    missing = missing_types(document)
    assert {"Date", "Gene", "Program", "UICase", "Paginated"} - missing == {"Paginated"}
    extra = fixup_sdl(document)
    assert "scalar Date" in extra and "type Gene" in extra
    assert "extend type Case { gdc_case_id: String }" in extra
    # a field the SDL already declares is never added again
    patched = parse("\n".join([*texts, "extend type Case { gdc_case_id: String }"]))
    assert "extend type Case" not in fixup_sdl(patched)
    schema = build_pdc_schema(texts)
    assert schema.query_type is not None and "paginatedCasesSamplesAliquots" in schema.query_type.fields
    with pytest.raises(InputFormatError, match="cannot be built"):
        build_pdc_schema(["type Query { a: "])
