"""Readers that turn the repository's bundled real GDC data (``data/gdc``) into candidate mirror documents.

Two folders are read (see their SOURCES.md files):

- ``gdc_api_json/*.json``: recorded API responses wrapped as ``{"_source": ..., "response"|"response_hit"|
  "response_node": ...}``. A search response contributes its hits, a single-entity response its ``data``, the
  GraphQL ``response_node`` its case (Relay ``hits.edges[].node`` lists unwrapped, base64 Relay ids dropped)
  plus the files listed under it. Responses of other endpoints (facets, analysis, annotations, history,
  versions, quicksearch) and TSV files are skipped.
- ``gdc_portal_json/*.json`` and ``gdc_portal_exports/*.json``: portal exports, each a list of case or file
  documents.

Nothing gets a made-up id: a record without its id is skipped and counted. Every change to a recorded document
is an *enrichment* with a reason, written to the sidecar by :mod:`~oncograph.sources.gdc.mirror.build`.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from oncograph.sources.gdc.mirror.store import ID_FIELDS, Endpoint

API_DIR: Final = "gdc_api_json"
PORTAL_DIRS: Final = ("gdc_portal_json", "gdc_portal_exports")
STATUS_FILE: Final = "gdc_status_examples.json"
STATUS_RELEASE: Final = "Data Release 45.0 - December 04, 2025"

_URL = re.compile(r"https?://[^\s)\"']+")
_NAME_ENDPOINT = re.compile(r"^gdc_(case|file|project)s?_")
_LEGACY = re.compile(r"_2017_")
_BY_NAME: Final[dict[str, Endpoint]] = {"cases": "cases", "files": "files", "projects": "projects"}
_BY_SINGULAR: Final[dict[str, Endpoint]] = {"case": "cases", "file": "files", "project": "projects"}

# (pattern, endpoint, rank): lower rank wins when two inputs disagree on a value (full exports first).
_PORTAL_KINDS: Final[tuple[tuple[re.Pattern[str], Endpoint, int], ...]] = (
    (re.compile(r"^gdc_(clinical|biospecimen)_"), "cases", 0),
    (re.compile(r"^gdc_cases_table_"), "cases", 1),
    (re.compile(r"^gdc_api_cases_"), "cases", 2),
    (re.compile(r"metadata[._](cart|repository)"), "files", 0),
    (re.compile(r"^gdc_files_table_"), "files", 1),
    (re.compile(r"^gdc_api_files_"), "files", 2),
)

PROJECT_ENRICHMENTS: Final[dict[str, tuple[str, str]]] = {
    "gdc_clinical_TCGA-BRCA_2019_1036cases_tumor_stage.json": (
        "TCGA-BRCA",
        "gdc_portal_json/SOURCES.md states this file is a TCGA-BRCA portal selection; the records carry no project",
    ),
}
"""Portal files whose records lack ``project`` although their documentation states it."""


@dataclass(slots=True)
class Candidate:
    """One document read from one input, before documents with the same id are merged."""

    endpoint: Endpoint
    entity_id: str
    document: dict[str, Any]
    origin: str
    """Where exactly it came from, e.g. ``gdc_api_json/x.json#response.data.hits[3]``."""
    enrichment: dict[str, str] = field(default_factory=dict)
    """Field path → why the mirror added or changed it."""


