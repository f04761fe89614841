"""The small files of a published export that a client may download (the UI's export page): the manifest,
Croissant and the gdc-client and s5cmd manifests, read back from the export's destination (a local folder or
S3) and checked against the sha256 the manifest recorded, so what is served is what was published.

Names are a fixed list, never a path from the client; the large Parquet and feature files stay where they are
(clients read them from the destination, e.g. with the s5cmd manifest or the loaders).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from oncograph.errors import ConflictError, NotFoundError
from oncograph.export.storage import MANIFEST, Destination

DOWNLOADABLE: dict[str, str] = {
    MANIFEST: "application/json",
    "croissant.json": "application/ld+json",
    "gdc_manifest.txt": "text/tab-separated-values",
    "idc_manifest.s5cmd": "text/plain",
}
"""File name -> media type."""
MAX_DOWNLOAD_BYTES = 64 << 20


def read_published_file(
    destination: str, manifest: dict[str, Any], name: str, *, endpoint_url: str | None = None
) -> tuple[bytes, str]:
    """``(bytes, media type)`` of one downloadable file of a published export.

    Raises:
        NotFoundError: ``name`` is not downloadable, or the export does not hold it.
        ConflictError: the file at the destination is no longer what was published (sha256 differs).
    """
    if name not in DOWNLOADABLE:
        raise NotFoundError(
            f"{name!r} is not a downloadable export file", hint=f"one of: {', '.join(sorted(DOWNLOADABLE))}"
        )
    if name == MANIFEST:
        return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), DOWNLOADABLE[name]
    entry = next(
        (f for f in manifest.get("files") or () if isinstance(f, dict) and f.get("path") == name), None
    )
    if entry is None:
        raise NotFoundError(f"this export has no {name}", hint="its manifest lists the files it holds")
    if int(entry.get("size") or 0) > MAX_DOWNLOAD_BYTES:
        raise NotFoundError(
            f"{name} is {entry['size']} bytes, too large to download here",
            hint="read it from the export's destination",
        )
    target = Destination(destination, endpoint_url=endpoint_url)
    try:
        if target.is_s3:
            with target.filesystem().open(f"{target.url[5:]}/{name}", "rb") as fh:
                data = fh.read(MAX_DOWNLOAD_BYTES + 1)
        else:
            data = (Path(target.url) / name).read_bytes()
    except (FileNotFoundError, OSError) as exc:
        raise NotFoundError(
            f"{name} of this export is missing at its destination: {exc}", hint="export the cohort again"
        ) from exc
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise ConflictError(
            f"{name} at the export's destination is not the file that was published (its sha256 differs)",
            hint="someone changed the export's folder; export the cohort again",
        )
    return data, DOWNLOADABLE[name]


__all__ = ["DOWNLOADABLE", "MAX_DOWNLOAD_BYTES", "read_published_file"]
