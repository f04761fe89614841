"""The stand-in's ``/data/{file_id}`` download, so that tests and the demo fetch files over real HTTP.

The real API serves a file's bytes at ``GET /data/{file_id}``. The stand-in serves a folder of local files
(e.g. the bundled real slides in ``data/wsi``) the same way: ``Content-Length``, ``Content-Disposition:
attachment; filename=…``, ``Accept-Ranges: bytes``, single ranges ``Range: bytes=N-`` or ``bytes=N-M``
(``206`` with ``Content-Range``), ``416`` with ``Content-Range: bytes */size`` for a range it cannot serve,
and ``404`` ``{"message": …}`` for an id it holds no bytes for. Bodies are streamed from disk in chunks.

**Stand-in ids are not GDC ids.** The bundled slides are not GDC records that we hold metadata for, so the
stand-in names each file by :func:`stand_in_file_id`: a UUID5 of the file's SHA-256 in a namespace of our own.
Such an id is stable (same bytes, same id, on every machine) and never collides with a real GDC UUID4 in
practice, but the real GDC knows nothing of it.

**Controlled files.** A ``files`` document of the mirror whose ``access`` is ``controlled`` is answered
``403``, as the real API answers a request without a token; its bytes are never served.

**Faults.** The request goes through the mirror's fault injector like every search: a ``truncate`` decision
sends the full ``Content-Length`` and then only part of the (range's) body, and closes the connection - what
a resuming client must survive.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

import orjson

from oncograph.errors import ValidationError
from oncograph.sources.faults import FaultDecision
from oncograph.sources.gdc.mirror.store import MirrorStore
from oncograph.sources.local_server import JsonHandler

STAND_IN_NAMESPACE: Final = uuid.UUID("6f1c2d1e-4b0a-5c55-9a57-0c0a6e7a5d31")
"""The UUID5 namespace of stand-in file ids (fixed once; changing it changes every stand-in id)."""

CHUNK_BYTES: Final = 256 * 1024
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def stand_in_file_id(sha256: str) -> str:
    """The stand-in's id for the file with this SHA-256 (hex): a UUID5, **not** a GDC file id.

    Example:
        >>> stand_in_file_id("ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7")
        '74b09520-7aa5-5087-80c4-078b3d3e3d23'
    """
    digest = sha256.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ValidationError(f"not a SHA-256 hex digest: {sha256!r}", hint="64 hexadecimal characters")
    return str(uuid.uuid5(STAND_IN_NAMESPACE, digest))


@dataclass(frozen=True, slots=True)
class DataFile:
    """One local file the stand-in serves."""

    file_id: str
    """:func:`stand_in_file_id` of the bytes."""
    path: Path
    size: int
    sha256: str

    @property
    def file_name(self) -> str:
        """The name sent in ``Content-Disposition``."""
        return self.path.name


class DataFiles(Mapping[str, DataFile]):
    """The files the stand-in serves, by stand-in id."""

    def __init__(self, files: Iterable[DataFile]) -> None:
        self._files = {f.file_id: f for f in files}

    @classmethod
    def from_directory(cls, folder: Path) -> DataFiles:
        """Every regular, non-hidden file directly in ``folder`` (sub-folders are not served); each is read
        once, to hash it.

        Raises:
            ValidationError: ``folder`` is not a folder.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise ValidationError(
                f"{folder} is not a folder", hint="name a folder of files to serve on /data"
            )
        paths = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return cls(_data_file(p) for p in paths)

    def __getitem__(self, file_id: str) -> DataFile:
        return self._files[file_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


def _data_file(path: Path) -> DataFile:
    with path.open("rb") as handle:
        sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return DataFile(stand_in_file_id(sha256), path, path.stat().st_size, sha256)


def answer_data(
    handler: JsonHandler,
    file_id: str,
    *,
    files: Mapping[str, DataFile],
    store: MirrorStore,
    decision: FaultDecision,
) -> None:
    """Answer ``GET /data/{file_id}``: the bytes (whole or one range), 403 for a controlled file, else 404."""
    data_file = files.get(file_id.lower())
    if data_file is not None:
        _send_file(handler, data_file, handler.headers.get("Range"), decision)
        return
    document = store.get("files", file_id)
    if document is not None and document.get("access") == "controlled":
        message = "controlled-access file: a dbGaP-authorized X-Auth-Token is required to download it"
        handler.send_json(403, _message(message))
        return
    handler.send_json(404, _message(f"no data file with id {file_id!r} on this GDC stand-in"))


def _send_file(
    handler: JsonHandler, data_file: DataFile, range_header: str | None, decision: FaultDecision
) -> None:
    size = data_file.size
    start, end = 0, size - 1
    headers = {"Content-Disposition": content_disposition(data_file.file_name), "Accept-Ranges": "bytes"}
    if range_header is not None:
        wanted = parse_range(range_header, size)
        if wanted is None:
            handler.send_json(
                416,
                _message(f"range {range_header!r} not satisfiable for {size} bytes"),
                {"Content-Range": f"bytes */{size}"},
            )
            return
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1
    cut = int(length * decision.cut_fraction) if decision.kind == "truncate" else None
    handler.send_response(206 if range_header is not None else 200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(length))
    for name, value in headers.items():
        handler.send_header(name, value)
    if cut is not None:
        handler.send_header("Connection", "close")
    handler.end_headers()
    _stream(handler, data_file.path, start, length if cut is None else max(0, min(length - 1, cut)))
    if cut is not None:
        handler.wfile.flush()
        handler.close_connection = True


def _stream(handler: JsonHandler, path: Path, start: int, count: int) -> None:
    with path.open("rb") as source:
        source.seek(start)
        remaining = count
        while remaining > 0:
            chunk = source.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                break
            handler.wfile.write(chunk)
            remaining -= len(chunk)


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte of one ``bytes=N-`` or ``bytes=N-M`` range; None when it cannot be served.

    The stand-in is strict on purpose: a malformed, multi-part or suffix range is answered 416 rather than
    ignored, so that a client bug shows.
    """
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        return None
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else size - 1
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)


def content_disposition(file_name: str) -> str:
    """``attachment; filename="…"``, plus RFC 6266 ``filename*`` when the name is not plain ASCII."""
    plain = file_name.isascii() and file_name.isprintable() and not any(c in file_name for c in '"\\')
    if plain:
        return f'attachment; filename="{file_name}"'
    fallback = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def _message(text: str) -> bytes:
    return orjson.dumps({"message": text})
