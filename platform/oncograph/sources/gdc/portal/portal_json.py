"""Portal JSON downloads and saved GDC API hits -> case, file or project records.

These files are already in the GDC API document shape, so each element becomes a record nearly as it is. The
additions, each listed under the document's ``_derived`` key (field -> where it came from), are:

- ``submitter_id`` from ``demographic.submitter_id`` minus its ``_demographic`` suffix, for the clinical
  exports (2019, 2022) that lack a top-level ``submitter_id``, and only when the rest is barcode-like;
- ``case_id``/``file_id``/``project_id`` from the API's ``id`` echo when a hit lacks them;
- ``cases`` from ``associated_entities`` for file metadata (``metadata.cart``/``metadata.repository``).

Elements that are not objects, lack every id, or nest wrongly (``diagnoses`` that is not a list of objects
...) get problems, so they are quarantined with their raw JSON.
"""

from __future__ import annotations

import re
from typing import Any, Final

from oncograph.domain.records import EntityType, SourceRecord

_DEMOGRAPHIC_SUBMITTER = re.compile(r"([A-Za-z0-9]+(?:-[A-Za-z0-9]+)+)_demographic")
_ENTITY_LISTS: Final[dict[str, tuple[str, str]]] = {
    "sample": ("samples", "sample_id"),
    "portion": ("portions", "portion_id"),
    "analyte": ("analytes", "analyte_id"),
    "aliquot": ("aliquots", "aliquot_id"),
    "slide": ("slides", "slide_id"),
}
"""associated_entities ``entity_type`` -> (list key under the case, id key)."""

_ANY: Final[dict[str, Any]] = {}
_PORTION: Final = {"analytes": [{"aliquots": [_ANY]}], "slides": [_ANY]}
CASE_SHAPE: Final[dict[str, Any]] = {
    "project": _ANY,
    "demographic": _ANY,
    "diagnoses": [{"treatments": [_ANY], "pathology_details": [_ANY]}],
    "follow_ups": [{"molecular_tests": [_ANY], "other_clinical_attributes": [_ANY]}],
    "exposures": [_ANY],
    "family_histories": [_ANY],
    "samples": [{"portions": [_PORTION]}],
}
"""Which keys of a case document must hold an object ({...}) or a list of objects ([{...}])."""
FILE_SHAPE: Final[dict[str, Any]] = {"cases": [CASE_SHAPE], "associated_entities": [_ANY]}


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def shape_problems(doc: dict[str, Any], shape: dict[str, Any], where: str = "") -> list[str]:
    """Problems where ``doc`` nests differently from ``shape`` (null values are allowed)."""
    problems: list[str] = []
    for key, spec in shape.items():
        value = doc.get(key)
        if value is None:
            continue
        path = f"{where}{key}"
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                problems.append(f"{path} is a JSON {_json_type(value)}, expected an object")
            elif spec:
                problems.extend(shape_problems(value, spec, f"{path}."))
        elif not isinstance(value, list):
            problems.append(f"{path} is a JSON {_json_type(value)}, expected a list")
        else:
            for index, item in enumerate(value):
                if not isinstance(item, dict):
                    problems.append(f"{path}[{index}] is a JSON {_json_type(item)}, expected an object")
                elif spec[0]:
                    problems.extend(shape_problems(item, spec[0], f"{path}[{index}]."))
    return problems


def _id_from_echo(doc: dict[str, Any], key: str, derived: dict[str, str]) -> None:
    if key not in doc and isinstance(doc.get("id"), str):
        doc[key] = doc["id"]
        derived[key] = "id"


def _case(
    doc: dict[str, Any], api: bool, derived: dict[str, str]
) -> tuple[str | None, str | None, list[str]]:
    if api:
        _id_from_echo(doc, "case_id", derived)
    if "submitter_id" not in doc:
        demographic = doc.get("demographic")
        submitter = demographic.get("submitter_id") if isinstance(demographic, dict) else None
        match = _DEMOGRAPHIC_SUBMITTER.fullmatch(submitter) if isinstance(submitter, str) else None
        if match is not None:
            doc["submitter_id"] = match.group(1)
            derived["submitter_id"] = "demographic.submitter_id"
    problems = shape_problems(doc, CASE_SHAPE)
    case_id, submitter = doc.get("case_id"), doc.get("submitter_id")
    for key, value in (("case_id", case_id), ("submitter_id", submitter)):
        if value is not None and not isinstance(value, str):
            problems.append(f"{key} is a JSON {_json_type(value)}, expected a string")
    if not case_id and not submitter:
        problems.append("missing case_id and submitter_id")
    entity_id = case_id.lower() if isinstance(case_id, str) and case_id else None
    return entity_id, submitter if isinstance(submitter, str) else entity_id, problems


