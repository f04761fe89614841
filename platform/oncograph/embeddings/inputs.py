"""Where embedding inputs come from: local paths and folders, S3 objects, and open GDC files from ``/data``.

An encoder reads local files. Every source is therefore turned into a :class:`LocalInput`: a local path plus
what the user named (``source_uri``) and the digests of the bytes. The md5 is what attaches an input to the
graph (GDC ``files.md5sum``); the sha256 names the bytes in provenance.

**Caches.** Remote inputs are downloaded under ``<home>/cache``:

- ``cache/s3/<bucket>/<key>``: the key is split at ``/`` and each segment percent-encoded (``.`` → ``%2E``,
  ``..`` → ``%2E%2E``, an empty segment → ``%``, a backslash and other unsafe characters → ``%XX``), so
  an untrusted key can never name a path outside the cache, and two keys never share a file. A cached
  object is reused when its size and modification time equal the object's ``ContentLength`` and
  ``LastModified`` (the download sets the mtime); otherwise it is downloaded again (``If-Match`` the ETag
  just read, into a temporary file under ``cache/s3/.tmp``, then renamed).
- ``cache/gdc/<file_id>/<file name>``: the name comes from ``Content-Disposition`` (sanitised to one plain
  file name), else the file id. The download streams into ``<name>.part``; a ``.part`` left by an interrupted
  run (or a body cut short) is resumed with ``Range: bytes=<size>-`` (appended on ``206``, restarted on
  ``200``). Only a complete, verified file is renamed to its final name, so a final file is always whole;
  reusing it costs one local read (its md5 is checked again) and no request.

**GDC retries** are those of every oncograph HTTP client (:mod:`oncograph.sources.http_retry`, attempts and
backoff from the ``gdc_*`` settings): connection errors, a body shorter than its ``Content-Length``, 429 and
5xx. Each retry resumes where the last attempt stopped. A ``403`` means a controlled file: oncograph only
fetches open files and never sends a token.

**Verification.** ``expected_md5`` is a required keyword of :func:`gdc_input`: pass the file record's
``md5sum``. Passing ``None`` is the explicit, logged choice to accept unverified bytes (e.g. a stand-in file
with no record); there is no default, so a forgotten md5 is a type error rather than silent trust. A
mismatch deletes the download and raises :class:`~oncograph.errors.SourceError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import quote

import httpx

from oncograph.errors import NotFoundError, SourceError, SourceUnavailableError, ValidationError
from oncograph.settings import Settings
from oncograph.sources.gdc.client import GdcRequestError
from oncograph.sources.http_retry import Retrier, Retry, RetryPolicy, is_retryable_status

logger = logging.getLogger(__name__)

CHUNK_BYTES: Final = 1 << 20
"""Read and write size of hashing and downloads."""

Progress = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``; ``bytes_total`` is 0 while unknown."""

_MD5 = re.compile(r"[0-9a-f]{32}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]")
_PART = ".part"


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


def hash_file(path: Path) -> tuple[str, str, int]:
    """``(sha256, md5, size)`` of a file, in one chunked pass."""
    sha256, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha256.hexdigest(), md5.hexdigest(), size


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
        bucket, key = _split_s3_uri(uri, allow_prefix=True)
        if key and not key.endswith("/"):
            return [s3_input(uri, settings)]
        return [s3_input(f"s3://{bucket}/{k}", settings) for k in _s3_keys(bucket, key, settings)]
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
    bucket, key = _split_s3_uri(uri, allow_prefix=False)
    client = _s3_client(settings)
    head = _s3_call(lambda: client.head_object(Bucket=bucket, Key=key), uri, client, bucket)
    target = s3_cache_path(settings.home_dir, bucket, key)
    size, mtime = int(head["ContentLength"]), head["LastModified"].timestamp()
    if not _cached(target, size, mtime):
        download = _S3Object(client, bucket, key, uri)
        download.fetch(target, etag=head["ETag"], mtime=mtime, tmp_dir=_s3_root(settings.home_dir) / ".tmp")
    sha256, md5, got = hash_file(target)
    return LocalInput(target, f"s3://{bucket}/{key}", sha256, md5, got)


