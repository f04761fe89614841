"""One bad row never fails an import: it is quarantined with its reason and the rest lands.

Every bad input here is a real bundled file (data/gdc, see its SOURCES files) copied into tmp_path with one
cell corrupted on purpose: a NUL character in a cell, or a child id (diagnosis, demographic, sample) reused by
a second case.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.ingest.portal_import import import_portal_files

EXPORTS = "gdc_portal_exports"
LUAD = "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv"
BIOTAB = "gdc_clinical_supplement_BCR_Biotab_clinical_patient_brca_first100_plus3linked.txt"
CHOL_CLINICAL = "gdc_clinical_TCGA-CHOL_2024_51cases.json"
CHOL_BIOSPECIMEN = "gdc_biospecimen_TCGA-CHOL_2024_51cases.json"
NULLS = {"'--", "--", ""}


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text(encoding="utf-8").splitlines(), delimiter="\t"))


def _write_rows(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _count(db: Session, sql: str, **params: object) -> int:
    return int(db.execute(text(sql), params).scalar_one())


def _quarantine(db: Session, run_id: int) -> list[tuple[str, str, str]]:
    sql = "SELECT entity_id, location, reasons ->> 0 FROM quarantine WHERE run_id = :r ORDER BY id"
    return [(str(e), str(loc), str(r)) for e, loc, r in db.execute(text(sql), {"r": run_id})]


def _with_nul_in_tsv(source: Path, out: Path, line: int, column: str) -> str:
    """Copy ``source`` with a NUL put inside ``column`` of data row ``line`` (1-based; the header is 1)."""
    rows = _rows(source)
    col = rows[0].index(column)
    rows[line - 1][col] = rows[line - 1][col][:3] + "\x00" + rows[line - 1][col][3:]
    _write_rows(out, rows)
    return rows[line - 1][0]


def test_nul_in_one_tsv_cell_quarantines_that_case_only(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    source = gdc_data / EXPORTS / LUAD
    rows = _rows(source)
    case_ids = list(dict.fromkeys(r[rows[0].index("cases.case_id")] for r in rows[1:]))
    case_col = rows[0].index("cases.case_id")
    # one NUL deep in the file, one in the first data row (inside the first 4 KiB: not "binary")
    bad = tmp_path / "clinical_nul.tsv"
    _with_nul_in_tsv(source, bad, 31, "diagnoses.primary_diagnosis")
    rows = _rows(bad)
    rows[1][rows[0].index("cases.disease_type")] += "\x00"
    _write_rows(bad, rows)
    bad_cases = {rows[30][case_col], rows[1][case_col]}

    run, counts, outcomes = import_portal_files(factory, [bad])

    assert counts.quarantined == {"patient": len(bad_cases)}
    assert _count(db, "SELECT count(*) FROM patient") == len(case_ids) - len(bad_cases)
    stored = {str(c) for (c,) in db.execute(text("SELECT case_id FROM patient"))}
    assert stored == set(case_ids) - bad_cases
    entries = _quarantine(db, run.id)
    assert {e for e, _, _ in entries} == bad_cases
    for _, location, reason in entries:
        assert "clinical_nul.tsv" in location and "NUL character" in reason and "line" in reason
    # the raw row is kept in quarantine, with the NUL shown as a visible symbol
    raw = db.execute(text("SELECT raw::text FROM quarantine WHERE run_id = :r LIMIT 1"), {"r": run.id})
    assert "\u2400" in raw.scalar_one()
    assert outcomes[0].records == len(case_ids)


def test_nul_in_portal_json_and_biotab_is_quarantined(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    cases = orjson.loads((gdc_data / "gdc_portal_json" / CHOL_CLINICAL).read_bytes())
    cases[7]["diagnoses"][0]["primary_diagnosis"] = "Cholangio\x00carcinoma"  # escaped as \u0000 in JSON
    clinical = tmp_path / "chol_clinical_nul.json"
    clinical.write_bytes(orjson.dumps(cases))
    assert b"\\u0000" in clinical.read_bytes()
    biotab = tmp_path / "biotab_nul.txt"
    barcode_row = _rows(gdc_data / EXPORTS / BIOTAB)
    # biotab rows 2-3 are the extra header lines; row 5 is the second patient
    _with_nul_in_tsv(gdc_data / EXPORTS / BIOTAB, biotab, 5, "gender")
    bad_biotab_uuid = barcode_row[4][0].lower()

    run, counts, _ = import_portal_files(factory, [clinical, biotab])

    assert counts.quarantined == {"patient": 2}
    quarantined = {e for e, _, _ in _quarantine(db, run.id)}
    assert quarantined == {cases[7]["case_id"], bad_biotab_uuid}
    assert _count(db, "SELECT count(*) FROM patient WHERE case_id = :c", c=cases[7]["case_id"]) == 0
    assert _count(db, "SELECT count(*) FROM patient WHERE submitter_id LIKE 'TCGA-%'") > 100


def _reuse(rows: list[list[str]], column: str) -> tuple[str, str, str]:
    """Give the last case with one ``column`` value the value of the first case; returns (id, first, second)."""
    head = rows[0]
    case_col, col = head.index("cases.case_id"), head.index(column)
    values: dict[str, set[str]] = {}
    for r in rows[1:]:
        values.setdefault(r[case_col], set()).add(r[col])
    first = next(r for r in rows[1:] if r[col] not in NULLS)
    second = [
        r
        for r in rows[1:]
        if r[case_col] != first[case_col] and len(values[r[case_col]]) == 1 and r[col] not in NULLS
    ][-1]
    for r in rows[1:]:
        if r[case_col] == second[case_col]:
            r[col] = first[col]
    return first[col], first[case_col], second[case_col]


def _luad_with_reused(gdc_data: Path, tmp_path: Path, column: str) -> tuple[Path, str, str, str, int]:
    """A copy of the real LUAD clinical export in which a later case reuses the first case's ``column`` id:
    (the file, the reused id, its owner's case, the thief's case, the number of cases)."""
    rows = _rows(gdc_data / EXPORTS / LUAD)
    reused, owner, thief = _reuse(rows, column)
    path = _write_rows(tmp_path / f"clinical_reused_{column.replace('.', '_')}.tsv", rows)
    return path, reused, owner, thief, len({r[rows[0].index("cases.case_id")] for r in rows[1:]})


def _only_quarantined(db: Session, run_id: int, *, thief: str, owner: str, mentions: str) -> Any:
    """The run's one quarantine entry: the thief's case, with a reason naming the reused id and its owner."""
    (entry,) = _quarantine(db, run_id)
    assert entry[0] == thief and mentions in entry[2] and owner in entry[2]
    return entry


def _owner_of(db: Session, table: str, key: str) -> str:
    """The case UUID of the patient that holds the ``table`` row keyed ``<table>_id = key``."""
    sql = f"SELECT CAST(p.case_id AS text) FROM {table} t JOIN patient p ON p.id = t.patient_id WHERE t.{table}_id = :k"
    return str(db.execute(text(sql), {"k": key}).scalar_one())


def test_reused_demographic_id_in_a_later_batch_is_quarantined(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    # today: a unique-constraint traceback aborts the import (the first batch stays, the rest is lost)
    path, reused, owner, thief, total = _luad_with_reused(gdc_data, tmp_path, "demographic.demographic_id")

    run, counts, _ = import_portal_files(factory, [path], batch_size=5)

    assert counts.quarantined == {"patient": 1}
    assert _count(db, "SELECT count(*) FROM patient") == total - 1
    _only_quarantined(db, run.id, thief=thief, owner=owner, mentions=reused)
    assert _owner_of(db, "demographic", reused) == owner


def test_reused_diagnosis_id_does_not_move_the_diagnosis(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    # today: the second case silently takes the first case's diagnosis (and its treatments)
    path, reused, owner, thief, _ = _luad_with_reused(gdc_data, tmp_path, "diagnoses.diagnosis_id")

    run, counts, _ = import_portal_files(factory, [path])

    assert counts.quarantined == {"patient": 1}
    _only_quarantined(db, run.id, thief=thief, owner=owner, mentions=f"diagnosis {reused}")
    assert _owner_of(db, "diagnosis", reused) == owner
    assert _count(db, "SELECT count(*) FROM patient WHERE case_id = :c", c=thief) == 0


def test_reused_sample_id_across_files_is_quarantined(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    cases = orjson.loads((gdc_data / "gdc_portal_json" / CHOL_BIOSPECIMEN).read_bytes())
    import_portal_files(factory, [gdc_data / "gdc_portal_json" / CHOL_BIOSPECIMEN])
    before = _count(db, "SELECT count(*) FROM sample")
    owner, thief = cases[0], cases[1]
    stolen = owner["samples"][0]["sample_id"]
    thief["samples"][0]["sample_id"] = stolen
    path = tmp_path / "chol_biospecimen_reused_sample.json"
    path.write_bytes(orjson.dumps(cases))

    run, counts, _ = import_portal_files(factory, [path])

    assert counts.quarantined == {"patient": 1}
    (entry,) = _quarantine(db, run.id)
    assert (
        entry[0] == thief["case_id"]
        and f"sample {stolen} is stored under case {owner['case_id']}" in entry[2]
    )
    assert _count(db, "SELECT count(*) FROM sample") == before
    sql = "SELECT CAST(p.case_id AS text) FROM sample s JOIN patient p ON p.id = s.patient_id WHERE s.sample_id = :k"
    assert db.execute(text(sql), {"k": stolen}).scalar_one() == owner["case_id"]


def _releases(db: Session) -> int:
    return _count(db, "SELECT count(*) FROM source_release")


def test_empty_and_header_only_files_make_no_release(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    # the bundled family-history export is header-only; the others are a real header kept alone, and nothing
    header_only = gdc_data / EXPORTS / "gdc_portal_v2_TCGA-LUAD_family_history_EMPTY.tsv"
    manifest = tmp_path / "manifest_header_only.txt"
    manifest.write_text(
        (gdc_data / EXPORTS / "gdc_manifest_2025_TCGA-BRCA-OV-LUAD_240files.txt").read_text().splitlines()[0]
        + "\n"
    )
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    empty_json = tmp_path / "empty.json"
    empty_json.write_bytes(b"[]")

    _, counts, outcomes = import_portal_files(factory, [header_only, manifest, empty, empty_json])

    assert _releases(db) == 0
    assert _count(db, "SELECT count(*) FROM source_document") == 0
    assert counts.entities() == {}
    assert sorted((Path(o.path).name, o.status, o.note) for o in outcomes) == [
        (name, "empty", "no rows, nothing imported")
        for name in sorted(p.name for p in (header_only, manifest, empty, empty_json))
    ]


def test_a_folder_imports_what_it_recognises_and_lists_the_rest(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name in (
        LUAD,
        "gdc_portal_v2_TCGA-LUAD_exposure_first60cases.tsv",
        "gdc_portal_v2_TCGA-LUAD_family_history_EMPTY.tsv",
    ):
        (folder / name).write_bytes((gdc_data / EXPORTS / name).read_bytes())
    (folder / "SOURCES.md").write_bytes((gdc_data / "SOURCES.md").read_bytes())
    (folder / "notes.tsv").write_text("colour\tshape\nred\tround\n")
    (folder / "broken.json").write_text('[{"case_id": ')
    (folder / "slides.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(60))

    run, _, outcomes = import_portal_files(factory, [folder])

    status = {Path(o.path).name: (o.status, o.note or "") for o in outcomes}
    assert status[LUAD][0] == status["gdc_portal_v2_TCGA-LUAD_exposure_first60cases.tsv"][0] == "imported"
    assert status["gdc_portal_v2_TCGA-LUAD_family_history_EMPTY.tsv"] == (
        "empty",
        "no rows, nothing imported",
    )
    assert status["notes.tsv"][0] == "skipped" and "'colour'" in status["notes.tsv"][1]
    assert status["broken.json"][0] == "skipped" and "not valid JSON" in status["broken.json"][1]
    assert status["slides.tar.gz"][0] == "skipped" and "binary" in status["slides.tar.gz"][1]
    assert status["SOURCES.md"][0] == "skipped"
    assert _count(db, "SELECT count(*) FROM patient") == 60
    assert _releases(db) == 2
    stored = db.execute(text("SELECT counts -> 'files' FROM run WHERE id = :r"), {"r": run.id}).scalar_one()
    assert len(stored) == len(outcomes) == 7


def test_every_bundled_portal_folder_imports(
    gdc_data: Path, factory: sessionmaker[Session], db: Session
) -> None:
    progress: list[tuple[str, int, int | None]] = []
    _, counts, outcomes = import_portal_files(
        factory, [gdc_data / EXPORTS, gdc_data / "gdc_portal_json"], progress=lambda *a: progress.append(a)
    )
    kinds = {o.status for o in outcomes}
    assert kinds <= {"imported", "empty", "skipped"}
    assert [Path(o.path).name for o in outcomes if o.status == "skipped"] == ["SOURCES.md"]
    assert _count(db, "SELECT count(*) FROM patient") > 1500
    files = [p for p in progress if p[0] == "files"]
    assert files[-1] == ("files", len(outcomes) - 1, len(outcomes) - 1)
    records = [p[1] for p in progress if p[0] == "records"]
    assert records == sorted(records) and records[-1] == counts.records
