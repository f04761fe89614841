"""``oncograph ingest gdc-portal PATH...``: import GDC Data Portal downloads (TSV, JSON, biotab, sheets).

Every file's format is detected from its content before anything is written. A file named explicitly must be
a known layout (else nothing is imported); a folder is scanned, and its files that are not portal exports are
listed with the reason and skipped. A file without rows (empty, header-only, an empty JSON list) imports
nothing and makes no release. Every other file is its own ``source_release`` (a portal export does not say
which data release it came from: the file name and content hash identify it). Files that carry cases are
imported before files that only link to cases (sample sheets, manifests, file tables), so links resolve.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.engine import transaction
from oncograph.db.read_ahead import one_ahead
from oncograph.errors import InputFormatError, SourceError
from oncograph.ingest.progress import Progress
from oncograph.ingest.service import IngestCounts, batched, ingest_batch, prepare_batch
from oncograph.lineage.runs import RunHandle, ensure_release, finish_run, start_run
from oncograph.sources.gdc.portal import PortalFormat, detect_format, read_portal_file
from oncograph.sources.gdc.portal.formats import PortalFileError

FileStatus = Literal["imported", "empty", "skipped"]

#: Names in a scanned folder that are never portal exports (documentation, checksums), skipped without a word.
_NOT_EXPORTS = ("SHA256SUMS", "MD5SUMS")


@dataclass(frozen=True, slots=True)
class FileOutcome:
    path: str
    format: str
    records: int
    file_problems: list[str]
    status: FileStatus = "imported"
    note: str | None = None
    """Why a file imported nothing: ``no rows, nothing imported`` or the reason it was skipped."""


@dataclass(frozen=True, slots=True)
class PortalPlan:
    """The files an import will read (with their formats) and the files of scanned folders it skips."""

    files: list[tuple[Path, PortalFormat]] = field(default_factory=list)
    skipped: list[FileOutcome] = field(default_factory=list)


def _file_release(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"portal export {path.name} sha256:{digest}"


def _priority(fmt: str) -> int:
    if "clinical" in fmt or "biospecimen" in fmt or "cases" in fmt or fmt == "biotab_clinical":
        return 0
    if fmt.endswith("_tsv") or fmt == "api_hits_json":
        return 1
    return 2


def _folder_files(folder: Path) -> list[Path]:
    return sorted(
        q
        for q in folder.rglob("*")
        if q.is_file() and not any(part.startswith(".") for part in q.relative_to(folder).parts)
    )


def plan_portal_import(paths: Sequence[Path]) -> PortalPlan:
    """Recognise every file to import: ``paths`` are files or folders (scanned recursively).

    Raises:
        InputFormatError: a file named explicitly is not a known layout, or no file at all is one.
        SourceError: a file named explicitly cannot be read.
    """
    plan = PortalPlan()
    for path in paths:
        if not path.is_dir():
            plan.files.append((path, detect_format(path)))
            continue
        for file in _folder_files(path):
            if file.suffix.lower() == ".md" or file.name in _NOT_EXPORTS:
                plan.skipped.append(
                    FileOutcome(str(file), "", 0, [], "skipped", "documentation, not an export")
                )
                continue
            try:
                plan.files.append((file, detect_format(file)))
            except PortalFileError as exc:
                plan.skipped.append(FileOutcome(str(file), "", 0, [], "skipped", exc.reason))
            except SourceError as exc:
                plan.skipped.append(FileOutcome(str(file), "", 0, [], "skipped", str(exc)))
    if not plan.files:
        shown = ", ".join(str(p) for p in paths[:3])
        raise InputFormatError(
            f"no GDC portal export found in {shown}",
            hint="point at the downloaded files or the folder that holds them; `oncograph ingest gdc-portal "
            "--help` lists the formats",
        )
    return plan


def import_portal_files(
    factory: sessionmaker[Session],
    paths: Sequence[Path],
    *,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> tuple[RunHandle, IngestCounts, list[FileOutcome]]:
    """Import portal files (and the exports inside folders); returns the run, the counts and a per-file summary.

    Args:
        factory: sessions on the graph database.
        paths: files or folders (see :func:`plan_portal_import`).
        batch_size: records per transaction.
        progress: called with ``("files", files done, files in all)`` and ``("records", records done, None)``.

    Returns:
        The run, the counts, and one :class:`FileOutcome` per file: imported, ``empty`` (no rows: nothing
        imported, no release) or ``skipped`` (a file of a folder that is not a portal export).

    Raises:
        InputFormatError: a file named explicitly has an unknown layout (nothing is written).
    """
    plan = plan_portal_import(paths)
    formats = dict(plan.files)
    ordered = sorted(formats, key=lambda p: (_priority(formats[p]), str(p)))
    with transaction(factory) as s:
        run = start_run(s, transform="import_gdc_portal", parameters={"paths": [str(p) for p in paths]})
    total = IngestCounts()
    outcomes: list[FileOutcome] = []
    done = 0
    try:
        for number, path in enumerate(ordered, 1):
            portal = read_portal_file(path)
            problems = [str(p) for p in portal.problems]
            records = portal.records  # a clinical TSV's are built as the batches are read
            if not records:
                note = "no rows, nothing imported"
                outcomes.append(FileOutcome(str(path), formats[path], 0, problems, "empty", note))
            else:
                with transaction(factory) as s:
                    release_id = ensure_release(
                        s,
                        source="gdc_portal",
                        release=_file_release(path),
                        details={"file": path.name, "format": formats[path]},
                    )
                # each batch is mapped while the one before it is written (one_ahead)
                for batch in one_ahead(batched(records, batch_size), prepare_batch):
                    total.add(ingest_batch(factory, batch, release_id=release_id, run_id=run.id))
                    done += len(batch.records)
                    if progress is not None:
                        progress("records", done, None)
                total.problems.extend(portal.problems)
                outcomes.append(FileOutcome(str(path), formats[path], len(records), problems))
            if progress is not None:
                progress("files", number, len(ordered))
    except Exception as exc:
        with transaction(factory) as s:
            finish_run(
                s,
                run,
                status="failed",
                counts={"totals": total.as_dict()},
                error=f"{type(exc).__name__}: {exc}",
            )
        raise
    outcomes += plan.skipped
    with transaction(factory) as s:
        finish_run(
            s,
            run,
            status="succeeded",
            counts={"totals": total.as_dict(), "files": [asdict(o) for o in outcomes]},
        )
    return run, total, outcomes
