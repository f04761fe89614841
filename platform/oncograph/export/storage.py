"""Where an export is written: a local folder or an ``s3://bucket/prefix``, published atomically.

Everything is written under a staging location first; publishing makes the whole export appear at once:

- **local**: staging is a hidden sibling folder (``.<name>.staging-<token>``) on the same filesystem; publish
  is one ``rename`` (atomic). An existing export is replaced only with ``overwrite`` (moved aside first,
  then removed).
- **S3** has no rename: staging is ``<prefix>.staging-<token>/``; publish copies every data file to the final
  prefix and writes ``manifest.json`` **last**. The manifest is the commit record: an export exists exactly
  when its ``manifest.json`` does, and the manifest holds the SHA-256 of every file. A crash before that
  leaves no manifest (nothing published); the next run removes the leftovers.

Credentials come from the environment (boto3's chain: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a
profile or an instance role); ``ONCOGRAPH_S3_ENDPOINT_URL`` points at another S3 endpoint (MinIO, moto).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from oncograph.errors import ConfigurationError, ConflictError, ValidationError

MANIFEST = "manifest.json"


@dataclass
class Destination:
    """An export target. ``url`` is a local path or ``s3://bucket/prefix``."""

    url: str
    endpoint_url: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    def __post_init__(self) -> None:
        if self.url.startswith(("http://", "https://", "gs://", "az://")):
            raise ValidationError(
                f"unsupported export destination {self.url!r}",
                hint="use a local folder or s3://bucket/prefix",
            )
        if self.is_s3:
            bucket, _, prefix = self.url[5:].partition("/")
            if not bucket or not prefix.strip("/"):
                raise ValidationError(
                    f"S3 destination {self.url!r} needs a bucket and a prefix",
                    hint="s3://bucket/exports/name",
                )
            self.url = "s3://" + bucket + "/" + prefix.strip("/")
        else:
            self.url = str(Path(self.url).expanduser().resolve())

    def filesystem(self) -> Any:
        if not self.is_s3:
            return None
        try:
            import s3fs
        except ImportError as exc:  # pragma: no cover - s3fs is a dependency
            raise ConfigurationError("s3fs is not installed", hint="pip install 's3fs[boto3]'") from exc
        kwargs: dict[str, Any] = {}
        if self.endpoint_url:
            kwargs["client_kwargs"] = {"endpoint_url": self.endpoint_url}
        # no instance or listing cache: another process's staging or export must be seen as it is now
        return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **kwargs)


class Staging:
    """Files of one export being written; :meth:`publish` makes them visible at the destination at once."""

    def __init__(self, destination: Destination, *, overwrite: bool) -> None:
        self.destination = destination
        self.overwrite = overwrite
        self.token = secrets.token_hex(6)
        self.fs = destination.filesystem()
        if destination.is_s3:
            self.root = destination.url[5:] + f".staging-{self.token}"
        else:
            final = Path(destination.url)
            self.root = str(final.parent / f".{final.name}.staging-{self.token}")
        self.written: list[str] = []

    def check_target(self) -> None:
        """Fail early when the destination already holds an export (and ``overwrite`` is off) or cannot be
        written."""
        if self.destination.is_s3:
            final = self.destination.url[5:]
            try:
                exists = self.fs.exists(f"{final}/{MANIFEST}")
                bucket = final.split("/", 1)[0]
                self.fs.ls(bucket)
            except PermissionError as exc:
                raise ConfigurationError(
                    f"access denied to {self.destination.url}: {exc}",
                    hint="check the AWS credentials in the environment and the bucket policy",
                ) from exc
            except FileNotFoundError as exc:
                raise ConfigurationError(
                    f"bucket of {self.destination.url} does not exist", hint="create it or fix the URL"
                ) from exc
        else:
            final_path = Path(self.destination.url)
            exists = final_path.exists() and any(final_path.iterdir())
            final_path.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(final_path.parent, os.W_OK):
                raise ConfigurationError(f"cannot write to {final_path.parent}")
        if exists and not self.overwrite:
            raise ConflictError(
                f"{self.destination.url} already holds an export",
                hint="choose another destination or pass overwrite",
            )

    @contextmanager
    def open(self, relative: str) -> Iterator[BinaryIO]:
        path = f"{self.root}/{relative}"
        if self.fs is None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                yield fh
        else:
            with self._s3_errors(), self.fs.open(path, "wb", block_size=8 << 20) as fh:
                yield fh
        self.written.append(relative)

    @contextmanager
    def _s3_errors(self) -> Iterator[None]:
        try:
            yield
        except PermissionError as exc:
            raise ConfigurationError(
                f"access denied writing to {self.destination.url}: {exc}",
                hint="check the AWS credentials in the environment and the bucket policy",
            ) from exc

    def publish(self, manifest_bytes: bytes) -> None:
        """Write the manifest and make the export visible (see the module docstring)."""
        if self.fs is None:
            with open(f"{self.root}/{MANIFEST}", "wb") as fh:
                fh.write(manifest_bytes)
                fh.flush()
                os.fsync(fh.fileno())
            final = Path(self.destination.url)
            aside = None
            if final.exists():
                if not self.overwrite and any(final.iterdir()):
                    raise ConflictError(f"{final} appeared while exporting", hint="export again elsewhere")
                aside = final.parent / f".{final.name}.old-{self.token}"
                final.rename(aside)
            try:
                os.rename(self.root, final)
            except BaseException:
                if aside is not None and not final.exists():
                    aside.rename(final)  # put the previous export back
                raise
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
            return
        final_prefix = self.destination.url[5:]
        with self._s3_errors():
            if self.overwrite and self.fs.exists(f"{final_prefix}/{MANIFEST}"):
                self.fs.rm(f"{final_prefix}/{MANIFEST}")  # unpublish the old export first
                keep = {f"{final_prefix}/{relative}" for relative in self.written}
                stale = [k for k in self.fs.find(final_prefix) if k not in keep]
                if stale:
                    self.fs.rm(stale)  # files of the old export the new one lacks
            for relative in self.written:
                self.fs.copy(f"{self.root}/{relative}", f"{final_prefix}/{relative}")
            with self.fs.open(f"{final_prefix}/{MANIFEST}", "wb") as fh:
                fh.write(manifest_bytes)
            self.fs.rm(self.root, recursive=True)

    def abort(self) -> None:
        """Remove the staging files (best effort; nothing was published)."""
        try:
            if self.fs is None:
                shutil.rmtree(self.root, ignore_errors=True)
            elif self.fs.exists(self.root):
                self.fs.rm(self.root, recursive=True)
        except Exception:
            pass


def remove_stale_staging(destination: Destination) -> int:
    """Remove staging leftovers of killed exports to ``destination``; returns how many."""
    removed = 0
    if destination.is_s3:
        fs = destination.filesystem()
        parent, _, name = destination.url[5:].rpartition("/")
        try:
            entries = fs.ls(parent)
        except (FileNotFoundError, PermissionError):
            return 0
        for entry in entries:
            if entry.rsplit("/", 1)[-1].startswith(f"{name}.staging-"):
                fs.rm(entry, recursive=True)
                removed += 1
        return removed
    final = Path(destination.url)
    if final.parent.exists():
        for pattern in (f".{final.name}.staging-*", f".{final.name}.old-*"):
            for entry in final.parent.glob(pattern):
                if pattern.endswith("old-*") and not final.exists():
                    entry.rename(final)  # a publish died between moving the old export aside and renaming
                else:
                    shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed
