"""The one shape every source is turned into before ingestion.

Every adapter (GDC API, portal TSV/JSON, biotab, sample sheet, manifest) yields :class:`SourceRecord`s whose
``document`` is in the GDC API's nested shape (a ``/cases`` hit with ``demographic``, ``diagnoses[].treatments``,
``samples[].portions[].analytes[].aliquots`` ...; or a ``/files`` hit). One mapper then turns documents into graph
rows, so the same patient arriving by API, TSV and JSON is one patient.

Document conventions:
- a key that the source did not provide is **absent**; a key the source gave as empty/null is ``None``
  (portal placeholders such as ``'--`` or ``[Not Available]`` become ``None``). Absent keys never overwrite
  stored values; ``None`` does.
- ``raw`` is what the source really delivered for this entity (the API hit, the TSV rows of one case), kept in
  ``source_document`` so no column or field is ever silently dropped. What many records of one delivery
  share (a TSV file's header) is a :class:`SharedDocument`, stored once; ``raw`` names it under ``"shared"``
  and :meth:`SourceRecord.whole_raw` puts it back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

EntityType = Literal["case", "file", "project"]

SHARED: Final = "shared"
"""The key of a record's ``raw`` that names its shared documents: ``{field: "<entity type>:<content hash>"}``."""


def content_hash(raw: Any) -> str:
    """The content hash of a raw document (sha256 of its JSON with sorted keys): a version's identity."""
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


def with_shared(raw: Any, parts: Mapping[str, Any]) -> Any:
    """``raw`` with the shared documents it names put in place (``parts``: field -> that document's raw)."""
    whole = {k: v for k, v in raw.items() if k != SHARED}
    whole.update(parts)
    return whole


@dataclass(frozen=True, slots=True)
class SharedDocument:
    """A part of many records' raw content (a TSV file's header), stored once as a source document of its own
    (its entity type, the content hash as its id): content-addressed and append-only like every document."""

    field: str
    """The field of the record's whole raw content it fills (``"columns"``)."""
    entity_type: str
    """Its ``source_document.entity_type`` (``"tsv_header"``)."""
    raw: Any
    content_hash: str
    location: str
    """Where it came from (the file's name)."""

    @property
    def ref(self) -> str:
        """How a record's ``raw`` names it."""
        return f"{self.entity_type}:{self.content_hash}"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One entity as delivered by one source, normalised to the GDC API document shape."""

    source: str
    """Where it came from: ``gdc_api``, ``gdc_portal_tsv``, ``gdc_portal_json``, ``gdc_biotab``, ..."""
    entity_type: EntityType
    entity_id: str | None
    """The GDC id (``case_id``/``file_id``/``project_id``) when the source has it, else None."""
    document: dict[str, Any]
    raw: Any
    path: str
    """Human-readable location for error reports, e.g. ``clinical.tsv > case TCGA-05-4244``."""
    problems: tuple[str, ...] = field(default=())
    """Problems the parser already found (bad row width, unparsable value ...); non-empty means quarantine."""
    shared: tuple[SharedDocument, ...] = field(default=())
    """The shared documents ``raw`` names (under ``"shared"``)."""

    def whole_raw(self) -> Any:
        """``raw`` with its shared documents in place (what a quarantine entry keeps, and what the stored
        documents give back: :func:`oncograph.lineage.lookup.whole_document`)."""
        if not self.shared:
            return self.raw
        return with_shared(self.raw, {doc.field: doc.raw for doc in self.shared})
