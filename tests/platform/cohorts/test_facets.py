"""Facets (terms, histograms) and the modality matrix (oncograph.cohorts.query) on the real sample graph.

Expected counts are computed here from plain per-table selects and Python (patients per value, Decimal bin
arithmetic, per-patient modality sets), never through the module's queries.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, text

from oncograph.access import Scope
from oncograph.cohorts.fields import MODALITIES
from oncograph.cohorts.filters import FilterError
from oncograph.cohorts.query import HistogramFacet, TermsFacet, facets, modality_matrix

pytestmark = pytest.mark.integration

EVERYTHING = Scope.everything()


def leaf(op: str, field: str, value: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"field": field}
    if value is not None:
        content["value"] = value
    return {"op": op, "content": content}


def rows(conn: Connection, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(text(sql), params)]


def patients(conn: Connection, where: str = "TRUE") -> set[int]:
    return {
        int(r[0])
        for r in rows(
            conn,
            "SELECT p.id FROM patient p LEFT JOIN project pr ON pr.id = p.project_id "
            f"WHERE p.retired_release_id IS NULL AND {where}",
        )
    }


def expected_terms(
    cohort: set[int], pairs: Iterable[tuple[int, Any]], size: int
) -> tuple[list[tuple[Any, int]], int, int]:
    """(buckets, missing, other) from (patient, value) rows: patients per value, most first, then by value."""
    by_value: defaultdict[Any, set[int]] = defaultdict(set)
    for pid, value in pairs:
        if pid in cohort and value is not None:
            by_value[value].add(pid)
    ranked = sorted(((v, len(ps)) for v, ps in by_value.items()), key=lambda vc: (-vc[1], vc[0]))
    with_value = set().union(*by_value.values()) if by_value else set()
    return ranked[:size], len(cohort - with_value), max(0, len(ranked) - size)


def terms(facet: Any) -> TermsFacet:
    assert isinstance(facet, TermsFacet)
    return facet


def histogram(facet: Any) -> HistogramFacet:
    assert isinstance(facet, HistogramFacet)
    return facet


# -- terms ---------------------------------------------------------------------------------------------------


def test_terms_facet_top_values_missing_and_other(sample_conn: Connection) -> None:
    cohort = patients(sample_conn)
    pairs = rows(
        sample_conn, "SELECT p.id, pr.project_id FROM patient p JOIN project pr ON pr.id = p.project_id"
    )
    total, [facet] = facets(sample_conn, None, ["project.project_id"], EVERYTHING, size=3)
    facet = terms(facet)
    assert total == len(cohort) == 1769
    buckets, missing, other = expected_terms(cohort, pairs, 3)
    assert facet.buckets == buckets == [("TCGA-BRCA", 1036), ("CPTAC-3", 279), ("TCGA-PAAD", 185)]
    assert (
        (facet.missing, facet.other) == (missing, other) == (9, 6)
    )  # 9 portal-only barcodes have no project
    assert facet.to_json()["other_values"] == 6 and facet.to_json()["type"] == "terms"
    # a size above the number of values returns them all
    _, [everything] = facets(sample_conn, None, ["project.project_id"], EVERYTHING, size=100)
    assert terms(everything).buckets == expected_terms(cohort, pairs, 100)[0] and terms(everything).other == 0


@pytest.mark.parametrize(
    ("field", "sql"),
    [
        ("diagnoses.classification_of_tumor", "SELECT patient_id, classification_of_tumor FROM diagnosis"),
        ("diagnoses.ajcc_pathologic_stage", "SELECT patient_id, ajcc_pathologic_stage FROM diagnosis"),
        ("samples.sample_type", "SELECT patient_id, sample_type FROM sample"),
        ("samples.is_ffpe", "SELECT patient_id, is_ffpe FROM sample"),
        ("demographic.race", "SELECT patient_id, race FROM demographic"),
        ("primary_site", "SELECT id, primary_site FROM patient"),
        ("diagnoses.treatments.treatment_type", "SELECT patient_id, treatment_type FROM treatment"),
        (
            "files.data_type",
            "SELECT fp.patient_id, f.data_type FROM file_patient fp JOIN data_file f ON f.id = fp.file_id",
        ),
        (
            "idc.modality",
            "SELECT l.patient_id, s.modality FROM identity_link l JOIN idc_patient ip "
            "ON l.commons = 'idc' AND ip.collection_id = l.namespace AND ip.patient_id = l.external_id "
            "JOIN imaging_series s ON s.idc_patient_id = ip.id",
        ),
    ],
)
@pytest.mark.parametrize("size", [2, 50])
def test_terms_facet_counts_patients_not_records(
    sample_conn: Connection, field: str, sql: str, size: int
) -> None:
    cohort = patients(sample_conn)
    total, [facet] = facets(sample_conn, None, [field], EVERYTHING, size=size)
    facet = terms(facet)
    buckets, missing, other = expected_terms(cohort, rows(sample_conn, sql), size)
    assert total == len(cohort)
    assert facet.buckets == buckets
    assert (facet.missing, facet.other) == (missing, other)
    assert buckets and 0 < missing < total
    if field in ("diagnoses.classification_of_tumor", "samples.sample_type", "samples.is_ffpe"):
        # several records per patient: the buckets add up to more than the patients with a value
        records = Counter(v for pid, v in rows(sample_conn, sql) if v is not None)
        assert any(c < records[v] for v, c in facet.buckets)


def test_terms_facet_of_a_boolean_field_keeps_booleans(sample_conn: Connection) -> None:
    _, [facet] = facets(sample_conn, None, ["samples.is_ffpe"], EVERYTHING)
    keys = [k for k, _ in terms(facet).buckets]
    assert sorted(keys) == [False, True] and all(isinstance(k, bool) for k in keys)
    assert {b["key"] for b in facet.to_json()["buckets"]} == {False, True}


def test_facet_under_a_filter(sample_conn: Connection) -> None:
    chol = patients(sample_conn, "pr.project_id = 'TCGA-CHOL'")
    flt = {"op": "and", "content": [leaf("in", "project.project_id", ["TCGA-CHOL"])]}
    total, [vital, stage, project, age] = facets(
        sample_conn,
        flt,
        [
            "demographic.vital_status",
            "diagnoses.ajcc_pathologic_stage",
            "project.project_id",
            "diagnoses.age_at_diagnosis",
        ],
        EVERYTHING,
    )
    assert total == len(chol) == 51
    b, m, o = expected_terms(chol, rows(sample_conn, "SELECT patient_id, vital_status FROM demographic"), 50)
    assert (terms(vital).buckets, vital.missing, terms(vital).other) == (b, m, o)
    b, m, o = expected_terms(
        chol, rows(sample_conn, "SELECT patient_id, ajcc_pathologic_stage FROM diagnosis"), 50
    )
    assert (terms(stage).buckets, stage.missing) == (b, m)
    # the facet describes the cohort: unlike the GDC API's /cases facets (GDC_API.md §3 "a facet ignores any
    # filter on its own field"), a facet on the filtered field shows only the filtered value
    assert terms(project).buckets == [("TCGA-CHOL", 51)]
    ages = [
        v for pid, v in rows(sample_conn, "SELECT patient_id, age_at_diagnosis FROM diagnosis") if pid in chol
    ]
    assert histogram(age).stats["values"] == len([a for a in ages if a is not None])


def test_facets_of_an_empty_cohort(sample_conn: Connection) -> None:
    total, [site, age] = facets(
        sample_conn, {"op": "or", "content": []}, ["primary_site", "diagnoses.age_at_diagnosis"], EVERYTHING
    )
    assert total == 0
    assert (terms(site).buckets, site.missing, terms(site).other) == ([], 0, 0)
    age = histogram(age)
    assert age.buckets == [] and age.missing == 0
    assert age.stats["min"] is None and age.stats["values"] == 0


def test_unknown_facet_fields_are_located_errors(sample_conn: Connection) -> None:
    with pytest.raises(FilterError) as err:
        facets(sample_conn, None, ["primary_site", "diagnoses.age_at_diagnosys", "nope"], EVERYTHING)
    assert [p.loc for p in err.value.problems] == ["facets[1]", "facets[2]"]
    assert "diagnoses.age_at_diagnosis" in err.value.problems[0].msg
    # the cases. prefix is accepted as in filters
    _, [facet] = facets(sample_conn, None, ["cases.project.project_id"], EVERYTHING, size=1)
    assert terms(facet).buckets == [("TCGA-BRCA", 1036)]


# -- histograms ----------------------------------------------------------------------------------------------


def decimal_bins(
    values: Iterable[tuple[int, Any]], width: float, cohort: set[int]
) -> list[tuple[Decimal, int]]:
    """Patients per bin [k*width, (k+1)*width), computed in exact decimal arithmetic."""
    w = Decimal(repr(width))
    by_bin: defaultdict[int, set[int]] = defaultdict(set)
    for pid, v in values:
        if v is not None and pid in cohort:
            by_bin[math.floor(Decimal(repr(v)) / w)].add(pid)
    return [(k * w, len(by_bin[k])) for k in sorted(by_bin)]


def is_nice(width: float) -> bool:
    exponent = math.floor(math.log10(width))
    return round(width / 10**exponent, 9) in (1.0, 2.0, 5.0)


@pytest.mark.parametrize(
    ("field", "sql", "bins"),
    [
        ("diagnoses.age_at_diagnosis", "SELECT patient_id, age_at_diagnosis FROM diagnosis", 10),
        ("diagnoses.age_at_diagnosis", "SELECT patient_id, age_at_diagnosis FROM diagnosis", 4),
        ("demographic.days_to_birth", "SELECT patient_id, days_to_birth FROM demographic", 10),
        ("follow_ups.bmi", "SELECT patient_id, bmi FROM follow_up", 5),
        ("exposures.pack_years_smoked", "SELECT patient_id, pack_years_smoked FROM exposure", 7),
        ("diagnoses.days_to_last_follow_up", "SELECT patient_id, days_to_last_follow_up FROM diagnosis", 10),
    ],
)
def test_histogram_auto_interval(sample_conn: Connection, field: str, sql: str, bins: int) -> None:
    cohort = patients(sample_conn)
    values = [(pid, v) for pid, v in rows(sample_conn, sql) if v is not None]
    total, [facet] = facets(sample_conn, None, [field], EVERYTHING, bins=bins)
    facet = histogram(facet)
    numbers = [float(v) for _, v in values]
    lo, hi = min(numbers), max(numbers)
    width = facet.interval
    assert width is not None and is_nice(width)
    assert (hi - lo) / bins <= width < 2.5 * (hi - lo) / bins
    expected = decimal_bins(values, width, cohort)
    assert [(Decimal(repr(b_lo)), c) for b_lo, _, c in facet.buckets] == expected
    assert len(facet.buckets) <= bins + 1
    assert all(b_hi - b_lo == pytest.approx(width) for b_lo, b_hi, _ in facet.buckets)
    assert (
        facet.buckets[0][0] <= lo < facet.buckets[0][1] and facet.buckets[-1][0] <= hi < facet.buckets[-1][1]
    )
    with_value = {pid for pid, _ in values}
    assert facet.missing == total - len(with_value & cohort)
    # patients with several values in different bins count once per bin
    assert sum(c for _, _, c in facet.buckets) >= len(with_value)
    assert facet.stats["min"] == lo and facet.stats["max"] == hi
    assert facet.stats["values"] == len(numbers)
    assert facet.stats["mean"] == pytest.approx(math.fsum(numbers) / len(numbers))
    assert facet.to_json()["type"] == "histogram"


def test_histogram_given_interval_over_negative_values(sample_conn: Connection) -> None:
    cohort = patients(sample_conn)
    values = [(pid, v) for pid, v in rows(sample_conn, "SELECT patient_id, days_to_birth FROM demographic")]
    with_value = {pid for pid, v in values if v is not None}
    total, [facet] = facets(
        sample_conn,
        None,
        ["demographic.days_to_birth"],
        EVERYTHING,
        intervals={"demographic.days_to_birth": 5000},
    )
    facet = histogram(facet)
    assert facet.interval == 5000
    expected = decimal_bins(values, 5000, cohort)
    assert [(Decimal(int(lo)), c) for lo, _, c in facet.buckets] == expected
    # floor, not truncation towards zero: -7363 days falls in [-10000, -5000)
    assert facet.buckets[-1][:2] == (-10000.0, -5000.0)
    assert all(lo % 5000 == 0 and hi - lo == 5000 for lo, hi, _ in facet.buckets)
    # one value per patient: the bins partition the patients with a value
    assert sum(c for _, _, c in facet.buckets) == len(with_value) == total - facet.missing


def test_histogram_given_interval_on_a_number_field(sample_conn: Connection) -> None:
    cohort = patients(sample_conn)
    values = rows(sample_conn, "SELECT patient_id, bmi FROM follow_up")
    _, [facet] = facets(sample_conn, None, ["follow_ups.bmi"], EVERYTHING, intervals={"follow_ups.bmi": 2.5})
    facet = histogram(facet)
    assert facet.interval == 2.5
    assert [(Decimal(repr(lo)), c) for lo, _, c in facet.buckets] == decimal_bins(values, 2.5, cohort)


def test_histogram_decimal_interval_puts_boundary_values_in_their_bin(sample_conn: Connection) -> None:
    cohort = patients(sample_conn)
    values = [(pid, v) for pid, v in rows(sample_conn, "SELECT patient_id, pack_years_smoked FROM exposure")]
    _, [facet] = facets(
        sample_conn,
        None,
        ["exposures.pack_years_smoked"],
        EVERYTHING,
        intervals={"exposures.pack_years_smoked": 0.1},
    )
    facet = histogram(facet)
    recount = [
        len({pid for pid, v in values if v is not None and lo <= v < hi}) for lo, hi, _ in facet.buckets
    ]
    assert [c for _, _, c in facet.buckets] == recount
    assert [(round(lo, 9), c) for lo, _, c in facet.buckets] == [
        (round(float(lo), 9), c) for lo, c in decimal_bins(values, 0.1, cohort)
    ]


# -- modality matrix -----------------------------------------------------------------------------------------

_FILE_STRATEGIES = {
    "miRNA-Seq": "mirnaseq",
    "WXS": "wxs",
    "WGS": "wgs",
    "Methylation Array": "methylation",
    "Genotyping Array": "genotyping",
}
_DICOM = {
    "CT": "ct",
    "MR": "mr",
    "PT": "pet",
    "CR": "xray",
    "DX": "xray",
    "MG": "mammography",
    "US": "ultrasound",
    "SM": "slide",
}


def patient_modalities(conn: Connection) -> defaultdict[int, set[str]]:
    """Each patient's modalities, from the raw tables (definitions of fields.MODALITIES)."""
    mods: defaultdict[int, set[str]] = defaultdict(set)
    for pid, is_slide, strategy, data_type in rows(
        conn,
        "SELECT fp.patient_id, f.is_slide, f.experimental_strategy, f.data_type FROM file_patient fp "
        "JOIN data_file f ON f.id = fp.file_id WHERE f.retired_release_id IS NULL",
    ):
        if is_slide:
            mods[pid].add("slide")
        if strategy == "RNA-Seq" or data_type == "Gene Expression Quantification":
            mods[pid].add("rnaseq")
        if strategy in _FILE_STRATEGIES:
            mods[pid].add(_FILE_STRATEGIES[strategy])
        if data_type == "Pathology Report":
            mods[pid].add("clinical_text")
    for pid, modality in rows(
        conn,
        "SELECT l.patient_id, s.modality FROM identity_link l "
        "JOIN idc_patient ip ON l.commons = 'idc' AND ip.collection_id = l.namespace "
        "AND ip.patient_id = l.external_id JOIN imaging_series s ON s.idc_patient_id = ip.id "
        "WHERE ip.retired_release_id IS NULL AND s.retired_release_id IS NULL",
    ):
        if modality in _DICOM:
            mods[pid].add(_DICOM[modality])
    for (pid,) in rows(conn, "SELECT patient_id FROM identity_link WHERE commons = 'pdc'"):
        mods[pid].add("proteomics")
    for (pid,) in rows(conn, "SELECT patient_id FROM embedding"):
        mods[pid].add("embedding")
    return mods


