"""Where per-tile feature files live: a local folder or an ``s3://bucket/prefix`` (``ONCOGRAPH_FEATURES_ROOT``).

On one machine the default, ``<home>/features``, is enough. On a cluster the process that embeds (a Prefect
worker's flow run, the Ray driver) and the one that exports (``oncograph worker``) do not share a disk, so
the root is an object-store prefix both reach: ``s3://<features bucket>/features``, with
``ONCOGRAPH_S3_ENDPOINT_URL`` for a store that is not AWS S3 (MinIO, moto) and boto3's credential chain.

- **Layout**: ``<root>/<encoder>/<encoder version hash>/<input sha256>.h5`` (one file per encoder version and
  input, so a re-run replaces it). The embedding row records the file's URI (an absolute path when the root
  is local, as before this module, or ``s3://bucket/key``), its sha256 and its size.
- **Writes are atomic**: a local root gets a temporary file in the destination folder renamed into place;
  an S3 root gets the file written and hashed in a local temporary folder (``<home>/tmp/features``), then
  uploaded with one PUT (or one multipart upload), which S3 makes visible whole or not at all, and the stored
  object's size checked against the bytes hashed.
- **Reads** (:class:`FeatureFile`) go through the same URI: ``stat`` (size and a version token: mtime and
  inode locally, the ETag on S3) and ``open`` (a seekable binary file, which h5py reads directly), so a reader
  can tell the file changed under it.

Errors: a missing file is :class:`~oncograph.errors.NotFoundError`; credentials, access and endpoint
problems are :class:`~oncograph.errors.ConfigurationError`, naming the URI and what to check.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from oncograph.errors import ConfigurationError, NotFoundError, OncographError, ValidationError
from oncograph.settings import Settings

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: Read block of S3 feature files (h5py reads headers in small pieces; 4 MiB blocks keep requests few).
S3_BLOCK_BYTES = 4 << 20


def check_features_root(root: str) -> str:
    """``root`` normalised: an absolute folder path, or ``s3://bucket/prefix`` without a trailing slash.

    Raises:
        ValidationError: another scheme, or an S3 URI without a valid bucket and a prefix.
    """
    root = root.strip()
    if root.startswith("s3://"):
        bucket, _, prefix = root[5:].partition("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket or not prefix.strip("/"):
            raise ValidationError(
                f"ONCOGRAPH_FEATURES_ROOT={root!r} needs a bucket and a prefix",
                hint="s3://<features bucket>/features",
            )
        return f"s3://{bucket}/{prefix.strip('/')}"
    if not root or "://" in root:
        raise ValidationError(
            f"ONCOGRAPH_FEATURES_ROOT={root!r} is neither a folder nor s3://bucket/prefix",
            hint="a local folder (/var/lib/oncograph/features) or s3://<features bucket>/features",
        )
    return str(Path(root).expanduser().resolve())


def _filesystem(endpoint_url: str | None) -> Any:
    import s3fs  # here, not at import: only S3 roots need it

    kwargs: dict[str, Any] = {}
    if endpoint_url:
        kwargs["client_kwargs"] = {"endpoint_url": endpoint_url}
    # no instance or listing cache: a file another process just wrote must be seen as it is now
    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **kwargs)


@contextmanager
def _s3_errors(uri: str) -> Iterator[None]:
    """botocore/s3fs errors as oncograph's, naming ``uri`` (a missing key is NotFoundError)."""
    try:
        yield
    except OncographError:
        raise
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"no feature file {uri}", hint="check the key and ONCOGRAPH_FEATURES_ROOT"
        ) from exc
    except PermissionError as exc:
        raise ConfigurationError(
            f"S3 refused access to {uri}: {exc}",
            hint="check the credentials (boto3's chain: AWS_* variables, a profile or the instance role) and "
            "the bucket policy",
        ) from exc
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            raise ConfigurationError(
                f"no AWS credentials for {uri}",
                hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role",
            ) from exc
        if isinstance(exc, BotoCoreError | OSError):
            raise ConfigurationError(
                f"S3 failed on {uri}: {str(exc)[:300]}",
                hint="check ONCOGRAPH_S3_ENDPOINT_URL, the network and the bucket",
            ) from exc
        raise


