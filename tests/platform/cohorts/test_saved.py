"""Saved cohorts on the real sample graph: frozen versions, re-harvest with a changed release, set operations,
id lists from real portal files, privacy, keyset paging."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.access import Scope
from oncograph.cohorts import saved
from oncograph.cohorts.filters import FilterError
from oncograph.db.models import Principal
from oncograph.errors import NotFoundError, PermissionDeniedError, ValidationError
from oncograph.ingest.harvest import harvest_gdc
from oncograph.ingest.portal_import import import_portal_files
from oncograph.sources.gdc.client import GdcClient
from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, serve_mirror
from oncograph.sources.gdc.portal.id_lists import read_id_file

EVERYTHING = Scope.everything()
CHOL = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}
CHOL_DEAD = {
    "op": "and",
    "content": [CHOL, {"op": "=", "content": {"field": "demographic.vital_status", "value": "Dead"}}],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, gdc_data: Path) -> MirrorStore:
    out = tmp_path_factory.mktemp("mirror")
    build_mirror_directory(gdc_data, out)
    return MirrorStore.from_directory(out)


def _principal(session: Session, name: str, role: str = "curator") -> Principal:
    p = Principal(name=name, role=role)
    session.add(p)
    session.flush()
    return p


def _case_ids(conn: Connection, sql: str, **params: Any) -> set[str]:
    return {str(r[0]) for r in conn.execute(text(sql), params)}


def _members(session: Session, cohort_id: int, owner: Principal, version: int | None = None) -> set[str]:
    ids = saved.member_patient_ids(session, cohort_id, owner, version, scope=Scope.everything())
    return _case_ids(session.connection(), "SELECT case_id FROM patient WHERE id = ANY(:ids)", ids=ids)


def test_filter_cohort_is_frozen_with_hash_and_releases(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        alice = _principal(s, "alice")
        info = saved.create_from_filter(s, name="CHOL dead", filters=CHOL_DEAD, owner=alice, scope=EVERYTHING)
        expected = _case_ids(
            s.connection(),
            "SELECT p.case_id FROM patient p JOIN project pr ON pr.id = p.project_id "
            "JOIN demographic d ON d.patient_id = p.id WHERE pr.project_id = 'TCGA-CHOL' "
            "AND d.vital_status = 'Dead' AND p.retired_release_id IS NULL",
        )
        assert 0 < info.latest.size == len(expected)
        assert _members(s, info.id, alice) == expected
        assert info.latest.member_hash == hashlib.sha256("\n".join(sorted(expected)).encode()).hexdigest()
        assert info.latest.member_hash == saved.member_hash(list(expected))
        sources = {r["source"]: r["release"] for r in info.latest.releases}
        assert sources["gdc"].startswith("Data Release 45.0")
        # the releases of the members' own rows (issue 9 A6): CHOL has IDC series but no PDC study
        assert set(sources) == {"gdc", "idc"}
        assert info.to_json()["size"] == len(expected)


def test_a_cohort_pins_the_releases_of_its_members_rows_only(
    sample_factory: sessionmaker[Session], gdc_data: Path, tmp_path: Path
) -> None:
    """Issue 9 A6: a cohort used to pin the latest release of every source, so importing a header-only portal
    file (a real one: the portal's empty family-history export) became a "release" and made `refresh` report a
    change with no member change."""
    luad = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-LUAD"]}}
    with sample_factory() as s:
        alice = _principal(s, "alice")
        v1 = saved.create_from_filter(s, name="LUAD", filters=luad, owner=alice, scope=EVERYTHING)
        pinned = {r["id"] for r in v1.latest.releases}
        used = {
            r[0]
            for r in s.execute(
                text(
                    "SELECT DISTINCT p.last_seen_release_id FROM patient p JOIN project pr ON pr.id = p.project_id "
                    "WHERE pr.project_id = 'TCGA-LUAD' AND p.retired_release_id IS NULL"
                )
            )
        }
        assert used <= pinned
        # every pinned release holds a live row of a member
        for rid in pinned:
            assert s.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM patient WHERE last_seen_release_id = :r) OR EXISTS (SELECT 1 FROM "
                    "diagnosis WHERE last_seen_release_id = :r) OR EXISTS (SELECT 1 FROM data_file WHERE "
                    "last_seen_release_id = :r) OR EXISTS (SELECT 1 FROM imaging_series WHERE "
                    "last_seen_release_id = :r) OR EXISTS (SELECT 1 FROM pdc_case WHERE last_seen_release_id = :r) "
                    "OR EXISTS (SELECT 1 FROM follow_up WHERE last_seen_release_id = :r) OR EXISTS (SELECT 1 FROM "
                    "exposure WHERE last_seen_release_id = :r) OR EXISTS (SELECT 1 FROM sample WHERE "
                    "last_seen_release_id = :r) OR EXISTS (SELECT 1 FROM pathology_detail WHERE "
                    "last_seen_release_id = :r)"
                ),
                {"r": rid},
            ).scalar_one(), rid
        s.commit()

    empty = gdc_data / "gdc_portal_exports" / "gdc_portal_v2_TCGA-LUAD_family_history_EMPTY.tsv"
    import_portal_files(sample_factory, [empty])
    # a re-import of the same rows under another file name (a new portal "release" that changes nothing)
    same = tmp_path / "the-same-luad-clinical.tsv"
    same.write_bytes(
        (gdc_data / "gdc_portal_exports" / "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv").read_bytes()
    )
    import_portal_files(sample_factory, [same])
    with sample_factory() as s:
        info, diff = saved.refresh(s, v1.id, alice, EVERYTHING)
        assert info.versions == 1 and diff.added == [] and diff.removed == []
        assert info.latest.releases == v1.latest.releases


def test_cohort_survives_a_reharvest_and_refresh_reports_the_diff(
    sample_factory: sessionmaker[Session], store: MirrorStore
) -> None:
    with sample_factory() as s:
        alice = _principal(s, "alice")
        v1 = saved.create_from_filter(s, name="CHOL dead", filters=CHOL_DEAD, owner=alice, scope=EVERYTHING)
        before = _members(s, v1.id, alice)
        chol = [
            copy.deepcopy(d)
            for d in store.documents("cases")
            if (d.get("project") or {}).get("project_id") == "TCGA-CHOL"
        ]
        # Release 46: one dead member disappears; one living patient has died.
        gone = next(d for d in chol if d["case_id"] in before)
        died = next(
            d
            for d in chol
            if d["case_id"] not in before and (d.get("demographic") or {}).get("vital_status") == "Alive"
        )
        died["demographic"]["vital_status"] = "Dead"
        died["demographic"]["days_to_death"] = 400
        changed = MirrorStore.from_documents(
            cases=[d for d in chol if d is not gone],
            files=store.documents("files"),
            projects=store.documents("projects"),
            status={**store.status, "data_release": "Data Release 46.0 - August 10, 2026"},
        )
        with serve_mirror(changed) as url, GdcClient(url, page_size=500) as client:
            harvest_gdc(sample_factory, client, ["TCGA-CHOL"])

        # the frozen version is untouched
        again = saved.get(s, v1.id, alice, EVERYTHING)
        assert again.versions == 1 and again.latest.member_hash == v1.latest.member_hash
        assert _members(s, v1.id, alice, 1) == before

        info, diff = saved.refresh(s, v1.id, alice, EVERYTHING)
        assert info.versions == 2 and info.latest.version == 2
        assert diff.added == [died["case_id"]] and diff.removed == [gone["case_id"]]
        assert diff.unchanged == len(before) - 1
        assert _members(s, v1.id, alice, 2) == (before - {gone["case_id"]}) | {died["case_id"]}
        # the releases the members' rows came from (issue 9 A6): the died patient's document is of release 46,
        # the unchanged members' documents are still those of release 45
        gdc = sorted(r["release"] for r in info.latest.releases if r["source"] == "gdc")
        assert [g[:17] for g in gdc] == ["Data Release 45.0", "Data Release 46.0"]
        assert saved.diff(s, v1.id, alice, 1, 2, scope=Scope.everything()).to_json() == diff.to_json()
        # refreshing again changes nothing: no new version
        info3, diff3 = saved.refresh(s, v1.id, alice, EVERYTHING)
        assert info3.versions == 2 and diff3.added == [] and diff3.removed == []


def test_set_operations_over_three_cohorts(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        bob = _principal(s, "bob")

        def make(name: str, filters: dict[str, Any]) -> tuple[int, set[str]]:
            c = saved.create_from_filter(s, name=name, filters=filters, owner=bob, scope=EVERYTHING)
            return c.id, _members(s, c.id, bob)

        a, sa = make("brca", {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-BRCA"]}})
        b, sb = make("dead", {"op": "=", "content": {"field": "demographic.vital_status", "value": "Dead"}})
        c, sc = make("old", {"op": ">=", "content": {"field": "diagnoses.age_at_diagnosis", "value": 25000}})
        assert sa and sb and sc
        cases = {
            "union": sa | sb | sc,
            "intersection": sa & sb & sc,
            "difference": sa - sb - sc,
        }
        for op, expected in cases.items():
            out = saved.set_operation(s, op=op, cohort_ids=[a, b, c], name=op, owner=bob, scope=EVERYTHING)
            assert out.latest.size == len(expected), op
            assert _members(s, out.id, bob) == expected, op
            assert [o["cohort"] for o in out.definition["operands"]] == [a, b, c]
        with pytest.raises(ValidationError, match="at least two"):
            saved.set_operation(s, op="union", cohort_ids=[a], name="x", owner=bob, scope=EVERYTHING)
        with pytest.raises(ValidationError, match="unknown set operation"):
            saved.set_operation(s, op="xor", cohort_ids=[a, b], name="x", owner=bob, scope=EVERYTHING)


def test_cohort_from_a_real_portal_sample_sheet(
    sample_factory: sessionmaker[Session], gdc_data: Path
) -> None:
    sheet = gdc_data / "gdc_portal_exports" / "gdc_sample_sheet_TCGA-LIHC_expression.tsv"
    ids = read_id_file(sheet)
    lines = sheet.read_text().splitlines()[1:]
    barcodes = {b.strip() for line in lines for b in line.split("\t")[5].split(",") if b.strip()}
    assert set(ids) == barcodes
    with sample_factory() as s:
        alice = _principal(s, "alice")
        info = saved.create_from_ids(
            s, name="lihc", ids=[*ids, "TCGA-NOPE-0000"], owner=alice, scope=EVERYTHING
        )
        known = _case_ids(
            s.connection(), "SELECT case_id FROM patient WHERE submitter_id = ANY(:b)", b=sorted(barcodes)
        )
        assert info.latest.size == len(known) > 0
        assert "TCGA-NOPE-0000" in info.latest.details["unresolved"]
        with pytest.raises(ValidationError, match="none of the 1 ids"):
            saved.create_from_ids(s, name="x", ids=["TCGA-NOPE-0000"], owner=alice, scope=EVERYTHING)


def test_read_id_file_layouts(gdc_data: Path) -> None:
    clinical = gdc_data / "gdc_portal_exports" / "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv"
    ids = read_id_file(clinical)
    assert len(ids) == 60 and all(len(i) == 36 for i in ids)
    chol = gdc_data / "gdc_portal_json" / "gdc_clinical_TCGA-CHOL_2024_51cases.json"
    assert len(read_id_file(chol)) == 51
    assert read_id_file(b'["TCGA-W5-AA38", "TCGA-W5-AA38", " x "]') == ["TCGA-W5-AA38", "x"]
    assert read_id_file("case_id\nA\nB\n") == ["A", "B"]
    assert read_id_file("A\nB\n") == ["A", "B"]
    assert read_id_file('{"case_ids": ["A"]}') == ["A"]
    with pytest.raises(ValidationError, match="no id column"):
        read_id_file("foo\tbar\n1\t2\n")
    with pytest.raises(ValidationError, match="does not parse"):
        read_id_file("[1, 2")
    with pytest.raises(ValidationError, match="no patient ids"):
        read_id_file("\n\n")


def test_privacy_sharing_and_soft_delete(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        alice, bob = _principal(s, "alice"), _principal(s, "bob")
        admin = _principal(s, "root", "admin")
        c = saved.create_from_filter(s, name="mine", filters=CHOL, owner=alice, scope=EVERYTHING)
        assert [x.id for x in saved.list_cohorts(s, bob, EVERYTHING)] == []
        with pytest.raises(NotFoundError):
            saved.get(s, c.id, bob, EVERYTHING)
        assert [x.id for x in saved.list_cohorts(s, admin, EVERYTHING)] == [c.id]
        saved.set_shared(s, c.id, alice, True, EVERYTHING)
        assert saved.get(s, c.id, bob, EVERYTHING).shared
        with pytest.raises(PermissionDeniedError):
            saved.delete(s, c.id, bob, EVERYTHING)
        with pytest.raises(PermissionDeniedError):
            saved.refresh(s, c.id, bob, EVERYTHING)
        saved.delete(s, c.id, alice, EVERYTHING)
        with pytest.raises(NotFoundError):
            saved.get(s, c.id, alice, EVERYTHING)
        assert (
            s.execute(
                text(
                    "SELECT count(*) FROM cohort_member m JOIN cohort_version v ON v.id = "
                    "m.cohort_version_id WHERE v.cohort_id = :c"
                ),
                {"c": c.id},
            ).scalar_one()
            == 51
        )


def test_scope_is_frozen_with_the_version(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        s.execute(text("UPDATE project SET controlled = true WHERE project_id = 'TCGA-CHOL'"))
        viewer = _principal(s, "v", "curator")
        everyone = {"op": "and", "content": []}
        without = saved.create_from_filter(
            s, name="all", filters=everyone, owner=viewer, scope=Scope(principal="v", role="curator")
        )
        granted = saved.create_from_filter(
            s,
            name="all+chol",
            filters=everyone,
            owner=viewer,
            scope=Scope(principal="v", role="curator", granted_projects=frozenset({"TCGA-CHOL"})),
        )
        assert granted.latest.size - without.latest.size == 51
        assert without.latest.scope["granted_projects"] == []
        assert granted.latest.scope["granted_projects"] == ["TCGA-CHOL"]
        with pytest.raises(ValidationError, match="none of the 1 ids"):
            saved.create_from_ids(
                s, name="x", ids=["TCGA-W5-AA38"], owner=viewer, scope=Scope(principal="v", role="curator")
            )


def test_member_pages_cover_everything_once(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        alice = _principal(s, "alice")
        c = saved.create_from_filter(s, name="all", filters=None, owner=alice, scope=EVERYTHING)
        seen: list[str] = []
        after = None
        while True:
            page = saved.members(s, c.id, alice, after=after, limit=97, scope=EVERYTHING)
            seen.extend(m["case_id"] for m in page.members)
            if page.next_after is None:
                break
            after = page.next_after
        assert len(seen) == len(set(seen)) == c.latest.size == page.total
        assert set(seen) == _members(s, c.id, alice)


def test_bad_input_is_rejected_and_nothing_is_stored(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        alice = _principal(s, "alice")
        bad = {"op": "in", "content": {"field": "diagnoses.age_at_diagnosis", "value": ["old"]}}
        with pytest.raises(FilterError) as err:
            saved.create_from_filter(s, name="bad", filters=bad, owner=alice, scope=EVERYTHING)
        assert err.value.problems[0].loc == "filters.content.value[0]"
        with pytest.raises(ValidationError, match="name"):
            saved.create_from_filter(s, name=" ", filters=CHOL, owner=alice, scope=EVERYTHING)
        assert s.execute(text("SELECT count(*) FROM cohort")).scalar_one() == 0


def test_shared_cohort_with_controlled_members_stays_hidden_without_the_grant(
    sample_factory: sessionmaker[Session],
) -> None:
    with sample_factory() as s:
        s.execute(text("UPDATE project SET controlled = true WHERE project_id = 'TCGA-CHOL'"))
        owner, reader = _principal(s, "owner"), _principal(s, "reader", "viewer")
        granted = Scope(principal="owner", role="curator", granted_projects=frozenset({"TCGA-CHOL"}))
        without = Scope(principal="reader", role="viewer")
        chol = saved.create_from_filter(s, name="chol", filters=CHOL, owner=owner, scope=granted, shared=True)
        other = saved.create_from_filter(
            s,
            name="luad",
            filters={"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-LUAD"]}},
            owner=owner,
            scope=granted,
            shared=True,
        )
        assert chol.latest.size == 51
        # the reader without the grant sees neither the members, their count, nor that the cohort exists
        assert [c.id for c in saved.list_cohorts(s, reader, without)] == [other.id]
        for read in (
            lambda: saved.get(s, chol.id, reader, without),
            lambda: saved.members(s, chol.id, reader, scope=without),
            lambda: saved.member_patient_ids(s, chol.id, reader, scope=without),
            lambda: saved.diff(s, chol.id, reader, 1, scope=without),
        ):
            with pytest.raises(NotFoundError):
                read()
        with pytest.raises(NotFoundError):
            saved.set_operation(
                s, op="union", cohort_ids=[chol.id, other.id], name="u", owner=reader, scope=without
            )
        # with the grant it is there; the owner whose grant was revoked loses it too
        with_grant = Scope(principal="reader", role="viewer", granted_projects=frozenset({"TCGA-CHOL"}))
        assert saved.get(s, chol.id, reader, with_grant).latest.size == 51
        with pytest.raises(NotFoundError):
            saved.get(s, chol.id, owner, Scope(principal="owner", role="curator"))


def test_odd_id_files_and_ids_are_clear_errors() -> None:
    with pytest.raises(ValidationError, match="no patient ids"):
        read_id_file('{"data": [1]}')
    with pytest.raises(ValidationError, match="no patient ids"):
        read_id_file('{"data": "x"}')
    assert read_id_file('{"data": {"hits": [{"case_id": "A"}]}}') == ["A"]


def test_nul_in_ids_is_refused(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        alice = _principal(s, "alice")
        with pytest.raises(ValidationError, match="NUL"):
            saved.create_from_ids(s, name="x", ids=["TCGA-\x00"], owner=alice, scope=EVERYTHING)
