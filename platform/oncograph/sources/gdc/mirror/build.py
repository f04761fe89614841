"""Build a mirror directory from the repository's bundled real GDC data.

Layout written to ``out_dir``::

    status.json                      the recorded DR45 /status value set
    status.source.json               its provenance
    cases/<input>.json               list of case documents, grouped by the input that first supplied them
    cases/<input>.source.json        sidecar: _source (provenance), per-document sources, enrichments, conflicts
    files/...  projects/...          the same for files and projects
    BUILD_REPORT.json                counts per endpoint and every skipped item with its reason

**Merging.** Documents with the same id from several inputs (CHOL clinical + biospecimen, PAAD clinical
selection + Cases table, a case in two API responses …) become one document: objects are merged key by key,
recursively; for any other value the input with the higher priority wins and the disagreement is recorded in
the sidecar under ``_mirror_merge``. Priority: current API responses, then portal exports (clinical/biospecimen
before Cases tables before re-serialised API dumps; file metadata before Files tables before API dumps), then
the 2017 legacy-era API responses.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from oncograph.errors import ConfigurationError, InputFormatError
from oncograph.sources.gdc.mirror.inputs import (
    API_DIR,
    PORTAL_DIRS,
    Candidate,
    InputFile,
    read_inputs,
    read_status,
)
from oncograph.sources.gdc.mirror.store import ENDPOINTS, RECORDED_STATUS, Endpoint

REPORT_FILE = "BUILD_REPORT.json"
_OWN_OUTPUTS = (*ENDPOINTS, "status.json", "status.source.json", REPORT_FILE)


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """Records of one input that did not become documents, and why."""

    input: str
    reason: str
    count: int


@dataclass(slots=True)
class BuildReport:
    """What :func:`build_mirror_directory` wrote and what it left out."""

    data_dir: str
    out_dir: str
    counts: dict[str, int] = field(default_factory=dict)
    """Documents written per endpoint."""
    inputs_used: list[str] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    merged_documents: int = 0
    """Documents assembled from more than one input record."""
    conflicts: int = 0
    """Values that two inputs gave differently (the higher-priority one was kept)."""
    enriched_documents: int = 0

    def skipped_count(self, reason_contains: str = "") -> int:
        """Number of skipped records whose reason contains ``reason_contains``."""
        return sum(s.count for s in self.skipped if reason_contains in s.reason)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines."""
        counts = ", ".join(f"{n} {ep}" for ep, n in self.counts.items())
        lines = [
            f"GDC mirror built in {self.out_dir}: {counts} from {len(self.inputs_used)} input files",
            f"  merged documents: {self.merged_documents}, value conflicts: {self.conflicts}, "
            f"enriched documents: {self.enriched_documents}, skipped records: {self.skipped_count()}",
        ]
        lines += [f"  skipped {s.count:>5} × {s.input}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


@dataclass(slots=True)
class _Merged:
    first: Candidate
    document: dict[str, Any]
    sources: list[str]
    inputs: list[str]
    enrichment: dict[str, dict[str, str]] = field(default_factory=dict)
    conflicts: list[dict[str, str]] = field(default_factory=list)


def build_mirror_directory(data_dir: Path, out_dir: Path) -> BuildReport:
    """Build a mirror directory (see the module docstring) from ``data_dir`` (the repo's ``data/gdc``).

    ``out_dir`` must be empty, absent, or an earlier build (which is replaced).

    Raises:
        InputFormatError: ``data_dir`` has neither ``gdc_api_json/`` nor a portal JSON folder.
        ConfigurationError: ``out_dir`` holds something other than an earlier build.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not any((data_dir / d).is_dir() for d in (API_DIR, *PORTAL_DIRS)):
        raise InputFormatError(
            f"{data_dir} holds no bundled GDC data ({API_DIR}/ or {PORTAL_DIRS[0]}/)",
            hint="point at the repository's data/gdc folder",
        )
    _prepare_out_dir(out_dir)
    inputs = read_inputs(data_dir)
    by_name = {i.name: i for i in inputs}
    merged: dict[Endpoint, dict[str, _Merged]] = {ep: {} for ep in ENDPOINTS}
    for item in inputs:
        for candidate in item.candidates:
            _merge_candidate(merged[candidate.endpoint], candidate, item.name)

    report = BuildReport(str(data_dir), str(out_dir))
    for endpoint in ENDPOINTS:
        groups: dict[str, list[_Merged]] = {}
        for m in merged[endpoint].values():
            groups.setdefault(m.inputs[0], []).append(m)
        folder = out_dir / endpoint
        folder.mkdir(parents=True, exist_ok=True)
        for input_name, docs in groups.items():
            stem = Path(input_name).stem
            _write_json(folder / f"{stem}.json", [m.document for m in docs])
            _write_json(folder / f"{stem}.source.json", _sidecar(by_name, input_name, docs))
        report.counts[endpoint] = len(merged[endpoint])
        report.merged_documents += sum(1 for m in merged[endpoint].values() if len(m.sources) > 1)
        report.conflicts += sum(len(m.conflicts) for m in merged[endpoint].values())
        report.enriched_documents += sum(1 for m in merged[endpoint].values() if m.enrichment)

    status = read_status(data_dir)
    status_doc, status_source = (
        status if status is not None else (dict(RECORDED_STATUS), {"note": "built-in"})
    )
    _write_json(out_dir / "status.json", status_doc)
    _write_json(out_dir / "status.source.json", {"_source": status_source})

    report.inputs_used = sorted({name for ms in merged.values() for m in ms.values() for name in m.inputs})
    report.skipped = [
        SkippedItem(item.name, reason, count) for item in inputs for reason, count in item.skipped.items()
    ]
    _write_json(out_dir / REPORT_FILE, report.to_dict())
    return report


def _prepare_out_dir(out_dir: Path) -> None:
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
        return
    entries = list(out_dir.iterdir())
    if entries and not (out_dir / REPORT_FILE).is_file():
        raise ConfigurationError(
            f"{out_dir} is not empty and is not an earlier mirror build",
            hint="choose an empty or new folder for the mirror",
        )
    for entry in entries:
        if entry.name in _OWN_OUTPUTS:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _merge_candidate(bucket: dict[str, _Merged], candidate: Candidate, input_name: str) -> None:
    existing = bucket.get(candidate.entity_id)
    if existing is None:
        m = _Merged(candidate, candidate.document, [candidate.origin], [input_name])
        bucket[candidate.entity_id] = m
    else:
        m = existing
        conflicts: list[str] = []
        _merge(m.document, candidate.document, "", conflicts)
        m.sources.append(candidate.origin)
        if input_name not in m.inputs:
            m.inputs.append(input_name)
        m.conflicts += [{"path": path, "ignored_from": candidate.origin} for path in conflicts]
    if candidate.enrichment:
        m.enrichment[candidate.origin] = candidate.enrichment


def _merge(target: dict[str, Any], incoming: dict[str, Any], path: str, conflicts: list[str]) -> None:
    for key, value in incoming.items():
        where = f"{path}.{key}" if path else key
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge(target[key], value, where, conflicts)
        elif target[key] != value:
            conflicts.append(where)


def _sidecar(by_name: dict[str, InputFile], input_name: str, docs: list[_Merged]) -> dict[str, Any]:
    others = sorted({name for m in docs for name in m.inputs if name != input_name})
    documents: dict[str, Any] = {}
    for m in docs:
        entry: dict[str, Any] = {"sources": m.sources}
        if m.enrichment:
            entry["_mirror_enrichment"] = m.enrichment
        if m.conflicts:
            entry["_mirror_merge"] = {
                "rule": "objects merged key by key; other values: the first source listed wins",
                "conflicts": m.conflicts,
            }
        documents[m.first.entity_id] = entry
    return {
        "_source": by_name[input_name].provenance,
        "_also_from": {name: by_name[name].provenance for name in others},
        "_mirror": {"built_by": __name__, "documents": len(docs)},
        "documents": documents,
    }


def _write_json(path: Path, value: Any) -> None:
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
