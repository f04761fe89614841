"""What an embedding run will embed: inputs resolved, hashed, attached to the graph, and already-done ones skipped.

:func:`plan` turns what the user named (local paths, ``s3://`` URIs, GDC file ids, a cohort) into one
:class:`Job` per object. A job is plain data (it crosses to Ray workers by pickle): the local file to read, its
checksums, where it belongs in the graph (:mod:`oncograph.embeddings.attach`) and the embedding key it will be
stored under. An object already embedded with the same encoder version and input checksum is counted as
skipped, so a re-run, or a run resumed after a kill, embeds only what is missing. Inputs that cannot be read at
all (a missing path, a non-DICOM file among scans) become failures with their reason; they never stop the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.access import Scope
from oncograph.access.principals import ensure_local_principal
from oncograph.cohorts.analysis import visible_members
from oncograph.embeddings.attach import Attachment, attach_file, attach_series
from oncograph.embeddings.dicom_wsi import DicomSlide, split_dicom_slides
from oncograph.embeddings.encoders import EncoderSpec
from oncograph.embeddings.inputs import LocalInput, gdc_input, resolve_inputs
from oncograph.embeddings.text import render_summaries
from oncograph.errors import OncographError, ValidationError
from oncograph.settings import Settings

MODALITIES = ("slide", "scan", "text")


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """What to embed and how (the CLI's and the flow's parameters)."""

    modality: str
    encoder: str | None = None
    paths: tuple[str, ...] = ()
    cohort_id: int | None = None
    gdc_file_ids: tuple[str, ...] = ()
    mpp: float | None = None
    """Level-0 µm/px of slides that carry neither µm/px nor objective power."""
    min_tissue: float = 0.25
    window: str | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValidationError(
                f"unknown modality {self.modality!r}", hint=f"use one of {', '.join(MODALITIES)}"
            )
        named = sum(bool(x) for x in (self.paths, self.cohort_id is not None, self.gdc_file_ids))
        if named == 0 and self.modality != "text":
            raise ValidationError(
                f"nothing to embed: name {self.modality} inputs",
                hint="pass --paths, --cohort ID or --gdc-file-id",
            )
        if self.modality == "text" and (self.paths or self.gdc_file_ids):
            raise ValidationError(
                "clinical text is rendered from the graph",
                hint="pass --cohort ID, or nothing for every patient",
            )
        if self.mpp is not None and not (0.01 <= self.mpp <= 100):
            raise ValidationError(
                f"--mpp {self.mpp} is not a plausible µm/px", hint="e.g. 0.25 (40×) or 0.5 (20×)"
            )
        if not (0.0 <= self.min_tissue <= 1.0):
            raise ValidationError("--min-tissue must be between 0 and 1")
        if not (1 <= self.batch_size <= 4096):
            raise ValidationError("--batch-size must be between 1 and 4096")

    def to_json(self) -> dict[str, Any]:
        return {
            "modality": self.modality,
            "encoder": self.encoder,
            "paths": list(self.paths),
            "cohort_id": self.cohort_id,
            "gdc_file_ids": list(self.gdc_file_ids),
            "mpp": self.mpp,
            "min_tissue": self.min_tissue,
            "window": self.window,
            "batch_size": self.batch_size,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmbedRequest:
        return cls(
            modality=data["modality"],
            encoder=data.get("encoder"),
            paths=tuple(data.get("paths") or ()),
            cohort_id=data.get("cohort_id"),
            gdc_file_ids=tuple(data.get("gdc_file_ids") or ()),
            mpp=data.get("mpp"),
            min_tissue=float(data.get("min_tissue", 0.25)),
            window=data.get("window"),
            batch_size=int(data.get("batch_size", 64)),
        )


@dataclass(frozen=True, slots=True)
class Job:
    """One object to embed (plain data: it is pickled to Ray workers)."""

    modality: str
    source_uri: str
    input_sha256: str
    attachment: Attachment
    object_kind: str
    object_id: str
    path: str | None = None
    series: Any = None
    """A scan's :class:`oncograph.embeddings.scans.Series` (its files ordered along the slice normal)."""
    text: str | None = None
    expected_instances: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Plan:
    jobs: list[Job] = field(default_factory=list)
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    projects: set[str] = field(default_factory=set)


