"""GDC ``filters`` compiled to SQL (oncograph.cohorts.filters / query) on the real sample graph.

Every expectation is computed a second way, never through the engine:

- hand-written SQL over the raw tables (``diagnosis``, ``sample``, ``demographic`` ...), written in another
  shape from the engine's correlated EXISTS (EXCEPT, GROUP BY ... HAVING bool_and, plain joins);
- the GDC mirror's own in-Python evaluator of the same grammar (``sources.gdc.mirror.filters``), run over the
  very case documents the sample graph was harvested from, compared by ``case_id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Connection, Engine, text

from oncograph.access import Scope
from oncograph.cohorts.fields import FIELDS
from oncograph.cohorts.filters import BoolNode, FilterError, Leaf, parse
from oncograph.cohorts.query import TermsFacet, count, facets, member_ids, modality_matrix
from oncograph.db.materialized import refresh_patient_modalities
from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory
from oncograph.sources.gdc.mirror.filters import evaluate, parse_filters

pytestmark = pytest.mark.integration

EVERYTHING = Scope.everything()
VIEWER = Scope(principal="p", role="viewer")


def leaf(op: str, field: str, value: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"field": field}
    if value is not None:
        content["value"] = value
    return {"op": op, "content": content}


def AND(*nodes: Any) -> dict[str, Any]:
    return {"op": "and", "content": list(nodes)}


def OR(*nodes: Any) -> dict[str, Any]:
    return {"op": "or", "content": list(nodes)}


def ids(conn: Connection, sql: str, **params: Any) -> set[int]:
    return {int(r[0]) for r in conn.execute(text(sql), params)}


def members(conn: Connection, filters: Any, scope: Scope = EVERYTHING) -> set[int]:
    got = member_ids(conn, filters, scope)
    assert got == sorted(got), "member_ids must be sorted"
    assert len(got) == len(set(got)), "member_ids must not repeat a patient"
    assert count(conn, filters, scope) == len(got)
    return set(got)


ALL = "SELECT id FROM patient WHERE retired_release_id IS NULL"


def buckets_of(facet: Any) -> dict[Any, int]:
    assert isinstance(facet, TermsFacet)
    return dict(facet.buckets)


def project_sql(project: str) -> str:
    return (
        "SELECT p.id FROM patient p JOIN project pr ON pr.id = p.project_id "
        f"WHERE p.retired_release_id IS NULL AND pr.project_id = '{project}'"
    )


def submitter(conn: Connection, submitter_id: str) -> int:
    return int(
        conn.execute(
            text("SELECT id FROM patient WHERE submitter_id = :s AND retired_release_id IS NULL"),
            {"s": submitter_id},
        ).scalar_one()
    )


# -- 1a. each op against hand-written SQL --------------------------------------------------------------------

_AGE = 21501  # an age_at_diagnosis two patients have exactly, so < / <= and > / >= must differ

SQL_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("eq_project", leaf("=", "project.project_id", "TCGA-CHOL"), project_sql("TCGA-CHOL")),
    (
        # patients without a project (portal-only barcodes) have no value, so they stay
        "ne_project_keeps_projectless",
        leaf("!=", "project.project_id", "TCGA-BRCA"),
        "SELECT p.id FROM patient p LEFT JOIN project pr ON pr.id = p.project_id "
        "WHERE pr.project_id IS DISTINCT FROM 'TCGA-BRCA'",
    ),
    (
        "in_primary_site",
        leaf("in", "primary_site", ["Pancreas", "Kidney"]),
        "SELECT id FROM patient WHERE primary_site IN ('Pancreas', 'Kidney')",
    ),
    (
        "exclude_disease_type",
        leaf("exclude", "disease_type", ["Adenomas and Adenocarcinomas", "Ductal and Lobular Neoplasms"]),
        "SELECT id FROM patient WHERE disease_type IS NULL "
        "OR disease_type NOT IN ('Adenomas and Adenocarcinomas', 'Ductal and Lobular Neoplasms')",
    ),
    (
        "excludeifany_patient_level",
        leaf("excludeifany", "disease_type", ["Adenomas and Adenocarcinomas"]),
        "SELECT id FROM patient WHERE disease_type IS DISTINCT FROM 'Adenomas and Adenocarcinomas'",
    ),
    (
        "lt_age",
        leaf("<", "diagnoses.age_at_diagnosis", _AGE),
        f"SELECT patient_id FROM diagnosis WHERE age_at_diagnosis < {_AGE}",
    ),
    (
        "le_age",
        leaf("<=", "diagnoses.age_at_diagnosis", _AGE),
        f"SELECT patient_id FROM diagnosis WHERE age_at_diagnosis <= {_AGE}",
    ),
    (
        "gt_age_string_number",
        leaf(">", "diagnoses.age_at_diagnosis", str(_AGE)),
        f"SELECT patient_id FROM diagnosis WHERE age_at_diagnosis > {_AGE}",
    ),
    (
        "ge_age",
        leaf(">=", "diagnoses.age_at_diagnosis", 20000),
        "SELECT patient_id FROM diagnosis WHERE age_at_diagnosis >= 20000",
    ),
    (
        "eq_age_float_form",
        leaf("=", "diagnoses.age_at_diagnosis", float(_AGE)),
        f"SELECT patient_id FROM diagnosis WHERE age_at_diagnosis = {_AGE}",
    ),
    (
        "gt_number_field",
        leaf(">", "follow_ups.bmi", 30.5),
        "SELECT patient_id FROM follow_up WHERE bmi > 30.5",
    ),
    (
        "eq_vital_status",
        leaf("=", "demographic.vital_status", "Dead"),
        "SELECT patient_id FROM demographic WHERE vital_status = 'Dead'",
    ),
    (
        "in_race",
        leaf("in", "demographic.race", ["asian", "black or african american"]),
        "SELECT patient_id FROM demographic WHERE race IN ('asian', 'black or african american')",
    ),
    (
        "ne_vital_status",
        leaf("!=", "demographic.vital_status", "Alive"),
        f"{ALL} EXCEPT SELECT patient_id FROM demographic WHERE vital_status = 'Alive'",
    ),
    (
        "exclude_nested_all_must_match",
        leaf("exclude", "diagnoses.classification_of_tumor", ["not reported"]),
        f"{ALL} EXCEPT SELECT patient_id FROM diagnosis GROUP BY patient_id "
        "HAVING bool_and(classification_of_tumor = 'not reported')",
    ),
    (
        "excludeifany_nested_any_match",
        leaf("excludeifany", "diagnoses.classification_of_tumor", ["not reported"]),
        f"{ALL} EXCEPT SELECT patient_id FROM diagnosis WHERE classification_of_tumor = 'not reported'",
    ),
    (
        "ne_nested",
        leaf("!=", "diagnoses.ajcc_pathologic_stage", "Stage IIA"),
        f"{ALL} EXCEPT SELECT patient_id FROM diagnosis GROUP BY patient_id "
        "HAVING bool_and(ajcc_pathologic_stage = 'Stage IIA')",
    ),
    (
        "in_stage",
        leaf("in", "diagnoses.ajcc_pathologic_stage", ["Stage IIA", "Stage IIB"]),
        "SELECT patient_id FROM diagnosis WHERE ajcc_pathologic_stage IN ('Stage IIA', 'Stage IIB')",
    ),
    (
        "is_missing_nested",
        leaf("is", "diagnoses.classification_of_tumor", "MISSING"),
        f"{ALL} EXCEPT SELECT patient_id FROM diagnosis WHERE classification_of_tumor IS NOT NULL",
    ),
    (
        "not_missing_nested_no_value_key",
        leaf("not", "diagnoses.classification_of_tumor"),
        "SELECT patient_id FROM diagnosis WHERE classification_of_tumor IS NOT NULL",
    ),
    (
        "is_missing_patient_level",
        leaf("is", "primary_site", "missing"),
        "SELECT id FROM patient WHERE primary_site IS NULL",
    ),
    (
        "not_missing_patient_level",
        leaf("not", "primary_site", "MISSING"),
        "SELECT id FROM patient WHERE primary_site IS NOT NULL",
    ),
    (
        "is_missing_one_to_one_child",
        leaf("is", "demographic.days_to_death", "MISSING"),
        f"{ALL} EXCEPT SELECT patient_id FROM demographic WHERE days_to_death IS NOT NULL",
    ),
    (
        "eq_sample_type",
        leaf("=", "samples.sample_type", ["Solid Tissue Normal"]),
        "SELECT patient_id FROM sample WHERE sample_type = 'Solid Tissue Normal'",
    ),
    (
        "eq_boolean",
        leaf("=", "samples.is_ffpe", True),
        "SELECT patient_id FROM sample WHERE is_ffpe",
    ),
    (
        "ne_boolean_string_form",
        leaf("!=", "samples.is_ffpe", "False"),
        f"{ALL} EXCEPT SELECT patient_id FROM sample GROUP BY patient_id HAVING bool_and(NOT is_ffpe)",
    ),
    (
        "treatments_nested_two_levels",
        leaf("in", "diagnoses.treatments.treatment_type", ["Chemotherapy", "Surgery, NOS"]),
        "SELECT patient_id FROM treatment WHERE treatment_type IN ('Chemotherapy', 'Surgery, NOS')",
    ),
    (
        "file_field",
        leaf("=", "files.data_type", "Gene Expression Quantification"),
        "SELECT fp.patient_id FROM file_patient fp JOIN data_file f ON f.id = fp.file_id "
        "WHERE f.data_type = 'Gene Expression Quantification'",
    ),
    (
        "idc_modality",
        leaf("=", "idc.modality", "MR"),
        "SELECT l.patient_id FROM identity_link l JOIN idc_patient ip "
        "ON l.commons = 'idc' AND ip.collection_id = l.namespace AND ip.patient_id = l.external_id "
        "JOIN imaging_series s ON s.idc_patient_id = ip.id WHERE s.modality = 'MR'",
    ),
    (
        "and",
        AND(leaf("=", "project.project_id", "TCGA-BRCA"), leaf("=", "demographic.vital_status", "Dead")),
        f"{project_sql('TCGA-BRCA')} INTERSECT "
        "SELECT patient_id FROM demographic WHERE vital_status = 'Dead'",
    ),
    (
        "or",
        OR(leaf("=", "project.project_id", "TCGA-CHOL"), leaf(">=", "diagnoses.age_at_diagnosis", 30000)),
        f"{project_sql('TCGA-CHOL')} UNION SELECT patient_id FROM diagnosis WHERE age_at_diagnosis >= 30000",
    ),
    (
        "nested_bool",
        AND(
            OR(leaf("=", "primary_site", "Pancreas"), leaf("=", "project.project_id", "TCGA-CHOL")),
            leaf("not", "demographic.days_to_death"),
        ),
        f"(SELECT id FROM patient WHERE primary_site = 'Pancreas' UNION {project_sql('TCGA-CHOL')}) "
        "INTERSECT SELECT patient_id FROM demographic WHERE days_to_death IS NOT NULL",
    ),
    (
        "cases_prefix",
        leaf(">=", "cases.diagnoses.age_at_diagnosis", 20000),
        "SELECT patient_id FROM diagnosis WHERE age_at_diagnosis >= 20000",
    ),
    (
        "op_spelling_is_lenient",
        {"op": " IN ", "content": {"field": "project.project_id", "value": ["TCGA-LUAD"]}},
        project_sql("TCGA-LUAD"),
    ),
]


@pytest.mark.parametrize(("name", "filters", "sql"), SQL_CASES, ids=[c[0] for c in SQL_CASES])
def test_op_matches_hand_written_sql(sample_conn: Connection, name: str, filters: Any, sql: str) -> None:
    expected = ids(sample_conn, sql)
    everyone = ids(sample_conn, ALL)
    # every case is chosen so that the filter is neither empty nor everything: a no-op would fail it
    assert 0 < len(expected) < len(everyone), name
    assert members(sample_conn, filters) == expected


def test_boundaries_and_nested_semantics_differ_where_they_should(sample_conn: Connection) -> None:
    at_age = ids(sample_conn, f"SELECT patient_id FROM diagnosis WHERE age_at_diagnosis = {_AGE}")
    assert len(at_age) == 2
    lt = members(sample_conn, leaf("<", "diagnoses.age_at_diagnosis", _AGE))
    le = members(sample_conn, leaf("<=", "diagnoses.age_at_diagnosis", _AGE))
    gt = members(sample_conn, leaf(">", "diagnoses.age_at_diagnosis", _AGE))
    ge = members(sample_conn, leaf(">=", "diagnoses.age_at_diagnosis", _AGE))
    assert at_age <= le and at_age <= ge
    assert at_age - lt and at_age - gt  # a patient's other diagnosis may still be below/above
    assert le - lt <= at_age and ge - gt <= at_age
    exclude = members(sample_conn, leaf("exclude", "diagnoses.classification_of_tumor", ["not reported"]))
    anyof = members(sample_conn, leaf("excludeifany", "diagnoses.classification_of_tumor", ["not reported"]))
    assert anyof < exclude


def test_empty_and_or_and_no_filter(sample_conn: Connection) -> None:
    everyone = ids(sample_conn, ALL)
    assert len(everyone) == 1769
    assert members(sample_conn, AND()) == everyone
    assert members(sample_conn, OR()) == set()
    assert members(sample_conn, None) == everyone
    assert members(sample_conn, {}) == everyone
    assert members(sample_conn, AND(OR())) == set()
    assert members(sample_conn, OR(AND())) == everyone


def test_retired_rows_are_never_values(sample_conn: Connection) -> None:
    release = int(sample_conn.execute(text("SELECT min(id) FROM source_release")).scalar_one())
    p = submitter(sample_conn, "TCGA-50-5072")
    q = submitter(sample_conn, "TCGA-BH-A0EA")
    has_diagnosis = leaf("not", "diagnoses.classification_of_tumor")
    assert p in members(sample_conn, has_diagnosis)
    sample_conn.execute(
        text("UPDATE diagnosis SET retired_release_id = :r WHERE patient_id = :p"), {"r": release, "p": p}
    )
    sample_conn.execute(
        text("UPDATE patient SET retired_release_id = :r WHERE id = :q"), {"r": release, "q": q}
    )
    assert p not in members(sample_conn, has_diagnosis)
    assert p in members(sample_conn, leaf("is", "diagnoses.classification_of_tumor", "MISSING"))
    assert q not in members(sample_conn, None)
    assert count(sample_conn, None, EVERYTHING) == 1768


# -- 1b. cross-check against the mirror's independent evaluator ----------------------------------------------

# Which table a field's values come from, to find patients whose rows all came from the GDC API. The sample
# graph also imports portal files (BCR Biotab, a 2019 clinical JSON, portal TSVs) that add diagnoses (e.g. an
# ajcc_pathologic_stage the API document lacks) or rewrite demographics for some API-harvested patients; those
# patients legitimately differ from the API documents, so the cross-check leaves them out.
_FIELD_TABLES = (
    ("diagnoses.treatments.", "treatment"),
    ("diagnoses.", "diagnosis"),
    ("demographic.", "demographic"),
    ("samples.", "sample"),
    ("follow_ups.", "follow_up"),
    ("exposures.", "exposure"),
)


def filter_fields(node: Any) -> set[str]:
    if not isinstance(node, dict):
        return set()
    content = node.get("content")
    if isinstance(content, list):
        return set().union(*(filter_fields(c) for c in content)) if content else set()
    if isinstance(content, dict) and isinstance(content.get("field"), str):
        return {content["field"].removeprefix("cases.")}
    return set()


def tables_of(fields: set[str]) -> set[str]:
    out: set[str] = set()
    for f in fields:
        for prefix, table in _FIELD_TABLES:
            if f.startswith(prefix):
                out.add(table)
                break
    return out


class Crosscheck:
    """The mirror's documents and, per set of tables, the case ids whose rows are all API-sourced."""

    def __init__(self, store: MirrorStore, engine: Engine) -> None:
        self.index = store.index("cases")
        self._engine = engine
        self._universes: dict[frozenset[str], set[str]] = {}
        with engine.connect() as conn:
            self.case_of = {int(i): str(c) for i, c in conn.execute(text("SELECT id, case_id FROM patient"))}

    def universe(self, tables: set[str]) -> set[str]:
        key = frozenset(tables)
        if key not in self._universes:
            sql = (
                "SELECT p.case_id::text FROM patient p "
                "JOIN source_document sd ON sd.id = p.source_document_id "
                "WHERE sd.source = 'gdc_api' AND p.retired_release_id IS NULL"
            )
            for t in sorted(tables):
                sql += (
                    f" AND NOT EXISTS (SELECT 1 FROM {t} x LEFT JOIN source_document s "
                    "ON s.id = x.source_document_id "
                    "WHERE x.patient_id = p.id AND s.source IS DISTINCT FROM 'gdc_api')"
                )
            with self._engine.connect() as conn:
                self._universes[key] = {str(r[0]) for r in conn.execute(text(sql))}
        return self._universes[key]

    def mirror(self, filters: Any) -> set[str]:
        node = parse_filters(filters, "cases")
        if node is None:
            return set(self.index.ids)
        return {self.index.ids[i] for i in evaluate(node, self.index.column, len(self.index))}

    def engine(self, conn: Connection, filters: Any) -> set[str]:
        return {self.case_of[i] for i in member_ids(conn, filters, EVERYTHING)}


