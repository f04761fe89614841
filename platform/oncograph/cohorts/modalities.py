"""Data modalities per patient (slide, rnaseq, ct, mr, proteomics, embedding …): how each is recognised in the
graph, the materialised ``patient_modality`` view the cohort engine reads, and the live definition that view
must match (exports compute their masks from it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    FromClause,
    Select,
    Text,
    case,
    column,
    false,
    literal,
    or_,
    select,
    table,
    union_all,
)

from oncograph.access import Scope
from oncograph.access.policy import open_or_granted, visible_file
from oncograph.cohorts.values import (
    DATA_FILE,
    FILE_PATIENT,
    IDENTITY_LINK,
    IMAGING_SERIES,
    Source,
    idc_froms,
    live,
)
from oncograph.db.models import (
    Embedding,
)

#: Modalities derived per patient: label -> how to recognise it.
FILE_MODALITIES: Mapping[str, Callable[[FromClause], ColumnElement[bool]]] = {
    "slide": lambda f: f.c.is_slide.is_(True),
    "rnaseq": lambda f: or_(
        f.c.experimental_strategy == "RNA-Seq", f.c.data_type == "Gene Expression Quantification"
    ),
    "mirnaseq": lambda f: f.c.experimental_strategy == "miRNA-Seq",
    "wxs": lambda f: f.c.experimental_strategy == "WXS",
    "wgs": lambda f: f.c.experimental_strategy == "WGS",
    "methylation": lambda f: f.c.experimental_strategy == "Methylation Array",
    "genotyping": lambda f: f.c.experimental_strategy == "Genotyping Array",
    "clinical_text": lambda f: f.c.data_type == "Pathology Report",
}
#: IDC series modalities (DICOM Modality) per label.
IMAGING_MODALITIES: Mapping[str, tuple[str, ...]] = {
    "ct": ("CT",),
    "mr": ("MR",),
    "pet": ("PT",),
    "xray": ("CR", "DX"),
    "mammography": ("MG",),
    "ultrasound": ("US",),
    "slide": ("SM",),
}
MODALITIES: tuple[str, ...] = tuple(
    sorted({*FILE_MODALITIES, *IMAGING_MODALITIES, "proteomics", "embedding"})
)


#: The materialised per-patient modalities (migration 0007; refreshed after every ingest's linking step).
PATIENT_MODALITY = table(
    "patient_modality",
    column("patient_id", BigInteger),
    column("modality", Text),
    column("via_open_data", Boolean),
)


def modalities_source(scope: Scope) -> Source:
    """Modalities from ``patient_modality`` (visible without a grant when any source is not a controlled
    file), plus live embeddings."""
    pm = PATIENT_MODALITY.alias("fpm")
    conditions = [open_or_granted(scope, pm.c.via_open_data.is_(True), pm.c.patient_id)]
    e: FromClause = Embedding.__table__.alias("fme")
    sub = union_all(
        select(
            pm.c.patient_id.label("pid"),
            pm.c.modality.label("value"),
            pm.c.via_open_data.is_not(True).label("restricted"),
        ).where(*conditions),
        select(e.c.patient_id.label("pid"), literal("embedding").label("value"), false().label("restricted"))
        .where(e.c.patient_id.is_not(None))
        .distinct(),
    ).subquery("fm")
    return Source(sub.c.pid, sub.c.value, (sub,), restricted=sub.c.restricted)


def live_modalities(scope: Scope) -> Source:
    """The same modalities computed from the graph tables now (what ``patient_modality`` materialises, plus
    embeddings): the definition the view must match, and a fallback for checks."""
    parts: list[Select[Any]] = []
    for label, recognise in FILE_MODALITIES.items():
        fp = FILE_PATIENT.alias()
        f = DATA_FILE.alias()
        parts.append(
            select(fp.c.patient_id.label("pid"), literal(label).label("value"))
            .select_from(fp.join(f, f.c.id == fp.c.file_id))
            .where(visible_file(scope, f, fp.c.patient_id), recognise(f))
            .distinct()
        )
    series_labels = [(dicom, label) for label, dicoms in IMAGING_MODALITIES.items() for dicom in dicoms]
    link, ip, froms = idc_froms()
    s = IMAGING_SERIES.alias()
    parts.append(
        select(
            link.c.patient_id.label("pid"),
            case(*[(s.c.modality == dicom, label) for dicom, label in series_labels]).label("value"),
        )
        .select_from(froms.join(s, s.c.idc_patient_id == ip.c.id))
        .where(live(ip), live(s), s.c.modality.in_([d for d, _ in series_labels]))
        .distinct()
    )
    pdc = IDENTITY_LINK.alias()
    parts.append(
        select(pdc.c.patient_id.label("pid"), literal("proteomics").label("value"))
        .where(pdc.c.commons == "pdc")
        .distinct()
    )
    e: FromClause = Embedding.__table__.alias()
    parts.append(
        select(e.c.patient_id.label("pid"), literal("embedding").label("value"))
        .where(e.c.patient_id.is_not(None))
        .distinct()
    )
    sub = union_all(*parts).subquery("fm")
    return Source(sub.c.pid, sub.c.value, (sub,))
