"""What PDC's answer items say about identity: derived keys, natural keys, the declared GDC case, file totals.

Pure functions over the JSON items the client returns (no database), shared by the import and its tests.
"""

from __future__ import annotations

import uuid
from typing import Any, Final, Literal

PDC_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://pdc.cancer.gov/graphql")
"""Namespace of derived keys (:func:`derived_key`)."""

KeyedEntity = Literal["case", "file"]


def derived_key(entity: KeyedEntity, natural: tuple[str, str]) -> str:
    """``uuid5(PDC_NAMESPACE, "pdc_<entity>:<a>:<b>")`` for an item that carries no PDC UUID."""
    return str(uuid.uuid5(PDC_NAMESPACE, ":".join((f"pdc_{entity}", *natural))))


def natural_key(entity: KeyedEntity, item: dict[str, Any], study: str | None) -> tuple[str, str] | None:
    """What a derived key is made of, or None when the item lacks it.

    A case: ``(project_submitter_id, case_submitter_id)``. A file: ``(study_submitter_id, else pdc_study_id,
    else the study selector it was fetched for, file_name)``.
    """
    if entity == "case":
        a, b = item.get("project_submitter_id"), item.get("case_submitter_id")
    else:
        a = item.get("study_submitter_id") or item.get("pdc_study_id") or study
        b = item.get("file_name")
    return (str(a), str(b)) if a and b else None


def declared_gdc_case_id(item: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """The GDC case UUID that PDC itself declares for a case: ``(uuid, field, problem)``.

    2019 PDC had ``gdc_case_id``; today's PDC lists ``externalReferences`` entries whose
    ``reference_resource_shortname`` is ``GDC`` (the id in ``external_reference_id``, ``reference_entity_alias``
    or the last segment of ``reference_entity_location``). Several different ids are a problem, not a guess.
    """
    candidates: list[str] = []
    if item.get("gdc_case_id"):
        candidates, source = [str(item["gdc_case_id"])], "gdc_case_id"
    else:
        source = "externalReferences"
        for ref in item.get("externalReferences") or []:
            if (
                not isinstance(ref, dict)
                or str(ref.get("reference_resource_shortname") or "").upper() != "GDC"
            ):
                continue
            tail = str(ref.get("reference_entity_location") or "").rstrip("/").rsplit("/", 1)[-1]
            for value in (ref.get("external_reference_id"), ref.get("reference_entity_alias"), tail):
                if _is_uuid(value):
                    candidates.append(str(value))
                    break
    distinct = sorted({c.lower() for c in candidates})
    if not distinct:
        return None, None, None
    if len(distinct) > 1:
        return None, None, f"several GDC case ids declared ({', '.join(distinct)}); none kept"
    if not _is_uuid(distinct[0]):
        return None, None, f"{source}: {distinct[0]!r} is not a UUID"
    return str(uuid.UUID(distinct[0])), source, None


def files_count_total(item: dict[str, Any]) -> int | None:
    """The sum of ``filesCount[].files_count`` when every entry has a count (PDC has no total field)."""
    counts = item.get("filesCount")
    if not isinstance(counts, list):
        return None
    values = [c.get("files_count") if isinstance(c, dict) else None for c in counts]
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return sum(ints) if len(ints) == len(values) else None


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return value is not None
