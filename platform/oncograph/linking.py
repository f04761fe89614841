"""Identity links: the same person across GDC, IDC and PDC, linked only by explicit evidence.

Rules (never an accidental string match):
- IDC -> GDC (``barcode``): the IDC PatientID is an exact 12-character TCGA patient barcode
  (:func:`oncograph.domain.barcodes.is_tcga_patient_barcode`), it equals the GDC case ``submitter_id``,
  and the IDC collection is the GDC project (``tcga_luad`` <-> ``TCGA-LUAD``). Longer barcodes (samples,
  slides) and near-misses (``TCGA-AY-4070A`` in tcga_coad) do not link. Non-TCGA collections do not link:
  the IDC index declares no GDC ids for them.
- PDC -> GDC (``source_declared``): PDC declares the GDC case id (``gdc_case_id`` / externalReferences).
- PDC -> GDC (``barcode``): the PDC ``case_submitter_id`` is a TCGA patient barcode equal to the submitter id
  of a GDC case of the TCGA program.

Links are idempotent (unique per patient, commons, namespace, external id) and record the run that made them.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.engine import transaction
from oncograph.db.materialized import refresh_patient_modalities
from oncograph.domain.barcodes import is_tcga_patient_barcode
from oncograph.lineage.runs import RunHandle, finish_run, start_run

_INSERT = text(
    "INSERT INTO identity_link (patient_id, commons, namespace, external_id, method, confidence, evidence, run_id) "
    "SELECT patient_id, commons, namespace, external_id, method, confidence, evidence, :run "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS s(patient_id bigint, commons text, namespace text, "
    "external_id text, method text, confidence double precision, evidence jsonb) "
    "ON CONFLICT (patient_id, commons, namespace, external_id) DO NOTHING"
)


def link_identities(session: Session, *, run_id: int) -> dict[str, dict[str, int]]:
    """Create every link the rules allow; returns ``{commons: {method: links created}}``."""
    created: dict[str, dict[str, int]] = {"idc": {}, "pdc": {}}
    idc_rows = [
        _link(
            pid,
            "idc",
            collection,
            external,
            "barcode",
            rule="IDC PatientID = GDC submitter_id (12-character TCGA barcode), collection = project",
            gdc_project=project,
        )
        for pid, collection, external, project in session.execute(
            text(
                "SELECT p.id, ip.collection_id, ip.patient_id, pr.project_id FROM idc_patient ip "
                "JOIN patient p ON p.submitter_id = ip.patient_id JOIN project pr ON pr.id = p.project_id "
                "WHERE pr.project_id = upper(replace(ip.collection_id, '_', '-')) AND ip.collection_id LIKE 'tcga%'"
            )
        )
        if is_tcga_patient_barcode(external)
    ]
    created["idc"]["barcode"] = _insert(session, idc_rows, run_id)
    declared = [
        _link(
            pid,
            "pdc",
            ns or "",
            str(case_id),
            "source_declared",
            rule="PDC declares the GDC case id",
            field=field,
            case_submitter_id=sub,
        )
        for pid, ns, case_id, field, sub in session.execute(
            text(
                "SELECT p.id, c.project_submitter_id, c.case_id, c.gdc_case_id_field, c.case_submitter_id "
                "FROM pdc_case c JOIN patient p ON p.case_id = c.gdc_case_id"
            )
        )
    ]
    created["pdc"]["source_declared"] = _insert(session, declared, run_id)
    barcode = [
        _link(
            pid,
            "pdc",
            ns or "",
            str(case_id),
            "barcode",
            rule="PDC case_submitter_id = GDC submitter_id (12-character TCGA barcode), TCGA program",
            case_submitter_id=sub,
        )
        for pid, ns, case_id, sub in session.execute(
            text(
                "SELECT p.id, c.project_submitter_id, c.case_id, c.case_submitter_id FROM pdc_case c "
                "JOIN patient p ON p.submitter_id = c.case_submitter_id JOIN project pr ON pr.id = p.project_id "
                "JOIN program pg ON pg.id = pr.program_id WHERE pg.name = 'TCGA'"
            )
        )
        if is_tcga_patient_barcode(sub)
    ]
    created["pdc"]["barcode"] = _insert(session, barcode, run_id)
    return created


def _link(
    patient_id: int, commons: str, namespace: str, external_id: str, method: str, **evidence: Any
) -> dict[str, Any]:
    """One identity link row; every rule is an exact match, so its confidence is 1."""
    return {
        "patient_id": patient_id,
        "commons": commons,
        "namespace": namespace,
        "external_id": external_id,
        "method": method,
        "confidence": 1.0,
        "evidence": evidence,
    }


def _insert(session: Session, rows: list[dict[str, Any]], run_id: int) -> int:
    if not rows:
        return 0
    result = session.execute(_INSERT, {"rows": orjson.dumps(rows).decode(), "run": run_id})
    return int(getattr(result, "rowcount", 0))


def link_coverage(session: Session) -> dict[str, Any]:
    """Per-commons counts and how well they are linked (for ``oncograph status``)."""
    row = (
        session.execute(
            text(
                "SELECT (SELECT count(*) FROM patient WHERE retired_release_id IS NULL) AS gdc_patients, "
                "(SELECT count(*) FROM idc_patient WHERE retired_release_id IS NULL) AS idc_patients, "
                "(SELECT count(*) FROM imaging_series WHERE retired_release_id IS NULL) AS idc_series, "
                "(SELECT count(*) FROM pdc_case WHERE retired_release_id IS NULL) AS pdc_cases, "
                "(SELECT count(*) FROM pdc_study) AS pdc_studies, "
                "(SELECT count(DISTINCT patient_id) FROM identity_link WHERE commons = 'idc') AS patients_gdc_idc, "
                "(SELECT count(DISTINCT patient_id) FROM identity_link WHERE commons = 'pdc') AS patients_gdc_pdc, "
                "(SELECT count(*) FROM (SELECT patient_id FROM identity_link GROUP BY patient_id "
                " HAVING count(DISTINCT commons) = 2) x) AS patients_gdc_idc_pdc, "
                "(SELECT count(*) FROM idc_patient ip WHERE NOT EXISTS (SELECT 1 FROM identity_link l WHERE "
                " l.commons = 'idc' AND l.namespace = ip.collection_id AND l.external_id = ip.patient_id)) "
                " AS idc_patients_unlinked, "
                "(SELECT count(*) FROM pdc_case c WHERE NOT EXISTS (SELECT 1 FROM identity_link l WHERE "
                " l.commons = 'pdc' AND l.external_id = CAST(c.case_id AS text))) AS pdc_cases_unlinked, "
                "(SELECT count(DISTINCT l.patient_id) FROM identity_link l "
                " JOIN file_patient fp ON fp.patient_id = l.patient_id JOIN data_file f ON f.id = fp.file_id AND f.is_slide "
                " JOIN idc_patient ip ON ip.collection_id = l.namespace AND ip.patient_id = l.external_id "
                " JOIN imaging_series s ON s.idc_patient_id = ip.id AND s.modality = 'SM' WHERE l.commons = 'idc') "
                " AS patients_slides_gdc_and_idc, "
                "(SELECT count(DISTINCT l.patient_id) FROM identity_link l "
                " JOIN idc_patient ip ON ip.collection_id = l.namespace AND ip.patient_id = l.external_id "
                " JOIN imaging_series s ON s.idc_patient_id = ip.id AND s.modality IN ('CT', 'MR', 'PT') "
                " WHERE l.commons = 'idc') AS patients_with_radiology"
            )
        )
        .mappings()
        .one()
    )
    return {k: int(v) for k, v in row.items()}


def run_linking(factory: sessionmaker[Session]) -> tuple[RunHandle, dict[str, dict[str, int]]]:
    """Link identities in one transaction, recorded as a ``link_identities`` run."""
    with transaction(factory) as s:
        run = start_run(s, transform="link_identities", parameters={})
        created = link_identities(s, run_id=run.id)
        # the cohort engine's per-patient modalities depend on files, series and links: recompute them
        refresh_patient_modalities(s)
        finish_run(s, run, status="succeeded", counts={"created": created})
    return run, created
