"""The mirror directory built from the bundled real data: counts, merges, enrichments, skips, provenance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from oncograph.errors import ConfigurationError, InputFormatError
from oncograph.sources.gdc.mirror import (
    RECORDED_STATUS,
    BuildReport,
    MirrorStore,
    build_mirror_directory,
)

DATA = Path(__file__).resolve().parents[4] / "data" / "gdc"
CHOL_CLINICAL = "gdc_portal_json/gdc_clinical_TCGA-CHOL_2024_51cases.json"
HCMI_CASE = "33165ed4-5f38-4566-8d0d-82e2a6d2743f"
Recorded = Callable[[str], Any]


def _sidecars(mirror_dir: Path, endpoint: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in (mirror_dir / endpoint).glob("*.source.json"):
        out.update(orjson.loads(path.read_bytes())["documents"])
    return out


def test_counts_and_skips_are_reported(mirror_build: tuple[Path, BuildReport]) -> None:
    mirror_dir, report = mirror_build
    assert report.counts == {"cases": 1590, "files": 2910, "projects": 10}
    skipped = {(s.input.split("/")[-1], s.reason.split(" (")[0]): s.count for s in report.skipped}
    # records without their id are skipped and counted, never given an id
    assert skipped[("gdc_cases_table_TCGA-LIHC_2019_375cases.json", "no case_id")] == 375
    assert skipped[("gdc_files_table_TCGA-BRCA_htseq_2019_1164files.json", "no file_id")] == 1164
    assert skipped[("gdc_files_table_TCGA-CHOL_htseq_2016_45files.json", "no file_id")] == 45
    whole_files = {name for (name, reason) in skipped if reason.startswith("whole file")}
    assert whole_files == {
        "gdc_analysis_top_mutated_cases_by_gene_demographic_diagnoses.json",
        "gdc_annotations_filter_entity_id.json",
        "gdc_cases_excludeifany_zero_hits.json",
        "gdc_cases_filters_and_facets_post.json",
        "gdc_cases_format_tsv_fields_submitter_id_size5.tsv",
        "gdc_files_post_format_tsv_biospecimen_fields.tsv",
        "gdc_files_versions_by_uuids.json",
        "gdc_files_versions_manifest_post.json",
        "gdc_history_file_1dd28069.json",
        "gdc_projects_facets_program_name_size0.json",
        "gdc_v0_all_quicksearch_TCGA.json",
    }
    on_disk = orjson.loads((mirror_dir / "BUILD_REPORT.json").read_bytes())
    assert on_disk["counts"] == report.counts
    assert "375" in report.summary() and "no case_id" in report.summary()


def test_status_is_the_recorded_dr45_value_set(mirror_dir: Path) -> None:
    assert orjson.loads((mirror_dir / "status.json").read_bytes()) == dict(RECORDED_STATUS)
    source = orjson.loads((mirror_dir / "status.source.json").read_bytes())["_source"]
    assert source["file"] == "data/gdc/gdc_api_json/gdc_status_examples.json"
    assert "api_status_extended.json" in source["provenance"]


def test_chol_clinical_and_biospecimen_merge_into_one_case(mirror_store: MirrorStore) -> None:
    chol = [
        c for c in mirror_store.documents("cases") if c.get("project", {}).get("project_id") == "TCGA-CHOL"
    ]
    assert len(chol) == 51
    assert all("samples" in c for c in chol)
    assert sum("diagnoses" in c for c in chol) == 48  # 3 CHOL cases have no clinical records at all
    raw = orjson.loads((DATA / CHOL_CLINICAL).read_bytes())
    by_id = {c["case_id"]: c for c in chol}
    for record in raw:
        merged = by_id[record["case_id"]]
        assert {k: merged[k] for k in record} == record  # the clinical part is verbatim


def test_paad_selection_and_cases_table_merge_with_conflicts_recorded(
    mirror_store: MirrorStore, mirror_dir: Path
) -> None:
    paad = [
        c for c in mirror_store.documents("cases") if c.get("project", {}).get("project_id") == "TCGA-PAAD"
    ]
    assert len(paad) == 185
    assert all(c.get("submitter_id", "").startswith("TCGA-") and "exposures" in c for c in paad)
    sidecar = _sidecars(mirror_dir, "cases")[paad[0]["case_id"]]
    assert len(sidecar["sources"]) == 2
    assert {c["path"] for c in sidecar["_mirror_merge"]["conflicts"]} == {"diagnoses"}


def test_brca_2019_enrichment_is_recorded(mirror_store: MirrorStore, mirror_dir: Path) -> None:
    case = mirror_store.get("cases", "1f601832-eee3-48fb-acf5-80c4a454f26e")  # TCGA-BH-A0EA, also in API docs
    assert case is not None and case["submitter_id"] == "TCGA-BH-A0EA"
    brca = [
        (cid, entry)
        for cid, entry in _sidecars(mirror_dir, "cases").items()
        if any("TCGA-BRCA_2019" in s for s in entry["sources"])
    ]
    assert len(brca) == 1036
    for _, entry in brca:
        enrichment = next(v for k, v in entry["_mirror_enrichment"].items() if "TCGA-BRCA_2019" in k)
        assert "TCGA-BRCA portal selection" in enrichment["project.project_id"]
        assert "_demographic" in enrichment["submitter_id"]
    doc = mirror_store.get("cases", brca[0][0])
    assert doc is not None
    assert doc["project"]["project_id"] == "TCGA-BRCA"
    assert doc["demographic"]["submitter_id"] == doc["submitter_id"] + "_demographic"


def test_api_hits_keep_their_shape_and_case_id_copy_is_recorded(
    mirror_store: MirrorStore, mirror_dir: Path, recorded: Recorded
) -> None:
    hit = recorded("gdc_cases_HCMI_exclude_op.json")["data"]["hits"][0]
    assert mirror_store.get("cases", HCMI_CASE) == {**hit, "case_id": HCMI_CASE}
    entry = _sidecars(mirror_dir, "cases")[HCMI_CASE]
    assert len(entry["sources"]) == 2  # the filter and the exclude example return the same real hit
    assert any("copied from the hit's id" in e["case_id"] for e in entry["_mirror_enrichment"].values())
    source = orjson.loads((mirror_dir / "cases" / "gdc_cases_HCMI_exclude_op.source.json").read_bytes())
    assert source["_source"]["_source"]["repo"] == "NCI-GDC/gdc-docs"


def test_graphql_case_is_unwrapped_and_its_files_served(mirror_store: MirrorStore) -> None:
    case = mirror_store.get("cases", "dcd5860c-7e3a-44f3-a732-fe92fe3fe300")
    assert case is not None
    assert [s["submitter_id"] for s in case["samples"]][:1] == ["TCGA-AN-A046-01A"]
    aliquots = case["samples"][0]["portions"][0]["analytes"][0]["aliquots"]
    assert isinstance(aliquots, list) and "aliquot_id" in aliquots[0] and "id" not in aliquots[0]
    dx1 = mirror_store.get("files", "5a69a438-d7b2-40fa-afc1-0d02de55ee02")
    assert dx1 is not None and dx1["data_format"] == "SVS"
    assert dx1["cases"][0]["case_id"] == "dcd5860c-7e3a-44f3-a732-fe92fe3fe300"


def test_every_document_has_its_id_and_sidecars_are_not_served(mirror_store: MirrorStore) -> None:
    for endpoint, field in (("cases", "case_id"), ("files", "file_id"), ("projects", "project_id")):
        idx = mirror_store.index(endpoint)  # type: ignore[arg-type]
        assert all(doc.get(field) == i for i, doc in zip(idx.ids, idx.documents, strict=True))
    assert all("documents" not in d and "_source" not in d for d in mirror_store.documents("cases"))


def test_foreign_output_dirs_and_wrong_data_dirs_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match="not empty"):
        build_mirror_directory(DATA, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(InputFormatError, match="no bundled GDC data"):
        build_mirror_directory(tmp_path, tmp_path / "out")


def test_rebuild_into_an_earlier_build_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "mirror"
    first = build_mirror_directory(DATA, out)
    (out / "cases" / "stale.json").write_bytes(b"[]")
    second = build_mirror_directory(DATA, out)
    assert second.counts == first.counts
    assert not (out / "cases" / "stale.json").exists()


def test_from_directory_rejects_bad_layouts(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="not a GDC mirror directory"):
        MirrorStore.from_directory(tmp_path)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "a.json").write_bytes(orjson.dumps([{"case_id": "x"}]))
    (tmp_path / "cases" / "b.json").write_bytes(orjson.dumps({"case_id": "x"}))
    with pytest.raises(InputFormatError, match="occurs in"):
        MirrorStore.from_directory(tmp_path)
    (tmp_path / "cases" / "b.json").write_bytes(orjson.dumps([{"submitter_id": "no id"}]))
    with pytest.raises(InputFormatError, match=r"is not an object with case_id or id"):
        MirrorStore.from_directory(tmp_path)
    (tmp_path / "cases" / "b.json").write_bytes(b"[{")
    with pytest.raises(InputFormatError, match="cannot read"):
        MirrorStore.from_directory(tmp_path)
    (tmp_path / "cases" / "b.json").unlink()
    (tmp_path / "cases" / "a.source.json").write_bytes(b'{"_source": {}}')
    store = MirrorStore.from_directory(tmp_path)
    assert store.counts() == {"cases": 1, "files": 0, "projects": 0}
    assert store.status == dict(RECORDED_STATUS)
