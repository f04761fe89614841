"""Where embedding inputs come from: local paths and folders, S3 objects, and open GDC files from ``/data``.

An encoder reads local files. Every source is therefore turned into a :class:`LocalInput`: a local path plus
what the user named (``source_uri``) and the digests of the bytes. The md5 is what attaches an input to the
graph (GDC ``files.md5sum``); the sha256 names the bytes in provenance.

Remote inputs are fetched by :mod:`oncograph.sources.s3` (cached under ``<home>/cache/s3``) and
:mod:`oncograph.sources.gdc.data` (``<home>/cache/gdc``, resumable, retried, md5-verified); their modules
describe the caches and retries.

**Verification.** ``expected_md5`` is a required keyword of :func:`gdc_input`: pass the file record's
``md5sum``. Passing ``None`` is the explicit, logged choice to accept unverified bytes (e.g. a stand-in file
with no record); there is no default, so a forgotten md5 is a type error rather than silent trust. A
mismatch deletes the download and raises :class:`~oncograph.errors.SourceError`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from oncograph.errors import ValidationError
from oncograph.settings import Settings
from oncograph.sources.fetched import CHUNK_BYTES, Digests, hash_file
from oncograph.sources.gdc.data import Progress, fetch_data_file, file_name_from, gdc_file_id
from oncograph.sources.s3 import fetch_s3_object, list_s3_keys, s3_cache_path, split_s3_uri

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocalInput:
    """A local file to embed, where it came from, and the digests of its bytes."""

    path: Path
    """A local file to read."""
    source_uri: str
    """What the user named: an absolute path, ``s3://bucket/key``, or ``{gdc_url}/data/{file_id}``."""
    sha256: str
    md5: str
    """Attachment to the graph matches files by md5."""
    size: int
    file_id: str | None = None
    """The GDC file id when the bytes were fetched from ``/data``."""


def local_input(path: Path) -> LocalInput:
    """A local file as an input; ``source_uri`` is its absolute path.

    Raises:
        ValidationError: the path does not exist, is not a file, or cannot be read.
    """
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    if not absolute.exists():
        raise ValidationError(f"no such file: {absolute}", hint="check the path")
    if not absolute.is_file():
        kind = "a folder" if absolute.is_dir() else "not a regular file"
        raise ValidationError(f"{absolute} is {kind}", hint="name a file, or pass folders to resolve_inputs")
    try:
        sha256, md5, size = hash_file(absolute)
    except OSError as exc:
        raise ValidationError(
            f"cannot read {absolute}: {exc.strerror or exc}", hint="check its permissions"
        ) from exc
    return LocalInput(absolute, str(absolute), sha256, md5, size)


def _folder_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, sorted; hidden folders skipped, symlinked ones not followed."""
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root) / n for n in names if not n.startswith("."))
    return sorted(p for p in found if p.is_file())


def resolve_inputs(uris: Sequence[str], settings: Settings) -> list[LocalInput]:
    """Inputs for paths, folders and ``s3://`` URIs, in the order given; a folder gives its files, sorted.

    A folder (or an ``s3://bucket/prefix/`` ending in ``/``) expands to every file under it, recursively;
    hidden files and folders are skipped. An input named twice is returned once.

    Raises:
        ValidationError: an unsupported scheme, a missing or unreadable path, an empty folder or prefix.
        NotFoundError, SourceError: an S3 bucket or object that cannot be fetched (see :func:`s3_input`).
    """
    unique: dict[str, LocalInput] = {}
    for uri in uris:
        for item in _resolve_one(uri, settings):
            unique.setdefault(item.source_uri, item)
    return list(unique.values())


def _resolve_one(uri: str, settings: Settings) -> list[LocalInput]:
    if uri.startswith("s3://"):
        bucket, key = split_s3_uri(uri, allow_prefix=True)
        if key and not key.endswith("/"):
            return [s3_input(uri, settings)]
        return [s3_input(f"s3://{bucket}/{k}", settings) for k in list_s3_keys(bucket, key, settings)]
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", uri):
        raise ValidationError(
            f"unsupported input {uri!r}", hint="name a local path, a folder, or s3://bucket/key"
        )
    path = Path(uri).expanduser()
    if not path.is_dir():
        return [local_input(path)]
    files = _folder_files(path)
    if not files:
        raise ValidationError(f"folder {path} holds no files", hint="hidden files are skipped")
    return [local_input(p) for p in files]


def s3_input(uri: str, settings: Settings) -> LocalInput:
    """An S3 object as an input, downloaded into (or reused from) ``<home>/cache/s3``.

    Raises:
        ValidationError: not an ``s3://bucket/key`` URI (or a key ending in ``/``, which names a prefix).
        NotFoundError: no such bucket or key.
        SourceError: no credentials, access denied, or another S3 error.
        SourceUnavailableError: the endpoint cannot be reached.
    """
    fetched = fetch_s3_object(uri, settings)
    return LocalInput(fetched.path, fetched.uri, fetched.sha256, fetched.md5, fetched.size)


def gdc_input(
    file_id: str,
    settings: Settings,
    *,
    expected_md5: str | None,
    expected_size: int | None = None,
    client: httpx.Client | None = None,
    progress: Progress | None = None,
) -> LocalInput:
    """An open GDC file as an input: ``GET {gdc_url}/data/{file_id}``, resumable, verified, cached.

    Args:
        file_id: the GDC file UUID (untrusted: validated).
        settings: ``gdc_url``, the ``gdc_*`` retry settings and ``home`` (the cache).
        expected_md5: the record's ``md5sum``; ``None`` explicitly accepts unverified bytes (logged).
        expected_size: the record's ``file_size``, checked when given.
        client: an httpx client to send with (tests count requests on it); default one of our own.
        progress: called with ``(bytes_done, bytes_total)`` while downloading.

    Raises:
        ValidationError: ``file_id`` is not a UUID, or ``expected_md5`` is not an md5.
        NotFoundError: the GDC has no file with this id.
        GdcRequestError: a controlled file (HTTP 403), or another rejected request.
        SourceError: the bytes do not match ``expected_md5`` / ``expected_size`` (the download is deleted).
        SourceUnavailableError: the download kept failing after every retry.

    Examples:
        >>> gdc_input("not-a-uuid", Settings(), expected_md5=None)
        Traceback (most recent call last):
        ...
        oncograph.errors.ValidationError: not a GDC file id: 'not-a-uuid' (a GDC file id is a UUID, e.g. 2c1f1d2e-8a3b-4f0e-9b7a-2f4d6c8e0a1b)
    """
    file_id = gdc_file_id(file_id)
    fetched = fetch_data_file(
        file_id,
        settings,
        expected_md5=expected_md5,
        expected_size=expected_size,
        client=client,
        progress=progress,
    )
    if expected_md5 is None:
        logger.warning("GDC file %s accepted without an md5 check (expected_md5=None)", file_id)
    return LocalInput(fetched.path, fetched.uri, fetched.sha256, fetched.md5, fetched.size, file_id=file_id)


__all__ = [
    "CHUNK_BYTES",
    "Digests",
    "LocalInput",
    "Progress",
    "file_name_from",
    "gdc_input",
    "hash_file",
    "local_input",
    "resolve_inputs",
    "s3_cache_path",
    "s3_input",
]
