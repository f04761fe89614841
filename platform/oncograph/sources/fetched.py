"""A remote file fetched into a local cache, and the digests of its bytes (shared by the S3 and GDC fetchers).

The md5 is what attaches a file to the graph (GDC ``files.md5sum``); the sha256 names the bytes in provenance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

CHUNK_BYTES: Final = 1 << 20
"""Read and write size of hashing and downloads."""

Digests = tuple[str, str, int]
"""``(sha256, md5, size)`` of a file's bytes."""


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """A local copy of a remote file: where it is, what it was fetched from, and the digests of its bytes."""

    path: Path
    uri: str
    """The canonical name of the remote file: ``s3://bucket/key`` or ``{gdc_url}/data/{file_id}``."""
    sha256: str
    md5: str
    size: int


def hash_file(path: Path) -> tuple[str, str, int]:
    """``(sha256, md5, size)`` of a file, in one chunked pass."""
    sha256, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha256.hexdigest(), md5.hexdigest(), size