@pytest.fixture(scope="module")
def crosscheck(tmp_path_factory: pytest.TempPathFactory, gdc_data: Path, sample_engine: Engine) -> Crosscheck:
    out = tmp_path_factory.mktemp("mirror")
    build_mirror_directory(gdc_data, out)
    return Crosscheck(MirrorStore.from_directory(out), sample_engine)


MIRROR_CASES: list[dict[str, Any]] = [
    leaf("=", "project.project_id", "TCGA-CHOL"),
    leaf("!=", "project.project_id", "TCGA-BRCA"),
    leaf("in", "project.project_id", ["CPTAC-3", "TCGA-PAAD"]),
    leaf("exclude", "project.project_id", ["TCGA-BRCA", "CPTAC-3"]),
    leaf("excludeifany", "project.project_id", ["TCGA-BRCA"]),
    leaf("in", "primary_site", ["Pancreas", "Kidney"]),
    leaf("!=", "primary_site", "Pancreas"),
    leaf("is", "primary_site", "MISSING"),
    leaf("not", "primary_site"),
    leaf("exclude", "disease_type", ["Adenomas and Adenocarcinomas"]),
    leaf("=", "demographic.vital_status", "Dead"),
    leaf("!=", "demographic.vital_status", "Alive"),
    leaf("in", "demographic.race", ["asian", "white"]),
    leaf("is", "demographic.race", "MISSING"),
    leaf("not", "demographic.days_to_death"),
    leaf("<", "diagnoses.age_at_diagnosis", _AGE),
    leaf("<=", "diagnoses.age_at_diagnosis", _AGE),
    leaf(">", "diagnoses.age_at_diagnosis", _AGE),
    leaf(">=", "diagnoses.age_at_diagnosis", "20000"),
    leaf("=", "diagnoses.age_at_diagnosis", _AGE),
    leaf("=", "diagnoses.classification_of_tumor", "primary"),
    leaf("exclude", "diagnoses.classification_of_tumor", ["not reported"]),
    leaf("excludeifany", "diagnoses.classification_of_tumor", ["not reported"]),
    leaf("is", "diagnoses.classification_of_tumor", "MISSING"),
    leaf("not", "diagnoses.classification_of_tumor"),
    leaf("in", "diagnoses.primary_diagnosis", ["*carcinoma, NOS"]),
    leaf("=", "diagnoses.primary_diagnosis", "Infiltrating*"),
    leaf("=", "diagnoses.primary_diagnosis", "*duct*"),
    leaf("=", "diagnoses.primary_diagnosis", "Infiltrating_duct*"),
    leaf("=", "diagnoses.primary_diagnosis", "%"),
    leaf("in", "diagnoses.ajcc_pathologic_stage", ["Stage I*"]),
    leaf("exclude", "diagnoses.ajcc_pathologic_stage", ["Stage IIA"]),
    leaf("=", "samples.sample_type", "Primary Tumor"),
    leaf("exclude", "samples.sample_type", ["Primary Tumor"]),
    leaf("excludeifany", "samples.sample_type", ["Blood Derived Normal"]),
    leaf("!=", "samples.sample_type", "Solid Tissue Normal"),
    leaf("is", "samples.sample_type", "MISSING"),
    leaf("=", "samples.is_ffpe", True),
    leaf("!=", "samples.is_ffpe", "true"),
    leaf(">", "exposures.pack_years_smoked", 30),
    leaf(">=", "follow_ups.bmi", 30.5),
    leaf("=", "primary_site", "pancreas"),  # case-sensitive in both
    leaf("=", "cases.project.project_id", "TCGA-PAAD"),
    AND(),
    OR(),
    AND(leaf("=", "project.project_id", "CPTAC-3"), leaf("=", "demographic.vital_status", "Alive")),
    OR(leaf("=", "project.project_id", "TCGA-CHOL"), leaf(">=", "diagnoses.age_at_diagnosis", 30000)),
    AND(
        OR(leaf("in", "primary_site", ["Pancreas"]), leaf("excludeifany", "samples.sample_type", ["x"])),
        leaf("exclude", "diagnoses.classification_of_tumor", ["primary"]),
    ),
]


