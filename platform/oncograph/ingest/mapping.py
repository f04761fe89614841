"""Map GDC-shaped documents (from any source) onto typed graph rows, collecting every problem.

A mapped row holds only the columns its document delivered (absent keys stay absent, so a partial source
never blanks what a fuller one stored), its natural key, and the natural keys of its parents under
``_patient``/``_diagnosis``/``_sample``/... which the writer resolves to surrogate ids in SQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from oncograph.db.columns import CoercionError, ColumnType, canonical_uuid, coerce
from oncograph.db.kinds import CASE_CHILD_LISTS, KIND_BY_NAME, Kind
from oncograph.domain import Problem, SourceRecord

#: Namespace of keys derived for child records whose source carries no GDC UUID (e.g. 2020s portal TSVs).
DERIVED_KEY_NAMESPACE: Final = uuid.UUID("0c6d2f7e-5b7a-4a8e-9a51-6f1e0d3c9b21")

_SLIDE_CODE = re.compile(r"-\d{2}[A-Z]-\d{2}-(DX|TS|BS|MS)[A-Z0-9]*\.", re.IGNORECASE)
_SLIDE_FORMATS: Final = frozenset({"SVS", "JPEG 2000", "TIFF"})

#: Each kind's value columns filled from its document, in column order, without its key.
_VALUE_COLUMNS: Final[dict[str, tuple[tuple[str, ColumnType], ...]]] = {
    name: tuple((c, t) for c, t in kind.spec.columns.items() if c != kind.key)
    for name, kind in KIND_BY_NAME.items()
}


@dataclass(slots=True)
class MappedRecord:
    """One source record turned into graph rows (empty when it has problems)."""

    record: SourceRecord
    entity_id: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    links: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(kind, []).append(row)


def derived_key(kind: str, parent: str, local: str) -> str:
    return str(uuid.uuid5(DERIVED_KEY_NAMESPACE, f"{kind}|{parent}|{local}"))


def map_record(
    record: SourceRecord, *, case_ids_by_submitter: Mapping[str, str] | None = None
) -> MappedRecord:
    """Map one record. Problems (missing ids, values of the wrong type) leave ``rows`` empty."""
    entity_id = record.entity_id or _fallback_entity_id(record)
    mapped = MappedRecord(record, entity_id)
    for message in record.problems:
        mapped.problems.append(Problem(record.path, message))
    if not mapped.problems:
        nul = nul_fields(record.raw) or ([] if record.document is record.raw else nul_fields(record.document))
        if nul:
            shown = ", ".join(nul[:3]) + (f" ... ({len(nul)} in all)" if len(nul) > 3 else "")
            mapped.problems.append(
                Problem(
                    record.path,
                    f"a NUL character (\\x00) in {shown}, which cannot be stored; "
                    "remove it from the source and import it again",
                )
            )
    if not mapped.problems:
        mapper = _Mapper(mapped, case_ids_by_submitter or {})
        try:
            if record.entity_type == "case":
                mapper.case(record.document)
            elif record.entity_type == "file":
                mapper.file(record.document, record.path)
            else:
                mapper.project(record.document, record.path)
        except _Invalid:
            pass
    if mapped.problems:
        mapped.rows.clear()
        mapped.links.clear()
    return mapped


def nul_fields(value: Any) -> list[str]:
    """Where ``value`` (parsed JSON) holds a NUL character, as ``a.b[2]`` paths; empty when it holds none.

    PostgreSQL's text and jsonb cannot store U+0000, so such a record is quarantined instead of failing its
    batch. Checked on the serialised form first (orjson writes NUL as ``\\u0000``), walked only on a hit.
    """
    if b"\\u0000" not in orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS):
        return []
    return list(_nul_paths(value, ""))


def _nul_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path or "the value"
    elif isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                yield f"the key {here!r}"
            yield from _nul_paths(item, here)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nul_paths(item, f"{path}[{i}]")


def _fallback_entity_id(record: SourceRecord) -> str:
    doc = record.document
    for key in ("case_id", "file_id", "project_id", "submitter_id", "id"):
        value = doc.get(key) if isinstance(doc, dict) else None
        if isinstance(value, str) and value:
            return value.lower() if key in ("case_id", "file_id") else value
    return f"unidentified:{record.path}"


class _Invalid(Exception):
    """Stop mapping a record whose identity is unusable (the problem is already recorded)."""


class _Mapper:
    def __init__(self, mapped: MappedRecord, case_ids_by_submitter: Mapping[str, str]) -> None:
        self.m = mapped
        self.case_ids_by_submitter = case_ids_by_submitter

    # -- documents -------------------------------------------------------------------------------
    def case(self, doc: dict[str, Any]) -> None:
        submitter = doc.get("submitter_id")
        project_id = _project_id(doc)
        where = " > ".join(
            p
            for p in (
                f"project {project_id}" if project_id else "",
                f"case {submitter or doc.get('case_id') or '?'}",
            )
            if p
        )
        case_id = doc.get("case_id") or doc.get("id")
        if not case_id and isinstance(submitter, str):
            case_id = self.case_ids_by_submitter.get(submitter)
            if not case_id:
                self._problem(
                    where,
                    "no case_id, and no stored patient has submitter_id "
                    f"{submitter!r}: import a source that carries the GDC case UUID first",
                )
                raise _Invalid
        if not case_id:
            self._problem(where, "the document has neither case_id nor submitter_id")
            raise _Invalid
        case_key = self._key(case_id, where, "case_id")
        self.m.entity_id = case_key
        project = doc.get("project")
        if isinstance(project, dict):
            self.project(project, where)
        row = self._values("patient", doc, where)
        row["case_id"] = case_key
        if project_id:
            row["_project"] = project_id
        self.m.add("patient", row)
        demographic = doc.get("demographic")
        if isinstance(demographic, list):  # PDC-style list; GDC has one object
            demographic = demographic[0] if demographic else None
        if isinstance(demographic, dict):
            self._demographic(demographic, case_key, f"{where} > demographic")
        for i, dx in enumerate(_list(doc.get("diagnoses")), 1):
            self._diagnosis(dx, case_key, f"{where} > diagnosis {i}", i)
        for field_name, kind in CASE_CHILD_LISTS:
            for i, child in enumerate(_list(doc.get(field_name)), 1):
                row = self._child(kind, child, case_key, f"{where} > {kind} {i}", i)
                row["_patient"] = case_key
                self.m.add(kind, row)
        for i, sample in enumerate(_list(doc.get("samples")), 1):
            self._sample(sample, case_key, f"{where} > sample {i}", i)
        for i, file_doc in enumerate(_list(doc.get("files")), 1):
            file_doc = {**file_doc, "cases": [{"case_id": case_key}]}
            self.file(file_doc, f"{where} > file {i}")

    def project(self, doc: dict[str, Any], where: str) -> None:
        project_id = doc.get("project_id") or doc.get("id")
        if not isinstance(project_id, str) or not project_id:
            self._problem(where, "project without project_id")
            raise _Invalid
        row = self._values("project", doc, f"{where} > project")
        row["project_id"] = project_id
        program = doc.get("program")
        if isinstance(program, dict) and isinstance(program.get("name"), str):
            prow = self._values("program", program, f"{where} > program")
            self.m.add("program", prow)
            row["_program"] = program["name"]
        elif "-" in project_id:
            row["_program"] = project_id.split("-", 1)[0]
            self.m.add("program", {"name": row["_program"]})
        self.m.add("project", row)
        if self.m.record.entity_type == "project":
            self.m.entity_id = project_id

    def file(self, doc: dict[str, Any], where: str) -> None:
        file_id = doc.get("file_id") or doc.get("id")
        where = f"{where} > file {doc.get('file_name') or file_id or '?'}" if "> file" not in where else where
        if not file_id:
            self._problem(where, "file without file_id")
            raise _Invalid
        file_key = self._key(file_id, where, "file_id")
        if self.m.record.entity_type == "file":
            self.m.entity_id = file_key
        flat = dict(doc)
        if "md5" in flat and "md5sum" not in flat:
            flat["md5sum"] = flat["md5"]
        analysis = doc.get("analysis")
        if isinstance(analysis, dict) and "workflow_type" in analysis:
            flat["workflow_type"] = analysis["workflow_type"]
        row = self._values("data_file", flat, where)
        row["file_id"] = file_key
        kind = _slide_kind(doc)
        if kind is not None:
            row["slide_kind"] = kind
        self.m.add("data_file", row)
        for case in _list(doc.get("cases")):
            self._file_case_link(file_key, case)
            for sample in _list(case.get("samples")):
                self._file_sample_link(file_key, sample)
        for entity in _list(doc.get("associated_entities")):
            if entity.get("case_id"):
                self._file_case_link(file_key, {"case_id": entity["case_id"]})

    # -- children --------------------------------------------------------------------------------
    def _demographic(self, doc: dict[str, Any], case_key: str, where: str) -> None:
        row = self._values("demographic", doc, where)
        key = doc.get("demographic_id")
        row["demographic_id"] = (
            self._key(key, where, "demographic_id") if key else derived_key("demographic", case_key, "")
        )
        row["key_derived"] = not key
        row["_patient"] = case_key
        if "sex_at_birth" in doc or "gender" in doc:
            raw_sex = doc.get("sex_at_birth") or doc.get("gender")
            row["sex"] = raw_sex.strip().lower() if isinstance(raw_sex, str) else None
        if isinstance(row.get("vital_status"), str):
            row["vital_status"] = row["vital_status"].strip().title()
        self.m.add("demographic", row)

    def _diagnosis(self, doc: dict[str, Any], case_key: str, where: str, ordinal: int) -> None:
        row = self._child("diagnosis", doc, case_key, where, ordinal)
        row["_patient"] = case_key
        if "ajcc_pathologic_stage" in doc or "tumor_stage" in doc:
            row["stage"] = _stage(row.get("ajcc_pathologic_stage")) or _stage(row.get("tumor_stage"))
        self.m.add("diagnosis", row)
        dx_key = row["diagnosis_id"]
        for kind, field_name in (("treatment", "treatments"), ("pathology_detail", "pathology_details")):
            for i, child in enumerate(_list(doc.get(field_name)), 1):
                crow = self._child(kind, child, dx_key, f"{where} > {kind} {i}", i)
                crow["_patient"] = case_key
                crow["_diagnosis"] = dx_key
                self.m.add(kind, crow)

    def _sample(self, doc: dict[str, Any], case_key: str, where: str, ordinal: int) -> None:
        row = self._child("sample", doc, case_key, where, ordinal)
        row["_patient"] = case_key
        self.m.add("sample", row)
        for i, portion in enumerate(_list(doc.get("portions")), 1):
            pwhere = f"{where} > portion {i}"
            prow = self._child("portion", portion, row["sample_id"], pwhere, i)
            prow.update(_patient=case_key, _sample=row["sample_id"])
            self.m.add("portion", prow)
            for j, analyte in enumerate(_list(portion.get("analytes")), 1):
                awhere = f"{pwhere} > analyte {j}"
                arow = self._child("analyte", analyte, prow["portion_id"], awhere, j)
                arow.update(_patient=case_key, _portion=prow["portion_id"])
                self.m.add("analyte", arow)
                for k, aliquot in enumerate(_list(analyte.get("aliquots")), 1):
                    qrow = self._child("aliquot", aliquot, arow["analyte_id"], f"{awhere} > aliquot {k}", k)
                    qrow.update(_patient=case_key, _analyte=arow["analyte_id"])
                    self.m.add("aliquot", qrow)
            for j, slide in enumerate(_list(portion.get("slides")), 1):
                srow = self._child("slide", slide, prow["portion_id"], f"{pwhere} > slide {j}", j)
                srow.update(_patient=case_key, _portion=prow["portion_id"])
                self.m.add("slide", srow)

    def _child(
        self, kind: str, doc: dict[str, Any], parent_key: str, where: str, ordinal: int
    ) -> dict[str, Any]:
        spec_kind = KIND_BY_NAME[kind]
        row = self._values(kind, doc, where)
        key = doc.get(spec_kind.key)
        if key:
            row[spec_kind.key] = self._key(key, where, spec_kind.key)
            row["key_derived"] = False
        else:
            local = doc.get("submitter_id") or f"#{ordinal}"
            row[spec_kind.key] = derived_key(kind, parent_key, str(local))
            row["key_derived"] = True
        return row

    def _file_case_link(self, file_key: str, case: dict[str, Any]) -> None:
        if case.get("case_id"):
            self.m.links.setdefault("file_patient", []).append(
                {"_file": file_key, "_patient": str(case["case_id"]).lower()}
            )
        elif isinstance(case.get("submitter_id"), str):
            self.m.links.setdefault("file_patient_by_submitter", []).append(
                {"_file": file_key, "_submitter": case["submitter_id"]}
            )

    def _file_sample_link(self, file_key: str, sample: dict[str, Any]) -> None:
        if sample.get("sample_id"):
            self.m.links.setdefault("file_sample", []).append(
                {"_file": file_key, "_sample": str(sample["sample_id"]).lower()}
            )
        elif isinstance(sample.get("submitter_id"), str):
            self.m.links.setdefault("file_sample_by_submitter", []).append(
                {"_file": file_key, "_submitter": sample["submitter_id"]}
            )

    # -- values ----------------------------------------------------------------------------------
    def _values(self, kind: str, doc: Mapping[str, Any], where: str) -> dict[str, Any]:
        spec: Kind = KIND_BY_NAME[kind]
        row: dict[str, Any] = {}
        for name, col_type in _VALUE_COLUMNS[kind]:
            if name not in doc:
                continue
            value = doc[name]
            if value is None or (col_type == "text" and type(value) is str):
                row[name] = value  # what coerce gives, without the call (most values)
                continue
            try:
                row[name] = coerce(value, col_type)
            except CoercionError as exc:
                self._problem(f"{where} > {name}", str(exc))
        if spec.key in doc and spec.key_type == "text":
            row[spec.key] = doc[spec.key]
        return row

    def _key(self, value: Any, where: str, name: str) -> str:
        try:
            return canonical_uuid(value)
        except ValueError:
            self._problem(f"{where} > {name}", f"expected a GDC UUID, got {value!r}")
            raise _Invalid from None

    def _problem(self, path: str, message: str) -> None:
        self.m.problems.append(Problem(path, message))


def _list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _project_id(doc: Mapping[str, Any]) -> str | None:
    project = doc.get("project")
    if isinstance(project, dict) and isinstance(project.get("project_id"), str):
        return str(project["project_id"])
    return None


def _stage(value: Any) -> str | None:
    """``"stage iia"`` -> ``"Stage IIA"``; ``"Stage IIA"`` unchanged; ``"not reported"`` -> ``"Not Reported"``."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.lower().startswith("stage "):
        return "Stage " + text[6:].upper()
    return text.title() if text.islower() else text


def _slide_kind(doc: Mapping[str, Any]) -> str | None:
    strategy = doc.get("experimental_strategy")
    if strategy == "Diagnostic Slide":
        return "diagnostic"
    if strategy == "Tissue Slide":
        return "tissue"
    name = doc.get("file_name")
    is_image = doc.get("data_type") == "Slide Image" or doc.get("data_format") in _SLIDE_FORMATS
    if isinstance(name, str) and (is_image or name.lower().endswith(".svs")):
        match = _SLIDE_CODE.search(name)
        if match:
            return "diagnostic" if match.group(1).upper() == "DX" else "tissue"
        return "slide"
    return "slide" if is_image else None