@pytest.mark.parametrize(
    ("filters", "where"),
    [
        (None, "TRUE"),
        (leaf("=", "project.project_id", "TCGA-BRCA"), "pr.project_id = 'TCGA-BRCA'"),
        (
            leaf("in", "project.project_id", ["TCGA-LUAD", "TCGA-LIHC"]),
            "pr.project_id IN ('TCGA-LUAD', 'TCGA-LIHC')",
        ),
    ],
)
def test_modality_matrix_matches_an_independent_computation(
    sample_conn: Connection, filters: Any, where: str
) -> None:
    cohort = patients(sample_conn, where)
    mods = patient_modalities(sample_conn)
    matrix = modality_matrix(sample_conn, filters, EVERYTHING)
    assert matrix.total == len(cohort) > 0
    expected_combos = Counter(tuple(sorted(mods.get(p, set()))) for p in cohort)
    assert dict(matrix.combinations) == dict(expected_combos)
    assert len(matrix.combinations) == len(expected_combos)
    assert sum(c for _, c in matrix.combinations) == matrix.total
    counts = [c for _, c in matrix.combinations]
    assert counts == sorted(counts, reverse=True)
    assert all(list(k) == sorted(k) for k, _ in matrix.combinations)
    assert set(matrix.modalities) == set(MODALITIES)
    assert matrix.modalities == {m: sum(1 for p in cohort if m in mods.get(p, set())) for m in MODALITIES}
    assert matrix.to_json()["total"] == matrix.total