@pytest.mark.parametrize("filters", MIRROR_CASES, ids=[str(i) for i in range(len(MIRROR_CASES))])
def test_engine_agrees_with_mirror_evaluator(
    sample_conn: Connection, crosscheck: Crosscheck, filters: dict[str, Any]
) -> None:
    universe = crosscheck.universe(tables_of(filter_fields(filters)))
    assert len(universe) > 400
    assert crosscheck.engine(sample_conn, filters) & universe == crosscheck.mirror(filters) & universe


def test_mirror_crosscheck_is_not_vacuous(sample_conn: Connection, crosscheck: Crosscheck) -> None:
    nontrivial = 0
    for filters in MIRROR_CASES:
        universe = crosscheck.universe(tables_of(filter_fields(filters)))
        n = len(crosscheck.engine(sample_conn, filters) & universe)
        nontrivial += 0 < n < len(universe)
    assert nontrivial >= len(MIRROR_CASES) - 8
    # the API documents themselves: every harvested case is in the mirror, and most in the universe
    assert crosscheck.universe(set()) <= set(crosscheck.index.ids)
    assert len(crosscheck.universe(set())) == 1557


def test_sex_at_birth_is_the_normalised_gender(sample_conn: Connection, crosscheck: Crosscheck) -> None:
    # demographic.sex_at_birth reads oncograph's normalised ``sex`` (fields.py); the recorded API documents
    # are of the pre-2025 era and carry only ``gender``. Both eras must select the same cases.
    universe = crosscheck.universe({"demographic"})
    for value in ("male", "female"):
        ours = crosscheck.engine(sample_conn, leaf("=", "cases.demographic.sex_at_birth", [value])) & universe
        theirs = crosscheck.mirror(leaf("=", "demographic.gender", [value])) & universe
        assert ours == theirs and ours
        assert crosscheck.mirror(leaf("=", "demographic.sex_at_birth", [value])) == set()