def _already_embedded(session: Session, spec: EncoderSpec, jobs: Sequence[Job]) -> set[tuple[str, str]]:
    """The (object_kind, object_id) of jobs already embedded with this encoder version and input checksum."""
    if not jobs:
        return set()
    rows = session.execute(
        text(
            "SELECT e.object_kind, e.object_id FROM embedding e JOIN unnest(CAST(:kinds AS text[]), "
            "CAST(:ids AS text[]), CAST(:shas AS text[])) AS j(kind, id, sha) ON e.object_kind = j.kind "
            "AND e.object_id = j.id AND e.input_sha256 = j.sha WHERE e.model = :m AND e.model_version = :v"
        ),
        {
            "kinds": [j.object_kind for j in jobs],
            "ids": [j.object_id for j in jobs],
            "shas": [j.input_sha256 for j in jobs],
            "m": spec.name,
            "v": spec.version,
        },
    ).all()
    return {(k, i) for k, i in rows}


def _file_job(session: Session, item: LocalInput) -> Job:
    found = attach_file(session, item.path, md5=item.md5, file_id=item.file_id)
    if found.object_kind == "data_file":
        kind, oid = "data_file", found.object_id
    else:  # a slide the graph does not hold as a file: keyed by its content
        kind, oid = "slide_file", f"sha256:{item.sha256}"
    return Job(
        modality="slide",
        source_uri=item.source_uri,
        input_sha256=item.sha256,
        attachment=replace(found, object_kind=kind, object_id=oid),
        object_kind=kind,
        object_id=oid,
        path=str(item.path),
        details={"md5": item.md5, "bytes": item.size, "name": item.path.name},
    )


def _dicom_slide_job(session: Session, slide: DicomSlide) -> Job:
    """A DICOM-WSI series: keyed by its SeriesInstanceUID, attached to ``imaging_series`` when the graph has it."""
    found, expected = attach_series(session, slide.series_uid)
    first = slide.files[0]
    details: dict[str, Any] = {
        "series_uid": slide.series_uid,
        "instances": len(slide.files),
        "image_types": list(slide.image_types),
        "bytes": sum(i.size for i in slide.files),
        "name": first.path.name,
    }
    if expected is not None:
        details["expected_instances"] = expected
        details["partial"] = len(slide.files) < expected
    return Job(
        modality="slide",
        source_uri=first.source_uri.rsplit("/", 1)[0] or first.source_uri,
        input_sha256=slide.sha256,
        attachment=found,
        object_kind="imaging_series",
        object_id=slide.series_uid,
        path=str(first.path),
        expected_instances=expected,
        details=details,
    )


def _cohort_patients(session: Session, cohort_id: int, scope: Scope) -> list[int]:
    principal = ensure_local_principal(session) if scope.unrestricted else None
    if principal is None:
        raise ValidationError("cohort embedding runs as the local operator")
    return visible_members(session, cohort_id, principal, None, scope=scope)[1]


def _slide_inputs(
    session: Session, request: EmbedRequest, settings: Settings, scope: Scope, plan: Plan
) -> list[LocalInput]:
    items: list[LocalInput] = []
    if request.paths:
        items.extend(_resolve_each(request.paths, settings, plan))
    wanted: list[tuple[str, str | None, int | None]] = []
    if request.gdc_file_ids:
        for fid in request.gdc_file_ids:
            row = session.execute(
                text(
                    "SELECT file_id::text, md5sum, file_size, access FROM data_file "
                    "WHERE file_id::text = :f AND retired_release_id IS NULL"
                ),
                {"f": fid.lower()},
            ).first()
            if row is None:
                plan.failures.append((f"gdc:{fid}", "no such file in the graph (harvest it first)"))
            elif row.access == "controlled":
                plan.failures.append((f"gdc:{fid}", "a controlled file: oncograph fetches only open files"))
            else:
                wanted.append((row.file_id, row.md5sum, row.file_size))
    if request.cohort_id is not None:
        ids = _cohort_patients(session, request.cohort_id, scope)
        wanted.extend(
            (r.file_id, r.md5sum, r.file_size)
            for r in session.execute(
                text(
                    "SELECT DISTINCT f.file_id::text AS file_id, f.md5sum, f.file_size FROM data_file f "
                    "JOIN file_patient fp ON fp.file_id = f.id WHERE fp.patient_id = ANY(:ids) AND f.is_slide "
                    "AND f.retired_release_id IS NULL AND coalesce(f.access, 'open') <> 'controlled' "
                    "ORDER BY 1"
                ),
                {"ids": ids},
            )
        )
    for fid, md5, size in wanted:
        try:
            items.append(gdc_input(fid, settings, expected_md5=md5, expected_size=size))
        except OncographError as exc:
            plan.failures.append((f"{settings.gdc_url.rstrip('/')}/data/{fid}", str(exc)))
    return items