def test_slide_modality_is_slide_files_or_idc_sm_series(sample_conn: Connection) -> None:
    slide_files = {
        int(r[0])
        for r in rows(
            sample_conn,
            "SELECT fp.patient_id FROM file_patient fp JOIN data_file f ON f.id = fp.file_id "
            "WHERE f.is_slide",
        )
    }
    sm_series = {
        int(r[0])
        for r in rows(
            sample_conn,
            "SELECT l.patient_id FROM identity_link l JOIN idc_patient ip ON l.commons = 'idc' "
            "AND ip.collection_id = l.namespace AND ip.patient_id = l.external_id "
            "JOIN imaging_series s ON s.idc_patient_id = ip.id WHERE s.modality = 'SM'",
        )
    }
    assert slide_files and sm_series
    matrix = modality_matrix(sample_conn, None, EVERYTHING)
    assert matrix.modalities["slide"] == len(slide_files | sm_series)
    # the filter field agrees with the matrix
    only_slide = modality_matrix(sample_conn, leaf("=", "modalities", "slide"), EVERYTHING)
    assert only_slide.total == matrix.modalities["slide"] == only_slide.modalities["slide"]
    assert () not in dict(only_slide.combinations)


def test_modalities_facet_agrees_with_the_matrix(sample_conn: Connection) -> None:
    matrix = modality_matrix(sample_conn, None, EVERYTHING)
    total, [facet] = facets(sample_conn, None, ["modalities"], EVERYTHING, size=len(MODALITIES))
    facet = terms(facet)
    assert total == matrix.total
    assert dict(facet.buckets) == {m: c for m, c in matrix.modalities.items() if c}
    assert facet.missing == dict(matrix.combinations).get((), 0) > 0