# -- 2. exclude vs excludeifany on a patient with a matching and a non-matching record -----------------------


def test_exclude_keeps_mixed_patient_excludeifany_removes_it(sample_conn: Connection) -> None:
    mixed = sorted(
        ids(
            sample_conn,
            "SELECT patient_id FROM diagnosis WHERE retired_release_id IS NULL GROUP BY patient_id "
            "HAVING bool_or(classification_of_tumor = 'metastasis') "
            "AND bool_or(classification_of_tumor <> 'metastasis')",
        )
    )
    assert mixed, "the sample graph has patients with a metastasis and another diagnosis (TCGA-LUAD)"
    only_metastasis = ids(
        sample_conn,
        "SELECT patient_id FROM diagnosis GROUP BY patient_id "
        "HAVING bool_and(classification_of_tumor = 'metastasis')",
    )
    exclude = members(sample_conn, leaf("exclude", "diagnoses.classification_of_tumor", ["metastasis"]))
    anyof = members(sample_conn, leaf("excludeifany", "diagnoses.classification_of_tumor", ["metastasis"]))
    assert set(mixed) <= exclude
    assert not set(mixed) & anyof
    assert not only_metastasis & exclude
    assert exclude - anyof == set(mixed)
    # the documented example's shape (GDC docs Search_and_Retrieval.md "exclude and excludeifany Operators")
    p = mixed[0]
    case_id = str(
        sample_conn.execute(text("SELECT case_id FROM patient WHERE id = :p"), {"p": p}).scalar_one()
    )
    one = leaf("=", "case_id", [case_id])

    def documented(op: str) -> set[int]:
        return members(sample_conn, AND(one, leaf(op, "diagnoses.classification_of_tumor", ["metastasis"])))

    assert documented("=") == {p}
    assert documented("exclude") == {p}
    assert documented("excludeifany") == set()


def test_exclude_vs_excludeifany_on_samples(sample_conn: Connection) -> None:
    mixed = ids(
        sample_conn,
        "SELECT patient_id FROM sample GROUP BY patient_id "
        "HAVING bool_or(sample_type = 'Primary Tumor') AND bool_or(sample_type <> 'Primary Tumor')",
    )
    assert len(mixed) > 10
    exclude = members(sample_conn, leaf("exclude", "samples.sample_type", ["Primary Tumor"]))
    anyof = members(sample_conn, leaf("excludeifany", "samples.sample_type", ["Primary Tumor"]))
    assert mixed <= exclude and not mixed & anyof
    without_samples = ids(sample_conn, f"{ALL} EXCEPT SELECT patient_id FROM sample")
    assert without_samples <= exclude and without_samples <= anyof


# -- 3. wildcards, and % / _ / \ are literal -----------------------------------------------------------------