@dataclass(frozen=True, slots=True)
class FeatureStore:
    """The feature-file root of one deployment (see the module docstring)."""

    root: str
    endpoint_url: str | None = None
    tmp_dir: Path | None = None
    """Local staging of files bound for S3 (default: the system's temporary folder)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureStore:
        return _store(settings.features_root, settings.s3_endpoint_url, settings.home_dir)

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def uri(self, relative: str) -> str:
        """The URI of ``relative`` (``/``-separated, no ``..``) under the root."""
        parts = relative.split("/")
        if not relative or any(p in ("", ".", "..") for p in parts):
            raise ValidationError(f"invalid feature-file name {relative!r}")
        return f"{self.root}/{relative}" if self.is_s3 else str(Path(self.root, *parts))

    def write(self, relative: str, write_local: Callable[[Path], tuple[str, int]]) -> tuple[str, str, int]:
        """Publish one file at ``relative``: ``write_local(path)`` writes it atomically to a local path and
        returns its (sha256, size); returns (URI, sha256, size).

        Raises:
            ConfigurationError: the S3 upload failed (credentials, access, endpoint), or the stored object
                is not the size written.
        """
        uri = self.uri(relative)
        if not self.is_s3:
            sha, size = write_local(Path(uri))
            return uri, sha, size
        staging = self.tmp_dir or Path(tempfile.gettempdir())
        staging.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=staging, prefix="features-"))
        try:
            sha, size = write_local(folder / Path(relative).name)
            fs = _filesystem(self.endpoint_url)
            try:
                with _s3_errors(uri):
                    fs.put_file(str(folder / Path(relative).name), uri[5:])
                    stored = int(fs.info(uri[5:])["size"])
            except NotFoundError as exc:  # S3 answers NoSuchBucket to a PUT
                bucket = uri[5:].split("/", 1)[0]
                raise ConfigurationError(
                    f"cannot write {uri}: there is no bucket {bucket!r}",
                    hint="create it, or fix ONCOGRAPH_FEATURES_ROOT / ONCOGRAPH_S3_ENDPOINT_URL",
                ) from exc
            if stored != size:
                raise ConfigurationError(
                    f"{uri} holds {stored} bytes after the upload of {size}", hint="retry the embedding"
                )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return uri, sha, size


@functools.lru_cache(maxsize=8)
def _store(root: str | None, endpoint_url: str | None, home: Path) -> FeatureStore:
    if root is None:
        return FeatureStore(str(home / "features"))
    checked = check_features_root(root)
    return FeatureStore(checked, endpoint_url, home / "tmp" / "features")


@dataclass(frozen=True, slots=True)
class FileStat:
    size: int
    version: str
    """Changes when the file is replaced: mtime and inode locally, the ETag on S3."""


@dataclass(frozen=True, slots=True)
class FeatureFile:
    """A feature file named by the URI an embedding records: a local path, ``file://`` URL or ``s3://``."""

    uri: str
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        if "://" in self.uri and not self.uri.startswith(("s3://", "file:")):
            raise ValidationError(
                f"unsupported feature-file location {self.uri!r}", hint="a local path or s3://bucket/key"
            )

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    @property
    def local_path(self) -> Path | None:
        if self.is_s3:
            return None
        if self.uri.startswith("file:"):
            from urllib.parse import unquote, urlsplit
            from urllib.request import url2pathname

            parts = urlsplit(self.uri)
            if parts.netloc not in ("", "localhost"):
                raise ValidationError(f"feature file {self.uri!r} is on another host", hint="file:///path")
            return Path(url2pathname(unquote(parts.path)))
        return Path(self.uri)

    def stat(self) -> FileStat:
        """Size and version of the file.

        Raises:
            NotFoundError: no such file.
            ConfigurationError: it cannot be read (permissions, S3 credentials or endpoint).
        """
        path = self.local_path
        if path is not None:
            try:
                st = path.stat()
            except FileNotFoundError as exc:
                raise NotFoundError(f"no feature file {path}") from exc
            except OSError as exc:
                raise ConfigurationError(f"cannot read the feature file {path}: {exc}") from exc
            return FileStat(st.st_size, f"{st.st_mtime_ns}:{st.st_ino}")
        with _s3_errors(self.uri):
            info = _filesystem(self.endpoint_url).info(self.uri[5:])
        return FileStat(int(info["size"]), str(info.get("ETag") or info.get("LastModified")))

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The file, open for binary reading (seekable; h5py reads it as is)."""
        path = self.local_path
        if path is not None:
            try:
                handle: Any = path.open("rb")
            except FileNotFoundError as exc:
                raise NotFoundError(f"no feature file {path}") from exc
            except OSError as exc:
                raise ConfigurationError(f"cannot read the feature file {path}: {exc}") from exc
            with handle:
                yield handle
            return
        with _s3_errors(self.uri):
            handle = _filesystem(self.endpoint_url).open(
                self.uri[5:], "rb", block_size=S3_BLOCK_BYTES, cache_type="readahead"
            )
        with handle:
            yield handle

    def __str__(self) -> str:
        return self.uri
