"""S3 objects fetched into a local cache, with boto3's credential chain and oncograph's errors.

The cache is ``<home>/cache/s3/<bucket>/<key>``: the key is split at ``/`` and each segment percent-encoded
(``.`` → ``%2E``, ``..`` → ``%2E%2E``, an empty segment → ``%``, a backslash and other unsafe characters →
``%XX``), so an untrusted key can never name a path outside the cache, and two keys never share a file. A
cached object is reused when its size and modification time equal the object's ``ContentLength`` and
``LastModified`` (the download sets the mtime); otherwise it is downloaded again (``If-Match`` the ETag just
read, into a temporary file under ``cache/s3/.tmp``, then renamed).

botocore's errors become :class:`~oncograph.errors.NotFoundError` (no bucket or key),
:class:`~oncograph.errors.SourceUnavailableError` (endpoint unreachable) or
:class:`~oncograph.errors.SourceError` (credentials, access, anything else).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from oncograph.errors import NotFoundError, SourceError, SourceUnavailableError, ValidationError
from oncograph.settings import Settings
from oncograph.sources.fetched import CHUNK_BYTES, FetchedFile, hash_file

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def fetch_s3_object(uri: str, settings: Settings) -> FetchedFile:
    """An S3 object, downloaded into (or reused from) ``<home>/cache/s3``.

    Raises:
        ValidationError: not an ``s3://bucket/key`` URI (or a key ending in ``/``, which names a prefix).
        NotFoundError: no such bucket or key.
        SourceError: no credentials, access denied, or another S3 error.
        SourceUnavailableError: the endpoint cannot be reached.
    """
    bucket, key = split_s3_uri(uri, allow_prefix=False)
    client = _s3_client(settings)
    head = _s3_call(lambda: client.head_object(Bucket=bucket, Key=key), uri, client, bucket)
    target = s3_cache_path(settings.home_dir, bucket, key)
    size, mtime = int(head["ContentLength"]), head["LastModified"].timestamp()
    if not _cached(target, size, mtime):
        download = _S3Object(client, bucket, key, uri)
        download.fetch(target, etag=head["ETag"], mtime=mtime, tmp_dir=_s3_root(settings.home_dir) / ".tmp")
    sha256, md5, got = hash_file(target)
    return FetchedFile(target, f"s3://{bucket}/{key}", sha256, md5, got)


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


def split_s3_uri(uri: str, *, allow_prefix: bool) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; ``allow_prefix``: the key may be empty or end in ``/``."""
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


def list_s3_keys(bucket: str, prefix: str, settings: Settings) -> list[str]:
    """The keys under ``prefix``, sorted; hidden objects and folder markers are skipped."""
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