def test_wildcards(sample_conn: Connection) -> None:
    def diag(where: str) -> set[int]:
        return ids(sample_conn, f"SELECT patient_id FROM diagnosis WHERE {where}")

    prefix = members(sample_conn, leaf("=", "diagnoses.primary_diagnosis", "Infiltrating*"))
    assert prefix == diag("starts_with(primary_diagnosis, 'Infiltrating')") and prefix
    suffix = members(sample_conn, leaf("in", "diagnoses.primary_diagnosis", ["*, NOS"]))
    assert suffix == diag("right(primary_diagnosis, 5) = ', NOS'") and suffix
    infix = members(sample_conn, leaf("in", "diagnoses.primary_diagnosis", ["*duct*"]))
    assert infix == diag("strpos(primary_diagnosis, 'duct') > 0") and infix
    both = members(sample_conn, leaf("in", "diagnoses.primary_diagnosis", ["Infiltrating*", "*, NOS"]))
    assert both == prefix | suffix
    exact_and_pattern = members(sample_conn, leaf("in", "primary_site", ["Kidney", "Panc*"]))
    assert exact_and_pattern == ids(
        sample_conn,
        "SELECT id FROM patient WHERE primary_site = 'Kidney' OR starts_with(primary_site, 'Panc')",
    )
    anything = members(sample_conn, leaf("=", "primary_site", "*"))
    assert anything == ids(sample_conn, "SELECT id FROM patient WHERE primary_site IS NOT NULL")
    # wildcards in exclude / excludeifany
    assert members(sample_conn, leaf("excludeifany", "primary_site", ["Panc*"])) == ids(
        sample_conn,
        "SELECT id FROM patient WHERE primary_site IS NULL OR NOT starts_with(primary_site, 'Panc')",
    )


@pytest.mark.parametrize(
    "value",
    [
        "%",
        "%*",
        "*%",
        "*%*",
        "_*",
        "Pancrea%",
        "Pancrea_",
        "Pancrea_*",
        "P%s",
        "Infiltrating_duct*",
        "Infiltrating%duct*",
        "*\\*",
        "\\%*",
        "Pancreas\\",
    ],
)
def test_like_metacharacters_are_literal(sample_conn: Connection, value: str) -> None:
    field = "diagnoses.primary_diagnosis" if value.startswith("Infiltrating") else "primary_site"
    assert members(sample_conn, leaf("=", field, value)) == set()
    assert members(sample_conn, leaf("in", field, [value, "no such value"])) == set()


def test_wildcard_control_values_do_match(sample_conn: Connection) -> None:
    # the same shapes without the metacharacters match, so the empty results above are not vacuous
    assert members(sample_conn, leaf("=", "primary_site", "Pancrea*"))
    assert members(sample_conn, leaf("=", "primary_site", "P*s"))
    assert members(sample_conn, leaf("=", "diagnoses.primary_diagnosis", "Infiltrating duct*"))


# -- 4. documented and recorded GDC example filters ----------------------------------------------------------


def test_documented_examples_from_gdc_api_md(sample_conn: Connection) -> None:
    # GDC_API.md §3 table
    male = {"op": "=", "content": {"field": "cases.demographic.sex_at_birth", "value": ["male"]}}
    assert members(sample_conn, male) == ids(
        sample_conn, "SELECT patient_id FROM demographic WHERE sex = 'male'"
    )
    barcodes = ["TCGA-CK-4948", "TCGA-D1-A17N", "TCGA-4V-A9QX", "TCGA-4V-A9QM"]
    by_barcode = {"op": "in", "content": {"field": "cases.submitter_id", "value": barcodes[:2]}}
    assert members(sample_conn, by_barcode) == ids(
        sample_conn, "SELECT id FROM patient WHERE submitter_id IN ('TCGA-CK-4948', 'TCGA-D1-A17N')"
    )
    adults = {"op": ">=", "content": {"field": "diagnoses.age_at_diagnosis", "value": 6570}}
    assert members(sample_conn, adults) == ids(
        sample_conn, "SELECT patient_id FROM diagnosis WHERE age_at_diagnosis >= 6570"
    )
    no_race = {"op": "is", "content": {"field": "demographic.race", "value": "MISSING"}}
    assert members(sample_conn, no_race) == ids(
        sample_conn, f"{ALL} EXCEPT SELECT patient_id FROM demographic WHERE race IS NOT NULL"
    )
    metastasis = {
        "op": "exclude",
        "content": {"field": "diagnoses.classification_of_tumor", "value": ["metastasis"]},
    }
    assert members(sample_conn, metastasis)
    # the full POST /files docs example, asked of /cases (files.* fields)
    docs_post = {
        "op": "and",
        "content": [
            {"op": "in", "content": {"field": "cases.submitter_id", "value": barcodes}},
            {"op": "=", "content": {"field": "files.data_type", "value": "Gene Expression Quantification"}},
        ],
    }
    assert members(sample_conn, docs_post) == set()  # those four cases are not in the sample graph
    parsed = parse(docs_post)
    assert isinstance(parsed, BoolNode)
    names = [c.field.name for c in parsed.children if isinstance(c, Leaf)]
    assert names == ["submitter_id", "files.data_type"]


def test_recorded_request_submitter_id_example(sample_conn: Connection, gdc_data: Path) -> None:
    recorded = json.loads(
        (gdc_data / "gdc_api_json" / "gdc_cases_filter_submitter_id_TCGA-BH-A0EA.json").read_text()
    )
    filters = json.loads(parse_qs(urlsplit(recorded["_source"]["request"]).query)["filters"][0])
    got = member_ids(sample_conn, filters, EVERYTHING)
    case_ids = [
        str(r[0])
        for r in sample_conn.execute(text("SELECT case_id FROM patient WHERE id = ANY(:ids)"), {"ids": got})
    ]
    assert case_ids == [hit["id"] for hit in recorded["response"]["data"]["hits"]]


def test_documented_exclude_excludeifany_payloads_parse_and_run(sample_conn: Connection) -> None:
    # verbatim filters of the GDC docs (Search_and_Retrieval.md; recorded responses
    # gdc_cases_HCMI_exclude_op.json and gdc_cases_excludeifany_zero_hits.json); the HCMI case is not in the
    # sample graph, so 0 hits each
    def payload(op: str) -> dict[str, Any]:
        return AND(
            leaf("=", "case_id", ["33165ed4-5f38-4566-8d0d-82e2a6d2743f"]),
            leaf(op, "diagnoses.classification_of_tumor", ["metastasis"]),
        )

    for op in ("=", "exclude", "excludeifany"):
        assert isinstance(parse(payload(op)), BoolNode)
        assert count(sample_conn, payload(op), EVERYTHING) == 0