def s3_cache_path(home: Path, bucket: str, key: str) -> Path:
    """Where the object ``bucket``/``key`` is cached: every key segment percent-encoded, inside the cache.

    Raises:
        ValidationError: a key segment too long to be a file name.
    """
    root = _s3_root(home)
    segments = [_encode_segment(s) for s in key.split("/")]
    if any(len(s.encode()) > 255 for s in segments):
        raise ValidationError(f"S3 key {key!r} has a segment too long for a local file name")
    target = root.joinpath(bucket, *segments)
    if not target.resolve().is_relative_to(root.resolve()):  # defence in depth; encoding already prevents it
        raise ValidationError(f"S3 key {key!r} would be cached outside {root}")
    return target


def _s3_root(home: Path) -> Path:
    return home / "cache" / "s3"


def _encode_segment(segment: str) -> str:
    if segment in (".", ".."):
        return segment.replace(".", "%2E")
    return quote(segment, safe=" ()+,=@") or "%"


def _split_s3_uri(uri: str, *, allow_prefix: bool) -> tuple[str, str]:
    # Not urlsplit: a key may hold '?', '#' and '%', which are part of the key, not URL syntax.
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValidationError(f"not an S3 bucket name in {uri!r}", hint="use s3://bucket/key")
    if not allow_prefix and (not key or key.endswith("/")):
        raise ValidationError(
            f"{uri!r} names a prefix, not an object", hint="name one object, s3://bucket/key"
        )
    return bucket, key


def _cached(target: Path, size: int, mtime: float) -> bool:
    try:
        stat = target.stat()
    except OSError:
        return False
    return target.is_file() and stat.st_size == size and int(stat.st_mtime) == int(mtime)


def _s3_client(settings: Settings) -> Any:
    import boto3  # here, not at import: boto3 takes ~0.3 s to import and only S3 inputs need it

    # A session of its own: boto3's default session caches the credentials it found first, for the process.
    return boto3.session.Session().client("s3", endpoint_url=settings.s3_endpoint_url)


@dataclass(frozen=True, slots=True)
class _S3Object:
    client: Any
    bucket: str
    key: str
    uri: str

    def fetch(self, target: Path, *, etag: str, mtime: float, tmp_dir: Path) -> None:
        """Download into a temporary file (``If-Match`` the ETag just read), stamp ``mtime``, rename."""
        tmp_dir.mkdir(parents=True, exist_ok=True)  # <cache>/s3/.tmp: no bucket can be named '.tmp'
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise SourceError(
                f"cannot cache {self.uri}: a cached object is in the way ({exc.filename})",
                hint="S3 lets a key be both an object and a prefix; remove the cached file and retry",
            ) from exc
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="download-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                _s3_call(lambda: self._copy_into(out, etag), self.uri, self.client, self.bucket)
            os.utime(tmp, (mtime, mtime))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _copy_into(self, out: BinaryIO, etag: str) -> None:
        # If-Match the ETag just read, so that an object replaced meanwhile fails rather than mixing versions.
        body = self.client.get_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)["Body"]
        for chunk in body.iter_chunks(CHUNK_BYTES):
            out.write(chunk)


def _s3_keys(bucket: str, prefix: str, settings: Settings) -> list[str]:
    client = _s3_client(settings)
    uri = f"s3://{bucket}/{prefix}"

    def listing() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    keys = sorted(k for k in _s3_call(listing, uri, client, bucket) if _visible_key(k[len(prefix) :]))
    if not keys:
        raise ValidationError(f"no objects under {uri}", hint="hidden objects and folder markers are skipped")
    return keys


def _visible_key(relative: str) -> bool:
    return (
        bool(relative)
        and not relative.endswith("/")
        and not any(p.startswith(".") for p in relative.split("/"))
    )


