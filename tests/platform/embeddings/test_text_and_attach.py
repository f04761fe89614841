"""Clinical summaries rendered from the real sample graph, and attaching objects by explicit evidence only."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.embeddings.attach import attach_file, attach_series, barcode_in_name, candidate_file_ids
from oncograph.embeddings.text import render_summaries

REPO = Path(__file__).resolve().parents[3]
CMU = REPO / "data" / "wsi" / "CMU-1-Small-Region.svs"
CMU_MD5 = "1ad6e35c9d17e4d85fb7e3143b328efe"


def _patients_with_diagnoses(session: Session, n: int) -> list[int]:
    return list(
        session.execute(
            text(
                "SELECT DISTINCT p.id FROM patient p JOIN diagnosis d ON d.patient_id = p.id "
                "WHERE p.retired_release_id IS NULL AND d.primary_diagnosis IS NOT NULL ORDER BY p.id LIMIT :n"
            ),
            {"n": n},
        ).scalars()
    )


def test_summaries_are_deterministic_and_hold_the_record(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as session:
        ids = _patients_with_diagnoses(session, 20)
        assert len(ids) == 20
        first = render_summaries(session, ids)
        again = render_summaries(session, list(reversed(ids)))
        assert {s.patient_id: s.text for s in first} == {s.patient_id: s.text for s in again}
        assert [s.patient_id for s in first] == ids
        for s in first:
            submitter, diagnosis = session.execute(
                text(
                    "SELECT p.submitter_id, min(d.primary_diagnosis) FROM patient p JOIN diagnosis d "
                    "ON d.patient_id = p.id WHERE p.id = :p AND d.retired_release_id IS NULL GROUP BY 1"
                ),
                {"p": s.patient_id},
            ).one()
            assert s.text.startswith(f"Patient {submitter}")
            assert diagnosis in s.text
            assert "None" not in s.text
            assert len(s.sha256) == 64
        assert len({s.text for s in first}) == len(first)  # different records, different texts


def test_a_summary_changes_when_the_record_does(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as session:
        pid = _patients_with_diagnoses(session, 1)[0]
        before = render_summaries(session, [pid])[0]
        session.execute(
            text(
                "UPDATE diagnosis SET primary_diagnosis = 'Adenocarcinoma, NOS (edited)' WHERE patient_id = :p"
            ),
            {"p": pid},
        )
        after = render_summaries(session, [pid])[0]
        assert after.sha256 != before.sha256
        assert "(edited)" in after.text


def test_barcodes_in_file_names() -> None:
    assert barcode_in_name("tcga-cr-7395-01a-01-ts1.svs") == "TCGA-CR-7395"
    assert (
        barcode_in_name("TCGA-AN-A0FL-01Z-00-DX1.8F8F1A52-0F9C-4C2B-A9E4-1A2B3C4D5E6F.svs") == "TCGA-AN-A0FL"
    )
    assert barcode_in_name("CMU-1-Small-Region.svs") is None
    assert barcode_in_name("my-TCGA-CR-7395.svs") is None  # only a name that starts with a barcode


def test_file_ids_come_from_the_fetch_the_folder_or_the_name(tmp_path: Path) -> None:
    fid = "0a1b2c3d-0000-4000-8000-000000000001"
    nested = tmp_path / fid / "slide.svs"
    assert candidate_file_ids(nested) == [fid]
    assert candidate_file_ids(tmp_path / "x.svs", "0A1B2C3D-0000-4000-8000-000000000001") == [fid]
    assert candidate_file_ids(tmp_path / "plain.svs") == []


def test_attach_by_file_id_md5_barcode_or_not_at_all(
    sample_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with sample_factory() as session:
        fid, md5, pid, barcode = session.execute(
            text(
                "SELECT f.file_id::text, f.md5sum, p.id, p.submitter_id FROM data_file f "
                "JOIN file_patient fp ON fp.file_id = f.id JOIN patient p ON p.id = fp.patient_id "
                "WHERE f.is_slide AND f.md5sum IS NOT NULL AND p.submitter_id LIKE 'TCGA-%' "
                "AND (SELECT count(*) FROM file_patient x WHERE x.file_id = f.id) = 1 ORDER BY f.id LIMIT 1"
            )
        ).one()
        # by the file id of the folder gdc-client saves it in
        by_id = attach_file(session, tmp_path / fid / "slide.svs", md5="0" * 32)
        assert (by_id.attached_by, by_id.patient_id, by_id.object_id) == ("file_id", pid, fid)
        # by md5 alone
        by_md5 = attach_file(session, tmp_path / "renamed.svs", md5=md5)
        assert (by_md5.attached_by, by_md5.patient_id, by_md5.object_id) == ("md5", pid, fid)
        # by the patient barcode the name starts with (a real slide copied under that patient's barcode:
        # this tests the name rule, not a claim that the bytes are that patient's)
        named = tmp_path / f"{barcode.lower()}-01a-01-ts1.svs"
        shutil.copy(CMU, named)
        by_name = attach_file(session, named, md5=CMU_MD5)
        assert (by_name.attached_by, by_name.patient_id) == ("barcode", pid)
        # nothing matches: unattached, never guessed
        none = attach_file(session, CMU, md5=CMU_MD5)
        assert none.attached_by == "unattached" and none.patient_id is None


def test_attach_series_to_the_idc_index(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as session:
        uid, count = session.execute(
            text("SELECT series_instance_uid, instance_count FROM imaging_series ORDER BY id LIMIT 1")
        ).one()
        found, expected = attach_series(session, uid)
        assert found.attached_by == "series_uid" and expected == count
        assert found.evidence["series_uid"] == uid
        missing, expected = attach_series(session, "1.2.3.4.5")
        assert missing.attached_by == "unattached" and expected is None