def test_documented_filters_and_facets_example_runs(sample_conn: Connection) -> None:
    # GDC docs Search_and_Retrieval.md "Facets" POST example (gdc_cases_filters_and_facets_post.json)
    filters = AND(
        leaf("=", "cases.project.primary_site", "Kidney"),
        leaf("=", "project.program.name", "TCGA"),
    )
    expected = ids(
        sample_conn,
        "SELECT p.id FROM patient p JOIN project pr ON pr.id = p.project_id "
        "JOIN program pg ON pg.id = pr.program_id "
        "WHERE 'Kidney' = ANY(pr.primary_site) AND pg.name = 'TCGA'",
    )
    assert members(sample_conn, filters) == expected


def test_recorded_examples_on_fields_the_graph_does_not_hold_are_located_errors() -> None:
    # gdc_cases_expand_follow_ups_5hits.json / _1hits.json (Additional_Examples.md): follow_ups.
    # other_clinical_attributes is not part of the graph, so the engine rejects it (no silent non-match)
    for raw in (
        {"op": "not", "content": {"field": "follow_ups.other_clinical_attributes.submitter_id"}},
        {"op": ">=", "content": {"field": "follow_ups.other_clinical_attributes.height", "value": 225}},
    ):
        with pytest.raises(FilterError) as err:
            parse(raw)
        assert [p.loc for p in err.value.problems] == ["filters.content.field"]
    # gdc_analysis_top_mutated_cases_by_gene_demographic_diagnoses.json: genes/ssms fields -> both reported
    mutated = AND(
        leaf("=", "cases.project.project_id", "TCGA-DLBC"),
        leaf("in", "genes.gene_id", ["ENSG00000166710"]),
        leaf("in", "ssms.consequence.transcript.annotation.vep_impact", ["HIGH"]),
    )
    with pytest.raises(FilterError) as err:
        parse(mutated)
    assert [p.loc for p in err.value.problems] == [
        "filters.content[1].content.field",
        "filters.content[2].content.field",
    ]


# -- 5. errors -----------------------------------------------------------------------------------------------