def _s3_call(call: Callable[[], Any], uri: str, client: Any, bucket: str) -> Any:
    """Run an S3 call and turn botocore's errors into oncograph's."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    try:
        return call()
    except NoCredentialsError as exc:
        raise SourceError(
            f"no AWS credentials to read {uri}",
            hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE (boto3's credential chain)",
        ) from exc
    except EndpointConnectionError as exc:
        raise SourceUnavailableError(
            f"cannot reach S3 for {uri}: {exc}", hint="check ONCOGRAPH_S3_ENDPOINT_URL"
        ) from exc
    except ClientError as exc:
        raise _s3_error(exc, uri, client, bucket) from exc
    except BotoCoreError as exc:
        raise SourceError(f"S3 failed on {uri}: {exc}") from exc


def _s3_error(exc: Any, uri: str, client: Any, bucket: str) -> Exception:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in ("404", "NoSuchKey", "NoSuchBucket"):
        if code == "NoSuchBucket" or not _bucket_exists(client, bucket):
            return NotFoundError(
                f"no S3 bucket {bucket!r} (for {uri})", hint="check the bucket name and endpoint"
            )
        return NotFoundError(f"no S3 object {uri}", hint="check the key; keys are case-sensitive")
    if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return SourceError(
            f"S3 refused access to {uri} ({code})", hint="check the credentials and the bucket policy"
        )
    if code in ("412", "PreconditionFailed"):
        return SourceError(f"{uri} changed while it was being downloaded", hint="retry")
    return SourceError(f"S3 failed on {uri}: {code} {exc}")


def _bucket_exists(client: Any, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        return str(exc.response.get("Error", {}).get("Code", "")) not in ("404", "NoSuchBucket")
    return True


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
    file_id = _gdc_file_id(file_id)
    md5 = _expected_md5(expected_md5)
    url = f"{settings.gdc_url.rstrip('/')}/data/{file_id}"
    folder = settings.home_dir / "cache" / "gdc" / file_id
    found = _cached_gdc_file(folder, md5, expected_size)
    if found is None:
        part = _download(url, folder, settings, client=client, progress=progress, fallback_name=file_id)
        found = _verify(part, md5, expected_size, url)
    if md5 is None:
        logger.warning("GDC file %s accepted without an md5 check (expected_md5=None)", file_id)
    path, (sha256, got_md5, size) = found
    return LocalInput(path, url, sha256, got_md5, size, file_id=file_id)


def _gdc_file_id(file_id: str) -> str:
    try:
        parsed = uuid.UUID(file_id.strip())
    except (ValueError, AttributeError) as exc:
        raise ValidationError(
            f"not a GDC file id: {file_id!r}",
            hint="a GDC file id is a UUID, e.g. 2c1f1d2e-8a3b-4f0e-9b7a-2f4d6c8e0a1b",
        ) from exc
    if str(parsed) != file_id.strip().lower():  # refuse the braced, URN and dashless spellings
        raise ValidationError(f"not a GDC file id: {file_id!r}", hint="write it as 8-4-4-4-12 hex digits")
    return str(parsed)


def _expected_md5(value: str | None) -> str | None:
    if value is None:
        return None
    md5 = value.strip().lower()
    if not _MD5.fullmatch(md5):
        raise ValidationError(
            f"not an md5 digest: {value!r}", hint="32 hexadecimal characters (files.md5sum)"
        )
    return md5


Digests = tuple[str, str, int]


def _cached_gdc_file(folder: Path, md5: str | None, size: int | None) -> tuple[Path, Digests] | None:
    """The complete file downloaded before, when its bytes still match; a stale one is deleted."""
    finals = [p for p in _listing(folder) if not p.name.endswith(_PART) and p.is_file()]
    for path in finals:
        digests = hash_file(path)
        if (md5 is None or digests[1] == md5) and (size is None or digests[2] == size):
            return path, digests
        logger.warning("cached %s does not match its record; downloading it again", path)
        path.unlink(missing_ok=True)
    return None


def _listing(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except FileNotFoundError:
        return []


def _verify(path: Path, md5: str | None, size: int | None, url: str) -> tuple[Path, Digests]:
    digests = hash_file(path)
    problem = ""
    if md5 is not None and digests[1] != md5:
        problem = f"md5 {digests[1]} where the record says {md5}"
    elif size is not None and digests[2] != size:
        problem = f"{digests[2]} bytes where the record says {size}"
    if problem:
        path.unlink(missing_ok=True)
        raise SourceError(
            f"download of {url} does not match its record: {problem}; the download was deleted",
            hint="retry; if it happens again, the file record and the bytes served disagree",
        )
    final = path.with_name(path.name.removesuffix(_PART))
    os.replace(path, final)
    return final, digests


def _download(
    url: str,
    folder: Path,
    settings: Settings,
    *,
    client: httpx.Client | None,
    progress: Progress | None,
    fallback_name: str,
) -> Path:
    """Stream ``url`` into a ``.part`` in ``folder``, resuming any left there; the complete ``.part``."""
    folder.mkdir(parents=True, exist_ok=True)
    policy = RetryPolicy(settings.gdc_max_attempts, settings.gdc_backoff_base_s, settings.gdc_backoff_max_s)
    http = client or httpx.Client(timeout=httpx.Timeout(settings.gdc_timeout_s))
    try:
        download = _Download(http, url, folder, fallback_name, progress)
        hint = "retry: the download resumes where it stopped"
        return Retrier(policy).call(download.send, download.handle, what=f"GDC GET {url}", hint=hint)
    finally:
        if client is None:
            http.close()


class _Download:
    """One resumable download: :meth:`send` streams an attempt into the ``.part``; :meth:`handle` judges."""

    def __init__(
        self, http: httpx.Client, url: str, folder: Path, fallback_name: str, progress: Progress | None
    ):
        self.http, self.url, self.folder, self.progress = http, url, folder, progress
        self.fallback_name = fallback_name
        parts = [p for p in _listing(folder) if p.name.endswith(_PART)]
        for stale in parts[1:]:
            stale.unlink(missing_ok=True)
        self.part: Path | None = parts[0] if parts else None
        self.total: int | None = None
        self.failure = ""

    def _offset(self) -> int:
        return self.part.stat().st_size if self.part is not None and self.part.exists() else 0

    def send(self) -> httpx.Response:
        offset = self._offset()
        headers = {"Accept-Encoding": "identity", "User-Agent": "oncograph-gdc-data/0.1"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        self.failure = ""
        with self.http.stream("GET", self.url, headers=headers, follow_redirects=True) as response:
            if response.status_code in (200, 206):
                self._receive(response, offset)
            else:
                response.read()
        return response

    def _receive(self, response: httpx.Response, offset: int) -> None:
        start, total = 0, _int(response.headers.get("Content-Length"))
        if response.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if match is None or int(match.group(1)) != offset:
                self.failure = (
                    f"206 with Content-Range {response.headers.get('Content-Range')!r} for offset {offset}"
                )
                self._discard()
                return
            start, total = offset, int(match.group(3))
        self.total = total
        if self.part is None:
            self.part = self.folder / (file_name_from(response.headers, self.fallback_name) + _PART)
        with self.part.open("ab" if start else "wb") as out:
            done = start
            for chunk in response.iter_raw():  # no chunk size: httpx would hold back a partial chunk
                out.write(chunk)
                done += len(chunk)
                if self.progress is not None:
                    self.progress(done, total or 0)

    def handle(self, response: httpx.Response) -> Path | Retry:
        status = response.status_code
        if status in (200, 206):
            return self._complete()
        if status == 416:
            return self._unsatisfied(response)
        if status == 403:
            raise GdcRequestError(
                f"GDC refused {self.url} (HTTP 403): a controlled-access file needs a GDC token",
                status_code=status,
                url=self.url,
                hint="oncograph only fetches open files; download controlled files with gdc-client and a "
                "dbGaP-authorized token, then pass the local path",
            )
        if status == 404:
            raise NotFoundError(
                f"GDC has no file {self.url.rsplit('/', 1)[-1]} ({self.url})", hint="check the file id"
            )
        if is_retryable_status(status):
            return Retry.for_status(response, response.text[:300].strip() or None)
        raise GdcRequestError(
            f"GDC rejected {self.url} with HTTP {status}: {response.text[:300].strip()}",
            status_code=status,
            url=self.url,
            hint="retrying will not help",
        )

    def _complete(self) -> Path | Retry:
        if self.failure or self.part is None:
            return Retry(self.failure or "no body")
        size = self._offset()
        if self.total is not None and size != self.total:
            return Retry(f"body ended at {size} of {self.total} bytes")
        return self.part

    def _unsatisfied(self, response: httpx.Response) -> Path | Retry:
        match = _UNSATISFIED_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if self.part is not None and match is not None and self._offset() == int(match.group(1)):
            # The .part was already whole: an earlier run stopped between its last byte and the rename.
            return self.part
        self._discard()
        return Retry(f"range bytes={self._offset()}- not satisfiable; restarting from the first byte")

    def _discard(self) -> None:
        if self.part is not None:
            self.part.unlink(missing_ok=True)


def file_name_from(headers: httpx.Headers, fallback: str) -> str:
    """The file name of ``Content-Disposition``, made one safe local file name; ``fallback`` when none.

    The header is untrusted: only the last path component is kept, characters outside ``[A-Za-z0-9._+-]``
    become ``_``, leading dots are dropped (no hidden files, no ``..``) and the length is capped.
    """
    value = headers.get("Content-Disposition")
    if not value:
        return fallback
    message = Message()
    message["Content-Disposition"] = value
    raw = message.get_filename() or ""
    base = re.split(r"[/\\]", raw)[-1]
    safe = _UNSAFE_NAME.sub("_", base).lstrip(".")[:200]
    return safe if safe and not safe.endswith(_PART) else fallback


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