@dataclass(slots=True)
class InputFile:
    """One bundled data file and what it yielded."""

    name: str
    """Path relative to the data directory."""
    provenance: dict[str, Any]
    candidates: list[Candidate] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    """Reason → number of records (or 1 for a whole file)."""
    rank: tuple[int, int, str] = (0, 0, "")

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` records skipped for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + count


def read_inputs(data_dir: Path) -> list[InputFile]:
    """Read every bundled JSON/TSV input under ``data_dir``, ordered by merge priority (first wins)."""
    inputs: list[InputFile] = []
    api = data_dir / API_DIR
    for path in sorted(api.glob("*")) if api.is_dir() else []:
        if path.is_file() and path.name not in (STATUS_FILE, "SOURCES.md"):
            item = _read_api_file(path, f"{API_DIR}/{path.name}")
            item.rank = (2 if _LEGACY.search(path.name) else 0, 0, path.name)
            inputs.append(item)
    for folder in PORTAL_DIRS:
        directory = data_dir / folder
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            inputs.append(_read_portal_file(path, f"{folder}/{path.name}"))
    inputs.sort(key=lambda i: i.rank)
    return inputs


def read_status(data_dir: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The recorded DR45 ``/status`` value set and its provenance, or None when the file lacks it."""
    path = data_dir / API_DIR / STATUS_FILE
    if not path.is_file():
        return None
    raw = orjson.loads(path.read_bytes())
    for example in raw.get("examples", []) if isinstance(raw, dict) else []:
        response = example.get("response") if isinstance(example, dict) else None
        if isinstance(response, dict) and response.get("data_release") == STATUS_RELEASE:
            provenance = _file_provenance(path, f"{API_DIR}/{STATUS_FILE}")
            provenance["provenance"] = example.get("provenance")
            return dict(response), provenance
    return None


def _file_provenance(path: Path, name: str) -> dict[str, Any]:
    folder = name.split("/")[0]
    return {
        "file": f"data/gdc/{name}",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "described_in": f"data/gdc/{folder}/SOURCES.md" if folder != API_DIR else "data/gdc/SOURCES.md",
    }


def _load(path: Path, item: InputFile) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        item.skip(f"whole file: not valid JSON ({exc})")
        return None


def _read_api_file(path: Path, name: str) -> InputFile:
    item = InputFile(name, _file_provenance(path, name))
    if path.suffix.lower() != ".json":
        item.skip(f"whole file: {path.suffix.lstrip('.').upper()} export, not JSON documents")
        return item
    raw = _load(path, item)
    if raw is None:
        return item
    keys = [k for k in ("response", "response_hit", "response_node") if isinstance(raw, dict) and k in raw]
    if not keys:
        item.skip("whole file: no response / response_hit / response_node key")
        return item
    source = raw.get("_source")
    item.provenance["_source"] = source
    if keys[0] == "response_node":
        node = raw["response_node"]
        _read_relay_case(item, node.get("node") if isinstance(node, dict) else None)
        return item
    endpoint, described = _endpoint_of(source, path.name)
    if endpoint is None:
        item.skip(f"whole file: not a case/file/project document response ({described})")
        return item
    if keys[0] == "response_hit":
        _add(item, endpoint, raw["response_hit"], f"{name}#response_hit")
        return item
    response = raw["response"]
    data = response.get("data") if isinstance(response, dict) else None
    if not isinstance(data, dict):
        item.skip("whole file: response has no data object")
    elif isinstance(data.get("hits"), list):
        hits = data["hits"]
        if not hits:
            kind = (
                "facets response (aggregations only)"
                if "aggregations" in data
                else "search response with 0 hits"
            )
            item.skip(f"whole file: {kind}, no documents")
        for n, hit in enumerate(hits):
            _add(item, endpoint, hit, f"{name}#response.data.hits[{n}]")
    else:
        _add(item, endpoint, data, f"{name}#response.data")
    return item


def _endpoint_of(source: Any, filename: str) -> tuple[Endpoint | None, str]:
    url = None
    if isinstance(source, dict):
        for key in ("request", "endpoint"):
            value = source.get(key)
            match = _URL.search(value) if isinstance(value, str) else None
            if match:
                url = match.group(0)
                break
    if url is not None:
        parts = [p for p in urlsplit(url).path.split("/") if p]
        if parts[:1] == ["v0"]:
            parts = parts[1:]
        if parts and parts[0] in _BY_NAME and len(parts) <= 2:
            return _BY_NAME[parts[0]], url
        return None, f"request /{'/'.join(parts)}"
    match = _NAME_ENDPOINT.match(filename)
    if match:
        return _BY_SINGULAR[match.group(1)], filename
    return None, "no request URL and no endpoint in the file name"


def _add(item: InputFile, endpoint: Endpoint, record: Any, origin: str) -> Candidate | None:
    id_field = ID_FIELDS[endpoint]
    if not isinstance(record, dict):
        item.skip(f"record is not a JSON object ({endpoint})")
        return None
    own, hit_id = record.get(id_field), record.get("id")
    own = own if isinstance(own, str) and own else None
    hit_id = hit_id if isinstance(hit_id, str) and hit_id else None
    if own is None and hit_id is None:
        item.skip(f"no {id_field} (and no id) in the record; ids are never invented")
        return None
    if own is not None and hit_id is not None and own != hit_id:
        item.skip(f"id and {id_field} differ in the record")
        return None
    candidate = Candidate(endpoint, own or str(hit_id), record, origin)
    if own is None:
        record[id_field] = hit_id
        candidate.enrichment[id_field] = f"copied from the hit's id (GDC sets id = {id_field})"
    item.candidates.append(candidate)
    return candidate


def _read_relay_case(item: InputFile, node: Any) -> None:
    dropped = [0]
    case = _unrelay(node, dropped)
    if not isinstance(case, dict):
        item.skip("whole file: response_node.node is not an object")
        return
    origin = f"{item.name}#response_node.node"
    candidate = _add(item, "cases", case, origin)
    if candidate is None:
        return
    candidate.enrichment["(relay)"] = (
        f"GraphQL hits.edges[].node connections unwrapped into plain lists; {dropped[0]} base64 Relay id values dropped"
    )
    link = {"case_id": case["case_id"]}
    if "submitter_id" in case:
        link["submitter_id"] = case["submitter_id"]
    project = case.get("project")
    files = case.get("files")
    for n, f in enumerate(files if isinstance(files, list) else []):
        doc = copy.deepcopy(f)
        if isinstance(doc, dict) and "cases" not in doc:
            doc["cases"] = [dict(link, project=copy.deepcopy(project)) if isinstance(project, dict) else link]
            file_candidate = _add(item, "files", doc, f"{origin}.files[{n}]")
            if file_candidate is not None:
                file_candidate.enrichment["cases"] = "link to the case under whose files the node was listed"
        else:
            _add(item, "files", doc, f"{origin}.files[{n}]")


def _unrelay(value: Any, dropped: list[int]) -> Any:
    if isinstance(value, dict):
        hits = value.get("hits")
        if set(value) == {"hits"} and isinstance(hits, dict) and isinstance(hits.get("edges"), list):
            return [_unrelay(e.get("node"), dropped) for e in hits["edges"] if isinstance(e, dict)]
        out: dict[str, Any] = {}
        for key, sub in value.items():
            if key == "id":
                dropped[0] += 1
                continue
            out[key] = _unrelay(sub, dropped)
        return out
    if isinstance(value, list):
        return [_unrelay(v, dropped) for v in value]
    return value


def _read_portal_file(path: Path, name: str) -> InputFile:
    item = InputFile(name, _file_provenance(path, name))
    kind = next(((ep, rank) for pattern, ep, rank in _PORTAL_KINDS if pattern.search(path.name)), None)
    if kind is None:
        item.skip("whole file: not a recognised portal case/file export")
        item.rank = (1, 9, path.name)
        return item
    endpoint, rank = kind
    item.rank = (1, rank + (0 if endpoint == "cases" else 3), path.name)
    raw = _load(path, item)
    if raw is None:
        return item
    records = raw if isinstance(raw, list) else [raw]
    project = PROJECT_ENRICHMENTS.get(path.name)
    for n, record in enumerate(records):
        candidate = _add(item, endpoint, record, f"{name}#[{n}]")
        if candidate is None or project is None:
            continue
        doc = candidate.document
        if "project" not in doc:
            doc["project"] = {"project_id": project[0]}
            candidate.enrichment["project.project_id"] = project[1]
        demographic = doc.get("demographic")
        demo_id = demographic.get("submitter_id") if isinstance(demographic, dict) else None
        if "submitter_id" not in doc and isinstance(demo_id, str) and demo_id.endswith("_demographic"):
            doc["submitter_id"] = demo_id.removesuffix("_demographic")
            candidate.enrichment["submitter_id"] = (
                f"derived from demographic.submitter_id {demo_id!r} minus the '_demographic' suffix"
            )
    return item