def problems_of(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(FilterError) as err:
        parse(raw)
    problems = [(p.loc, p.msg) for p in err.value.problems]
    assert problems
    assert err.value.problems[0].loc in str(err.value)
    assert all(p.to_json() == {"loc": p.loc, "msg": p.msg} for p in err.value.problems)
    return problems


def test_unknown_field_with_suggestion() -> None:
    [(loc, msg)] = problems_of(leaf(">=", "diagnoses.age_at_diagnosys", 20000))
    assert loc == "filters.content.field"
    assert "unknown field" in msg and "diagnoses.age_at_diagnosis" in msg
    [(loc, msg)] = problems_of(AND(leaf("=", "cases.project.projectid", "TCGA-BRCA")))
    assert loc == "filters.content[0].content.field" and "project.project_id" in msg


@pytest.mark.parametrize(
    ("raw", "loc", "words"),
    [
        (leaf("=", "diagnoses.age_at_diagnosis", "old"), "filters.content.value", "number"),
        (leaf("in", "diagnoses.age_at_diagnosis", [1, "x", 3]), "filters.content.value[1]", "number"),
        (leaf(">", "diagnoses.age_at_diagnosis", True), "filters.content.value", "number"),
        (leaf("=", "diagnoses.age_at_diagnosis", "inf"), "filters.content.value", "number"),
        (leaf(">", "samples.is_ffpe", True), "filters.content.value", "cannot compare"),
        (leaf("=", "samples.is_ffpe", "yes"), "filters.content.value", "boolean"),
        (leaf("=", "primary_site", {"a": 1}), "filters.content.value", "got dict"),
        (leaf("in", "primary_site", ["Pancreas", None]), "filters.content.value[1]", "MISSING"),
        (leaf("=", "primary_site", "Pan\x00creas"), "filters.content.value", "NUL"),
        ({"op": "and", "content": {"op": "=", "content": {}}}, "filters.content", "list"),
        ({"op": "or"}, "filters.content", "list"),
        ({"op": "=", "content": ["project.project_id"]}, "filters.content", "'field' and 'value'"),
        ({"op": "=", "content": {"field": "project.project_id"}}, "filters.content.value", "needs a 'value'"),
        ({"op": "=", "content": {"value": "x"}}, "filters.content.field", "missing"),
        (
            {"op": "like", "content": {"field": "project.project_id", "value": "x"}},
            "filters.op",
            "unknown op",
        ),
        ({"content": []}, "filters.op", "missing"),
        ({"op": 3, "content": []}, "filters.op", "not a string"),
        (leaf("is", "primary_site", "Pancreas"), "filters.content.value", "MISSING"),
        (leaf("not", "primary_site", ["MISSING"]), "filters.content.value", "MISSING"),
        (leaf("in", "primary_site", []), "filters.content.value", "empty value list"),
        (leaf(">", "diagnoses.age_at_diagnosis", [1, 2]), "filters.content.value", "exactly one"),
        (["project.project_id"], "filters", "must be an object"),
        ("project.project_id = TCGA-BRCA", "filters", "must be an object"),
        (AND("x"), "filters.content[0]", "must be an object"),
    ],
)
def test_malformed_filters_report_their_location(raw: Any, loc: str, words: str) -> None:
    problems = problems_of(raw)
    assert problems[0][0] == loc, problems
    assert words.lower() in problems[0][1].lower(), problems


def test_extra_keys_and_depth_and_size_limits() -> None:
    problems = problems_of({"op": "=", "content": {"field": "primary_site", "value": "x"}, "oops": 1})
    assert problems[0][0] == "filters" and "unexpected keys" in problems[0][1]
    deep: dict[str, Any] = leaf("=", "primary_site", "Pancreas")
    for _ in range(40):
        deep = AND(deep)
    problems = problems_of(deep)
    assert len(problems) == 1 and "deeper" in problems[0][1]
    assert problems[0][0].startswith("filters" + ".content[0]" * 33)
    problems = problems_of(leaf("in", "primary_site", [f"v{i}" for i in range(10_001)]))
    assert problems == [("filters.content.value", "more than 10000 values")]


def test_a_filter_of_too_many_nodes_is_refused_before_it_is_typed_or_compiled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from oncograph.cohorts import filters as filters_module

    looked_up: list[str] = []
    real_get_field = filters_module.get_field

    def counting_get_field(name: str) -> Any:
        looked_up.append(name)
        return real_get_field(name)

    def no_compilation(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an oversized filter must not be compiled")

    monkeypatch.setattr(filters_module, "get_field", counting_get_field)
    monkeypatch.setattr(filters_module, "_leaf", no_compilation)
    huge = OR(*(leaf("=", "submitter_id", f"TCGA-{i:05d}") for i in range(20_000)))
    started = time.perf_counter()
    with pytest.raises(FilterError) as err:
        parse(huge)
    assert time.perf_counter() - started < 5  # a generous sanity bound: it once took a minute
    [problem] = err.value.problems
    assert problem.loc == "filters.content[999]"  # the node that crossed the limit (the 1,001st)
    assert "more than 1,000 nodes" in problem.msg and "'in'" in problem.msg
    assert looked_up == []  # refused before any field was looked up
    # the limit itself is fine, and one 'in' with the same values is one node
    parse(OR(*(leaf("=", "submitter_id", f"TCGA-{i:05d}") for i in range(999))))
    parse(leaf("in", "submitter_id", [f"TCGA-{i:05d}" for i in range(10_000)]))
    # the values of all leaves together are bounded too
    many = AND(*(leaf("in", "submitter_id", [f"v{j}-{i}" for i in range(10_000)]) for j in range(6)))
    [problem] = problems_of(many)
    assert problem == (
        "filters.content[5].content.value",
        "the filter has more than 50,000 values in all; split the query",
    )


def test_values_are_read_by_their_text_in_both_directions(sample_conn: Connection) -> None:
    # a string field given a JSON number means the number's text, as a number field given a numeric string
    # means the number (the GDC API coerces both ways)
    node = parse(leaf("in", "follow_ups.karnofsky_performance_status", [90, 80.0, 2.50, -3]))
    assert isinstance(node, Leaf) and node.values == ("90", "80", "2.5", "-3")
    node = parse(leaf("in", "diagnoses.age_at_diagnosis", ["20000", 20000.0]))
    assert isinstance(node, Leaf) and node.values == (20000, 20000)
    as_numbers = members(sample_conn, leaf("in", "follow_ups.karnofsky_performance_status", [90, 80.0]))
    as_text = members(sample_conn, leaf("in", "follow_ups.karnofsky_performance_status", ["90", "80"]))
    assert as_numbers == as_text and as_text
    older = members(sample_conn, leaf(">=", "diagnoses.age_at_diagnosis", "20000"))
    assert older == members(sample_conn, leaf(">=", "diagnoses.age_at_diagnosis", 20000)) and older
    # what cannot be of the field's type is a located problem, in both directions
    assert problems_of(leaf("in", "primary_site", ["Pancreas", float("nan")])) == [
        ("filters.content.value[1]", "'primary_site' is a string field, got the number nan")
    ]
    [(loc, msg)] = problems_of(leaf("in", "diagnoses.age_at_diagnosis", [1, "old"]))
    assert loc == "filters.content.value[1]" and "number field" in msg
    [(loc, msg)] = problems_of(leaf("=", "samples.is_ffpe", 1))
    assert loc == "filters.content.value" and "boolean field" in msg


def test_several_problems_are_reported_together() -> None:
    raw = AND(
        leaf("=", "project.project_id", "TCGA-BRCA"),  # fine
        leaf("=", "no.such.field", "x"),
        OR(leaf(">=", "diagnoses.age_at_diagnosis", "twenty"), leaf("is", "primary_site", "Pancreas")),
        {"op": "near", "content": {"field": "primary_site", "value": "x"}},
        leaf("in", "diagnoses.age_at_diagnosis", [1, "a", 2, "b"]),
    )
    with pytest.raises(FilterError) as err:
        parse(raw)
    locs = [p.loc for p in err.value.problems]
    assert locs == [
        "filters.content[1].content.field",
        "filters.content[2].content[0].content.value",
        "filters.content[2].content[1].content.value",
        "filters.content[3].op",
        "filters.content[4].content.value[1]",
        "filters.content[4].content.value[3]",
    ]
    assert "(and 5 more)" in str(err.value)


def test_errors_surface_from_every_query_entry_point(sample_conn: Connection) -> None:
    bad = leaf("=", "no_such_field", "x")
    for call in (
        lambda: count(sample_conn, bad, EVERYTHING),
        lambda: member_ids(sample_conn, bad, EVERYTHING),
        lambda: facets(sample_conn, bad, ["primary_site"], EVERYTHING),
        lambda: modality_matrix(sample_conn, bad, EVERYTHING),
    ):
        with pytest.raises(FilterError) as err:
            call()
        assert err.value.problems[0].loc == "filters.content.field"


def test_parse_types_values_by_field() -> None:
    node = parse(leaf("in", "diagnoses.age_at_diagnosis", ["20000", 1.5e4, " 7 ", "1e3"]))
    assert isinstance(node, Leaf) and node.values == (20000, 15000, 7, 1000)
    assert all(isinstance(v, int) for v in node.values)
    node = parse(leaf("=", "follow_ups.bmi", "30.5"))
    assert isinstance(node, Leaf) and node.values == (30.5,)
    node = parse(leaf("in", "samples.is_ffpe", ["TRUE", False, "false"]))
    assert isinstance(node, Leaf) and node.values == (True, False, False)
    node = parse(leaf("=", "primary_site", True))
    assert isinstance(node, Leaf) and node.values == ("true",)
    node = parse(leaf("not", "cases.primary_site"))
    assert isinstance(node, Leaf) and node.field is FIELDS["primary_site"] and node.values == ()


# -- 6. no SQL injection -------------------------------------------------------------------------------------

HOSTILE_FIELDS = [
    "project.project_id; DROP TABLE patient",
    'x" OR 1=1 --',
    "project.project_id' OR '1'='1",
    "patient.id",
    "cases.",
    "(SELECT 1)",
    "primary_site--",
]


@pytest.mark.parametrize("field", HOSTILE_FIELDS)
def test_hostile_field_names_are_unknown_fields(sample_conn: Connection, field: str) -> None:
    with pytest.raises(FilterError) as err:
        count(sample_conn, leaf("=", field, "x"), EVERYTHING)
    assert [p.loc for p in err.value.problems] == ["filters.content.field"]
    assert "unknown field" in err.value.problems[0].msg
    with pytest.raises(FilterError) as err:
        facets(sample_conn, None, ["primary_site", field], EVERYTHING)
    assert [p.loc for p in err.value.problems] == ["facets[1]"]


HOSTILE_VALUES = [
    "' OR '1'='1",
    "TCGA-BRCA'; DROP TABLE patient; --",
    'TCGA-BRCA" OR "1"="1',
    "*' OR '1'='1",
    "'; DELETE FROM diagnosis; --*",
    "$$ OR 1=1 $$",
    "E'\\x27'",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_values_are_bound_parameters(sample_conn: Connection, value: str) -> None:
    before = {
        t: int(sample_conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
        for t in ("patient", "diagnosis", "project")
    }
    for op in ("=", "in"):
        assert count(sample_conn, leaf(op, "project.project_id", value), EVERYTHING) == 0
        assert count(sample_conn, leaf(op, "diagnoses.primary_diagnosis", [value]), EVERYTHING) == 0
    # under exclude the hostile value matches nothing, so every patient stays
    assert (
        count(sample_conn, leaf("excludeifany", "project.project_id", [value]), EVERYTHING)
        == before["patient"]
    )
    total, [facet] = facets(sample_conn, leaf("=", "primary_site", value), ["primary_site"], EVERYTHING)
    assert total == 0 and facet.buckets == []
    after = {
        t: int(sample_conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
        for t in ("patient", "diagnosis", "project")
    }
    assert after == before
    assert sample_conn.execute(text("SELECT to_regclass('public.patient') IS NOT NULL")).scalar_one()


# -- 7. access scope -----------------------------------------------------------------------------------------


@pytest.fixture()
def controlled(sample_conn: Connection) -> Iterator[dict[str, set[int]]]:
    """TCGA-CHOL marked controlled; every file of a TCGA-BRCA patient made controlled (rolled back after)."""
    chol = ids(sample_conn, project_sql("TCGA-CHOL"))
    brca_files = ids(
        sample_conn,
        "SELECT fp.file_id FROM file_patient fp JOIN patient p ON p.id = fp.patient_id "
        "JOIN project pr ON pr.id = p.project_id WHERE pr.project_id = 'TCGA-BRCA'",
    )
    assert len(chol) == 51 and len(brca_files) > 50
    sample_conn.execute(text("UPDATE project SET controlled = true WHERE project_id = 'TCGA-CHOL'"))
    sample_conn.execute(
        text("UPDATE data_file SET access = 'controlled' WHERE id = ANY(:ids)"), {"ids": sorted(brca_files)}
    )
    refresh_patient_modalities(sample_conn)  # as an ingest's linking step would
    yield {"chol": chol, "brca_files": brca_files}


def _file_patients(conn: Connection, where: str) -> set[int]:
    return ids(
        conn,
        "SELECT fp.patient_id FROM file_patient fp JOIN data_file f ON f.id = fp.file_id "
        f"WHERE f.retired_release_id IS NULL AND {where}",
    )


def test_controlled_project_hidden_without_grant(
    sample_conn: Connection, controlled: dict[str, set[int]]
) -> None:
    chol = controlled["chol"]
    everyone = ids(sample_conn, ALL)
    brca_grant = Scope(principal="p", role="viewer", granted_projects=frozenset({"TCGA-BRCA"}))
    chol_grant = Scope(principal="p", role="viewer", granted_projects=frozenset({"TCGA-CHOL"}))
    assert members(sample_conn, None, EVERYTHING) == everyone
    assert members(sample_conn, None, VIEWER) == everyone - chol
    assert members(sample_conn, None, brca_grant) == everyone - chol
    assert members(sample_conn, None, chol_grant) == everyone
    is_chol = leaf("=", "project.project_id", "TCGA-CHOL")
    assert members(sample_conn, is_chol, VIEWER) == set()
    assert members(sample_conn, is_chol, brca_grant) == set()
    assert members(sample_conn, is_chol, chol_grant) == chol
    # a filter that would select CHOL patients by another field does not leak them either
    chol_by_sample = leaf("not", "samples.sample_type")
    assert (
        members(sample_conn, chol_by_sample, VIEWER)
        == ids(sample_conn, "SELECT patient_id FROM sample") - chol
    )
    for scope, hidden in ((VIEWER, True), (brca_grant, True), (chol_grant, False), (EVERYTHING, False)):
        total, [projects] = facets(sample_conn, None, ["project.project_id"], scope)
        keys = buckets_of(projects)
        assert ("TCGA-CHOL" in keys) is not hidden
        assert total == len(everyone) - (len(chol) if hidden else 0)
        matrix = modality_matrix(sample_conn, None, scope)
        assert matrix.total == total
        assert sum(c for _, c in matrix.combinations) == total


def test_controlled_files_hidden_without_grant(
    sample_conn: Connection, controlled: dict[str, set[int]]
) -> None:
    chol = controlled["chol"]
    brca_grant = Scope(principal="p", role="viewer", granted_projects=frozenset({"TCGA-BRCA"}))
    gene_expression = "f.data_type = 'Gene Expression Quantification'"
    with_all = _file_patients(sample_conn, gene_expression)
    with_open = _file_patients(sample_conn, f"{gene_expression} AND f.access IS DISTINCT FROM 'controlled'")
    assert with_open < with_all
    flt = leaf("=", "files.data_type", "Gene Expression Quantification")
    assert members(sample_conn, flt, EVERYTHING) == with_all
    assert members(sample_conn, flt, VIEWER) == with_open - chol
    assert members(sample_conn, flt, brca_grant) == with_all - chol
    # is MISSING on a file field flips with visibility too
    no_files = leaf("is", "files.data_type", "MISSING")
    assert members(sample_conn, no_files, VIEWER) & (with_all - with_open)
    assert not members(sample_conn, no_files, brca_grant) & with_all
    # facets never count a controlled file without the grant
    controlled_patients = _file_patients(sample_conn, "f.access = 'controlled'")
    _, [access] = facets(sample_conn, None, ["files.access"], VIEWER)
    assert "controlled" not in buckets_of(access)
    _, [access] = facets(sample_conn, None, ["files.access"], brca_grant)
    assert buckets_of(access)["controlled"] == len(controlled_patients - chol)
    _, [data_type] = facets(sample_conn, None, ["files.data_type"], VIEWER)
    assert buckets_of(data_type)["Gene Expression Quantification"] == len(with_open - chol)
    # the modality matrix: rnaseq from files, under each scope
    rnaseq = "(f.experimental_strategy = 'RNA-Seq' OR f.data_type = 'Gene Expression Quantification')"
    rna_all = _file_patients(sample_conn, rnaseq)
    rna_open = _file_patients(sample_conn, f"{rnaseq} AND f.access IS DISTINCT FROM 'controlled'")
    assert modality_matrix(sample_conn, None, EVERYTHING).modalities["rnaseq"] == len(rna_all)
    assert modality_matrix(sample_conn, None, VIEWER).modalities["rnaseq"] == len(rna_open - chol)
    assert modality_matrix(sample_conn, None, brca_grant).modalities["rnaseq"] == len(rna_all - chol)
    hidden_mods = modality_matrix(sample_conn, leaf("in", "modalities", ["rnaseq"]), VIEWER)
    assert hidden_mods.total == len(rna_open - chol) == hidden_mods.modalities["rnaseq"]