def cases_from_entities(entities: list[Any]) -> list[dict[str, Any]]:
    """Group ``associated_entities`` by ``case_id`` into ``[{case_id, submitter_id?, aliquots/slides...}]``."""
    cases: dict[str, dict[str, Any]] = {}
    for entity in entities:
        if not isinstance(entity, dict) or not isinstance(entity.get("case_id"), str):
            continue
        case = cases.setdefault(entity["case_id"], {"case_id": entity["case_id"]})
        kind = entity.get("entity_type")
        if kind == "case":
            if isinstance(entity.get("entity_submitter_id"), str):
                case["submitter_id"] = entity["entity_submitter_id"]
            continue
        if kind not in _ENTITY_LISTS:
            continue
        list_key, id_key = _ENTITY_LISTS[kind]
        item = {}
        if "entity_id" in entity:
            item[id_key] = entity["entity_id"]
        if "entity_submitter_id" in entity:
            item["submitter_id"] = entity["entity_submitter_id"]
        items = case.setdefault(list_key, [])
        if item not in items:
            items.append(item)
    return list(cases.values())


def _file(
    doc: dict[str, Any], api: bool, derived: dict[str, str]
) -> tuple[str | None, str | None, list[str]]:
    if api:
        _id_from_echo(doc, "file_id", derived)
    entities = doc.get("associated_entities")
    if "cases" not in doc and isinstance(entities, list):
        doc["cases"] = cases_from_entities(entities)
        derived["cases"] = "associated_entities"
    problems = shape_problems(doc, FILE_SHAPE)
    file_id = doc.get("file_id")
    if not file_id:
        problems.append("missing file_id")
    elif not isinstance(file_id, str):
        problems.append(f"file_id is a JSON {_json_type(file_id)}, expected a string")
    entity_id = file_id.lower() if isinstance(file_id, str) and file_id else None
    name = doc.get("file_name")
    return entity_id, name if isinstance(name, str) else entity_id, problems


def _project(
    doc: dict[str, Any], api: bool, derived: dict[str, str]
) -> tuple[str | None, str | None, list[str]]:
    if api:
        _id_from_echo(doc, "project_id", derived)
    project_id = doc.get("project_id")
    if isinstance(project_id, str) and project_id:
        return project_id, project_id, []
    return None, None, ["missing project_id"]


def json_records(
    items: list[Any],
    raws: list[Any],
    entity_type: EntityType,
    api: bool,
    file_name: str,
    source: str,
) -> list[SourceRecord]:
    """One record per JSON element.

    Args:
        items: the parsed elements; they become the documents and are modified.
        raws: a second, untouched parse of the same elements, kept as ``raw``.
        entity_type: what every element is (decided for the whole file).
        api: whether the elements are GDC API hits (their ``id`` echoes the entity id).
        file_name: the file's name, for record paths.
        source: the records' source name.
    """
    handler = {"case": _case, "file": _file, "project": _project}[entity_type]
    records: list[SourceRecord] = []
    for index, (item, raw) in enumerate(zip(items, raws, strict=True)):
        if not isinstance(item, dict):
            records.append(
                SourceRecord(
                    source=source,
                    entity_type=entity_type,
                    entity_id=None,
                    document={},
                    raw=raw,
                    path=f"{file_name} > element {index}",
                    problems=(f"element {index} is a JSON {_json_type(item)}, not an object",),
                )
            )
            continue
        derived: dict[str, str] = {}
        entity_id, label, problems = handler(item, api, derived)
        if derived:
            item["_derived"] = derived
        records.append(
            SourceRecord(
                source=source,
                entity_type=entity_type,
                entity_id=entity_id,
                document=item,
                raw=raw,
                path=f"{file_name} > {entity_type} {label or f'at element {index}'}",
                problems=tuple(problems),
            )
        )
    return records
