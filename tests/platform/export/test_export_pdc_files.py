"""PDC files in an export, on a private copy of the real sample graph.

The recorded PDC files belong to a study that was not recorded and no sample-graph patient links to a PDC
case, so the copy is changed first: the files are attached to a recorded study, the recorded PDC case and a second case (a copy of it
under another UUID) are listed by that study, one patient is linked to both cases and another to the first.
Every PDC file then reaches the first patient twice (through each case) and the second once: the files table
must list each (patient, file) once, with two holders, and the two patients must share a split.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from oncograph.access import Scope

EVERYTHING = Scope.everything()
ExportDB = Any  # tests/platform/export/conftest.py


def _link_pdc(db: ExportDB) -> tuple[list[str], list[str]]:
    """Change the copy as the module docstring says; return the two patients' case UUIDs and the files."""
    second = str(uuid.UUID(int=0x5EC0_0D))
    study = db.sql("SELECT min(id) FROM pdc_study WHERE retired_release_id IS NULL")[0][0]
    db.execute("UPDATE pdc_file SET study_row_id = :s", s=study)
    db.execute(
        "INSERT INTO pdc_case (case_id, key_derived, case_submitter_id, source_document_id, "
        "first_seen_release_id, last_seen_release_id) SELECT CAST(:c AS uuid), key_derived, "
        "case_submitter_id || '-copy', source_document_id, first_seen_release_id, last_seen_release_id "
        "FROM pdc_case LIMIT 1",
        c=second,
    )
    db.execute(
        "INSERT INTO pdc_study_case (study_row_id, case_row_id, source_document_id, first_seen_release_id, "
        "last_seen_release_id) SELECT :s, c.id, c.source_document_id, c.first_seen_release_id, "
        "c.last_seen_release_id FROM pdc_case c",
        s=study,
    )
    cases = [str(c) for (c,) in db.sql("SELECT case_id::text FROM pdc_case ORDER BY case_id = :c", c=second)]
    patients = db.sql(
        "SELECT id, case_id::text FROM patient WHERE retired_release_id IS NULL ORDER BY case_id LIMIT 2"
    )
    run = db.sql("SELECT min(id) FROM run")[0][0]
    for (pid, _), linked in zip(patients, (cases, cases[:1]), strict=True):
        for case in linked:
            db.execute(
                "INSERT INTO identity_link (patient_id, commons, namespace, external_id, method, confidence, run_id) "
                "VALUES (:p, 'pdc', 'pdc', :c, 'test', 1.0, :r)",
                p=pid,
                c=case,
                r=run,
            )
    files = [
        str(f)
        for (f,) in db.sql(
            "SELECT file_id::text FROM pdc_file WHERE study_row_id = :s AND retired_release_id IS NULL",
            s=study,
        )
    ]
    assert files
    return [c for _, c in patients], files


def test_pdc_files_are_listed_once_per_member_with_their_holders(
    export_db: ExportDB, export_tmp: Callable[[str], Path]
) -> None:
    patients, files = _link_pdc(export_db)
    owner = export_db.principal("pdc-files-owner")
    ids = {"op": "in", "content": {"field": "case_id", "value": patients}}
    cohort = export_db.cohort(ids, owner, EVERYTHING)
    path = export_tmp("pdc")
    export_db.export(cohort, path)

    rows = [r for r in pq.read_table(path / "files.parquet").to_pylist() if r["source"] == "pdc"]
    got = collections.Counter((r["case_id"], r["file_id"]) for r in rows)
    assert got == collections.Counter({(c, f): 1 for c in patients for f in files})
    assert {r["shared_by_patients"] for r in rows} == {2}
    assert all(r["study_id"] for r in rows)
    splits = pq.read_table(path / "splits.parquet").to_pylist()
    assert len({s["split"] for s in splits}) == 1
    assert len({s["group"] for s in splits}) == 1
