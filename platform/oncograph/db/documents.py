"""How a source document's content is stored: its JSON text, zstd-compressed by the client.

``source_document.raw_zstd`` (migration 0017, ADR 0001's third amendment) holds one zstd frame (with its
content size) of the document's JSON as :func:`pack` wrote it, and PostgreSQL stores the bytes as they come
(no pglz, and most documents fit in their row, with no TOAST). Compressing on the client, off the writing
thread, made storing a harvest's documents ~5x cheaper for the database than ``json`` text, and they
take less than half the disk that pglz left. Anything that reads a document's content goes through
:func:`unpack` (``oncograph.lineage.lookup`` does); nothing queries inside one in SQL.
"""

from __future__ import annotations

import base64
import threading
from typing import Any, Final

import orjson
import zstandard

#: zstd level 1: ~3.3x smaller than the JSON of a GDC case document at ~250 MB/s on one core here; higher
#: levels gain a few percent for 2-5x the time.
LEVEL: Final = 1

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # a compressor is not safe to share between threads; one per thread (the read-ahead worker, the writer)
    found: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if found is None:
        found = _local.compressor = zstandard.ZstdCompressor(level=LEVEL)
    return found


def pack(raw: Any) -> bytes:
    """A document's content as stored: its JSON (keys in the order the source sent them), zstd-compressed."""
    return pack_json(orjson.dumps(raw))


def pack_json(text: bytes) -> bytes:
    """:func:`pack` of a document already encoded as JSON."""
    return _compressor().compress(text)


def pack_base64(raw: Any) -> str:
    """:func:`pack` as base64 text, for a batch of documents bound as one JSON parameter and decoded by
    ``decode(..., 'base64')`` in SQL (an array of ``bytea`` parameters costs the driver ~75 us an element)."""
    return base64.b64encode(pack(raw)).decode("ascii")


def unpack(stored: bytes | memoryview) -> Any:
    """The content of a stored document (the value :func:`pack` was given)."""
    return orjson.loads(unpack_json(stored))


def unpack_json(stored: bytes | memoryview) -> bytes:
    """A stored document's JSON text (what :func:`pack_json` was given)."""
    return zstandard.ZstdDecompressor().decompress(bytes(stored))
