"""Truncated and badly quoted TSVs: the bad row's case gets a problem, the earlier cases stay good."""

from __future__ import annotations

import csv
from pathlib import Path

from oncograph.sources.gdc.portal import read_portal_file
from oncograph.sources.gdc.portal.tsv import document_rows

EXPORTS = Path(__file__).resolve().parents[4] / "data" / "gdc" / "gdc_portal_exports"
LUAD = EXPORTS / "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv"
MANIFEST = EXPORTS / "gdc_manifest_2025_TCGA-BRCA-OV-LUAD_240files.txt"


def _case_ids(text: str) -> list[str]:
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return list(dict.fromkeys(r["cases.case_id"] for r in rows))


def test_file_cut_mid_row(tmp_path: Path) -> None:
    lines = LUAD.read_text().splitlines(keepends=True)
    last = lines[-1]
    cut = tmp_path / "clinical.tsv"
    cut.write_text("".join(lines[:-1]) + last[: len(last) // 2])
    all_ids = _case_ids(LUAD.read_text())
    parsed = read_portal_file(cut)
    assert parsed.format == "clinical_tsv_v2"
    assert [r.entity_id for r in parsed.records] == all_ids
    *good, bad = parsed.records
    assert all(not r.problems for r in good)
    (problem,) = bad.problems
    assert f"clinical.tsv line {len(lines)}:" in problem and "truncated" in problem
    assert bad.raw["lines"][-1] == len(lines)
    assert document_rows(bad.whole_raw())[-1] == dict(
        zip(lines[0].rstrip("\n").split("\t"), last[: len(last) // 2].split("\t"), strict=False)
    )
    assert bad.document["case_id"] == all_ids[-1]  # identified, then quarantined
    assert bad.path.endswith(f" > line {len(lines)}") and f"> case {bad.document['submitter_id']}" in bad.path
    assert parsed.problems == []


def test_cut_off_quote_at_the_end(tmp_path: Path) -> None:
    lines = LUAD.read_text().splitlines(keepends=True)
    cells = lines[-1].rstrip("\n").split("\t")
    cut = tmp_path / "clinical.tsv"
    cut.write_text("".join(lines[:-1]) + "\t".join([*cells[:40], '"Infiltrating duct carcin']))
    parsed = read_portal_file(cut)
    *good, bad = parsed.records
    assert all(not r.problems for r in good)
    assert len(bad.problems) == 1 and f"line {len(lines)}" in bad.problems[0]


def test_cut_off_quote_with_a_complete_width_is_still_caught(tmp_path: Path) -> None:
    header, first = MANIFEST.read_text().splitlines()[:2]
    cells = first.split("\t")
    cells[-1] = '"relea'
    path = tmp_path / "manifest.txt"
    path.write_text(f"{header}\n{first}\n" + "\t".join(cells))
    good, bad = read_portal_file(path).records
    assert not good.problems
    assert bad.problems == ("manifest.txt line 3: a quoted value is never closed (cut-off quote)",)


def test_quoted_cells_and_stray_quotes_in_the_middle(tmp_path: Path) -> None:
    header, first, second, third = MANIFEST.read_text().splitlines()[:4]
    quoted = first.split("\t")
    quoted[1] = '"name with\ta tab.tsv"'
    stray = second.split("\t")
    stray[1] = '"odd" name.tsv'
    path = tmp_path / "manifest.txt"
    path.write_text("\n".join([header, "\t".join(quoted), "\t".join(stray), third]) + "\n")
    records = read_portal_file(path).records
    assert [r.problems for r in records] == [(), (), ()]
    assert records[0].document["file_name"] == "name with\ta tab.tsv"
    assert records[1].document["file_name"] == '"odd" name.tsv'


def test_extra_fields_are_a_problem_and_kept_in_raw(tmp_path: Path) -> None:
    header, first = MANIFEST.read_text().splitlines()[:2]
    path = tmp_path / "manifest.txt"
    path.write_text(f"{header}\n{first}\tsurplus\n")
    (record,) = read_portal_file(path).records
    assert record.problems == ("manifest.txt line 2: row has 6 fields, the header has 5",)
    assert record.raw["_extra_fields"] == ["surplus"]


def test_windows_line_endings_and_bom(tmp_path: Path) -> None:
    text = LUAD.read_text()
    path = tmp_path / "clinical.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    parsed = read_portal_file(path)
    reference = read_portal_file(LUAD)
    assert [r.document for r in parsed.records] == [r.document for r in reference.records]
    assert all(not r.problems for r in parsed.records)


def test_latin1_file_is_read_with_a_file_problem(tmp_path: Path) -> None:
    header, first = MANIFEST.read_text().splitlines()[:2]
    cells = first.split("\t")
    cells[1] = "Ménière.tsv"
    path = tmp_path / "manifest.txt"
    path.write_bytes(f"{header}\n{chr(9).join(cells)}\n".encode("latin-1"))
    parsed = read_portal_file(path)
    assert parsed.records[0].document["file_name"] == "Ménière.tsv"
    (problem,) = parsed.problems
    assert problem.path == "manifest.txt" and "not UTF-8" in problem.message


def test_repeated_column_names_are_all_kept_in_raw(tmp_path: Path) -> None:
    header, first = MANIFEST.read_text().splitlines()[:2]
    path = tmp_path / "manifest.txt"
    path.write_text(f"{header}\tstate\n{first}\tlive\n")
    (record,) = read_portal_file(path).records
    assert record.document["state"] == "released"
    assert record.raw["state"] == "released" and record.raw["state [2]"] == "live"


def test_a_clinical_row_with_surplus_cells_keeps_them_in_raw(tmp_path: Path) -> None:
    lines = LUAD.read_text().splitlines()
    path = tmp_path / "clinical.tsv"
    path.write_text("\n".join([lines[0], lines[1] + "\tsurplus\tmore", *lines[2:]]) + "\n")
    first = read_portal_file(path).records[0]
    assert first.problems and "line 2: row has" in first.problems[0]
    assert first.raw["rows"][0][-2:] == ["surplus", "more"] and first.raw["lines"][0] == 2
    assert document_rows(first.whole_raw())[0]["_extra_fields"] == ["surplus", "more"]
    assert document_rows(first.whole_raw())[0] == {
        **dict(zip(lines[0].split("\t"), lines[1].split("\t"), strict=True)),
        "_extra_fields": ["surplus", "more"],
    }