def _resolve_each(uris: Sequence[str], settings: Settings, plan: Plan) -> list[LocalInput]:
    out: list[LocalInput] = []
    for uri in uris:
        try:
            out.extend(resolve_inputs([uri], settings))
        except OncographError as exc:
            plan.failures.append((uri, str(exc)))
    return out


def _scan_jobs(session: Session, request: EmbedRequest, settings: Settings, plan: Plan) -> list[Job]:
    from oncograph.embeddings.scans import find_series, series_sha256

    if request.cohort_id is not None or request.gdc_file_ids:
        raise ValidationError(
            "scans are embedded from DICOM files", hint="pass --paths with the series' folders or files"
        )
    local = _resolve_each(request.paths, settings, plan)
    series, unreadable = find_series([i.path for i in local])
    plan.failures.extend((str(u.path), u.reason) for u in unreadable)
    jobs = []
    for s in series:
        found, expected = attach_series(session, s.series_uid)
        details: dict[str, Any] = {"series": s.to_json()}
        if expected is not None:
            details["expected_instances"] = expected
            details["partial"] = len(s.files) < expected
        jobs.append(
            Job(
                modality="scan",
                source_uri=str(Path(s.files[0]).parent),
                input_sha256=series_sha256(s),
                attachment=found,
                object_kind="imaging_series",
                object_id=s.series_uid,
                series=s,
                expected_instances=expected,
                details=details,
            )
        )
    return jobs


def _text_jobs(session: Session, request: EmbedRequest, scope: Scope) -> list[Job]:
    if request.cohort_id is not None:
        ids = _cohort_patients(session, request.cohort_id, scope)
    else:
        ids = list(
            session.execute(
                text("SELECT id FROM patient WHERE retired_release_id IS NULL ORDER BY id")
            ).scalars()
        )
    return [
        Job(
            modality="text",
            source_uri=f"patient:{s.case_id}",
            input_sha256=s.sha256,
            attachment=Attachment("graph", s.patient_id, "clinical_text", s.case_id),
            object_kind="clinical_text",
            object_id=s.case_id,
            text=s.text,
        )
        for s in render_summaries(session, ids)
    ]


def _projects(session: Session, jobs: Sequence[Job]) -> set[str]:
    ids = sorted({j.attachment.patient_id for j in jobs if j.attachment.patient_id is not None})
    if not ids:
        return set()
    return set(
        session.execute(
            text(
                "SELECT DISTINCT pr.project_id FROM patient p JOIN project pr ON pr.id = p.project_id WHERE p.id = ANY(:ids)"
            ),
            {"ids": ids},
        ).scalars()
    )


def plan(
    session: Session, request: EmbedRequest, spec: EncoderSpec, settings: Settings, scope: Scope
) -> Plan:
    """The jobs of a run: every named object, attached, minus those already embedded by ``spec``'s version."""
    result = Plan()
    if request.modality == "slide":
        dicom, files, failures = split_dicom_slides(_slide_inputs(session, request, settings, scope, result))
        result.failures.extend(failures)
        jobs = [_file_job(session, item) for item in files] + [_dicom_slide_job(session, d) for d in dicom]
    elif request.modality == "scan":
        jobs = _scan_jobs(session, request, settings, result)
    else:
        jobs = _text_jobs(session, request, scope)
    unique = list({(j.object_kind, j.object_id): j for j in jobs}.values())
    done = _already_embedded(session, spec, unique)
    result.jobs = [j for j in unique if (j.object_kind, j.object_id) not in done]
    result.skipped = len(unique) - len(result.jobs) + (len(jobs) - len(unique))
    result.projects = _projects(session, unique)
    return result
