"""Where an export is written: a local folder or an ``s3://bucket/prefix``, published atomically.

Everything is written under a staging location first; publishing makes the whole export appear at once:

- **local**: staging is a hidden sibling folder (``.<name>.staging-<token>``) on the same filesystem; publish
  is one ``rename`` (atomic). An existing export is replaced only with ``overwrite`` (moved aside first,
  then removed).
- **S3** has no rename: staging is ``<prefix>.staging-<token>/``; publish copies every data file to the final
  prefix and writes ``manifest.json`` **last**. The manifest is the commit record: an export exists exactly
  when its ``manifest.json`` does, and the manifest holds the SHA-256 of every file. A crash before that
  leaves no manifest (nothing published); the next run removes the leftovers.

Only a destination that holds nothing, or an earlier oncograph export (a ``manifest.json`` with our
``export_schema_version``), may be written: a folder or prefix with anything else in it is refused, with or
without ``overwrite``, so an export never deletes files that are not an export. ``overwrite`` replaces an
earlier export only when the folder (prefix) holds exactly that export's files: every file and folder is
compared with the manifest's file list (``manifest.json`` itself included; nothing is ignored, hidden files
neither), and anything else refuses the overwrite, naming what is in the way. The check runs when the export
is queued, when it starts, and again when it publishes.

A local destination may be given as a path or a ``file://`` URL (``file:///data/x``, ``file://localhost/x``).

Credentials come from the environment (boto3's chain: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a
profile or an instance role); ``ONCOGRAPH_S3_ENDPOINT_URL`` points at another S3 endpoint (MinIO, moto).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from oncograph.errors import ConfigurationError, ConflictError, ValidationError

MANIFEST = "manifest.json"
#: The key that marks a manifest as an oncograph export's (see ``schema.EXPORT_SCHEMA_VERSION``).
MANIFEST_MARK = "export_schema_version"
_MAX_MANIFEST_BYTES = 256 << 20
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//|$)")


def safe_part(name: str) -> str:
    """``name`` (a model, a modality, an object id) as one portable path component of an export."""
    return re.sub(r"[^0-9A-Za-z._-]+", "_", name).strip("_") or "unnamed"


def is_export_manifest(data: bytes) -> dict[str, Any] | None:
    """The parsed manifest when ``data`` is an oncograph export's ``manifest.json``, else None."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict) and MANIFEST_MARK in doc and isinstance(doc.get("files"), list):
        return doc
    return None


def owned_paths(manifest: dict[str, Any]) -> set[str]:
    """The relative paths an export owns: its manifest's files and ``manifest.json``."""
    paths = {MANIFEST}
    for entry in manifest.get("files") or ():
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            paths.add(entry["path"])
    return paths


def local_foreign(root: Path, owned: set[str]) -> list[str]:
    """Files and folders under ``root`` that are not among ``owned`` (relative paths): the topmost foreign
    entries, folders with a trailing ``/``. Nothing is ignored; a symlink or an unreadable folder is foreign."""
    folders = {"/".join(parts[:i]) for parts in (p.split("/") for p in owned) for i in range(1, len(parts))}
    found: list[str] = []

    def unreadable(exc: OSError) -> None:
        where = Path(str(exc.filename or root))
        found.append(f"{where.relative_to(root).as_posix() if where != root else '.'}/")

    for here, dirs, files in os.walk(root, onerror=unreadable):
        rel = Path(here).relative_to(root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        for name in sorted(dirs):
            if f"{prefix}{name}" not in folders or os.path.islink(os.path.join(here, name)):
                found.append(f"{prefix}{name}/")
                dirs.remove(name)  # reported as one entry; never walked into
        found.extend(f"{prefix}{name}" for name in sorted(files) if f"{prefix}{name}" not in owned)
    return sorted(found)


def foreign_files_error(url: str, foreign: list[str]) -> ConflictError:
    """The refusal to overwrite an export whose folder also holds ``foreign`` paths (up to 5 are named)."""
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    todo = f"move them out of {url} and try again, or export elsewhere"
    return ConflictError(
        f"{url} holds an oncograph export and {len(foreign)} file(s) or folder(s) its manifest does not list "
        f"({shown}); overwrite never deletes what is not the export's own: {todo}",
        hint=todo,
    )


def _local_path(url: str) -> str:
    """A ``file://`` URL as a local path."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ValidationError(
            f"unsupported file URL {url!r}: only local files",
            hint="use file:///absolute/path or a plain folder path",
        )
    path = url2pathname(unquote(parts.path))
    if not path.strip("/"):
        raise ValidationError(f"file URL {url!r} names no folder", hint="file:///absolute/path/to/export")
    return path


@dataclass
class Destination:
    """An export target. ``url`` is a local path or ``s3://bucket/prefix``."""

    url: str
    endpoint_url: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    def __post_init__(self) -> None:
        if not self.url.strip():
            raise ValidationError(
                "the export destination is empty",
                hint="pass a new folder (e.g. ./my-export) or s3://bucket/prefix",
            )
        if self.url.startswith("file:"):
            self.url = _local_path(self.url)
        elif not self.is_s3 and _SCHEME.match(self.url):
            raise ValidationError(
                f"unsupported export destination {self.url!r}",
                hint="use a local folder, file:///path or s3://bucket/prefix",
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
            resolved = Path(self.url).expanduser().resolve()
            if resolved == resolved.parent:
                raise ValidationError(
                    f"cannot export to the filesystem root {resolved}", hint="choose a folder to create"
                )
            self.url = str(resolved)

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

    def check_target(self, *, create: bool = True) -> None:
        """Fail early when the destination cannot be written: it holds something that is not an oncograph
        export, it holds an export and ``overwrite`` is off, it holds an export and files the export's
        manifest does not list, it is a file, or access is denied. ``create`` makes the missing parent
        folders (the worker); without it nothing is changed (the check when the export is queued)."""
        if self.destination.is_s3:
            final = self.destination.url[5:]
            with self._s3_errors():
                try:
                    bucket = final.split("/", 1)[0]
                    self.fs.ls(bucket)
                except FileNotFoundError as exc:
                    raise ConfigurationError(
                        f"bucket of {self.destination.url} does not exist", hint="create it or fix the URL"
                    ) from exc
                manifest = self.published_manifest()
                exists = manifest is not None
                if exists and self.overwrite:
                    self._owned_s3_keys(manifest)
                elif not exists:
                    self._owned_s3_keys(None)
        else:
            final_path = Path(self.destination.url)
            if final_path.exists() and not final_path.is_dir():
                raise ValidationError(
                    f"{final_path} is a file, not a folder", hint="choose a folder path (it is created)"
                )
            manifest = self.published_manifest()
            exists = manifest is not None
            if not exists and final_path.is_dir() and any(final_path.iterdir()):
                raise self._foreign()
            if manifest is not None and self.overwrite:
                self._refuse_foreign(final_path, manifest)
            if create:
                try:
                    final_path.parent.mkdir(parents=True, exist_ok=True)
                except (FileExistsError, NotADirectoryError) as exc:
                    raise self._parent_is_a_file() from exc
                except PermissionError as exc:
                    raise ConfigurationError(
                        f"cannot write to {final_path.parent}: permission denied"
                    ) from exc
                if not os.access(final_path.parent, os.W_OK):
                    raise ConfigurationError(f"cannot write to {final_path.parent}")
            else:
                nearest = next(p for p in final_path.parents if p.exists() or p.is_symlink())
                if not nearest.is_dir():
                    raise self._parent_is_a_file()
                if not os.access(nearest, os.W_OK | os.X_OK):
                    raise ConfigurationError(f"cannot write to {nearest}: permission denied")
        if exists and not self.overwrite:
            raise ConflictError(
                f"{self.destination.url} already holds an export",
                hint="choose another destination or pass overwrite",
            )

    def _parent_is_a_file(self) -> ValidationError:
        return ValidationError(
            f"cannot create {self.destination.url}: a parent of it is a file", hint="choose another folder"
        )

    def _refuse_foreign(self, folder: Path, manifest: dict[str, Any]) -> None:
        """Raise when ``folder`` (the export's, or it moved aside) holds anything ``manifest`` does not list."""
        foreign = local_foreign(folder, owned_paths(manifest))
        if foreign:
            raise foreign_files_error(self.destination.url, foreign)

    def _s3_keys(self) -> set[str]:
        final = self.destination.url[5:]
        return {k for k in self.fs.find(final) if k.startswith(f"{final}/")}

    def _owned_s3_keys(self, manifest: dict[str, Any] | None) -> tuple[set[str], set[str]]:
        """(the keys under the prefix, those an export may replace: ``manifest``'s and a dead publish's);
        raises when the prefix holds anything else."""
        final = self.destination.url[5:]
        keys = self._s3_keys()
        dead = self._dead_publish_keys()
        owned = set(dead or ())
        if manifest is not None:
            owned |= {f"{final}/{p}" for p in owned_paths(manifest)}
        elif keys and dead is None:
            raise self._foreign()
        foreign = sorted(k[len(final) + 1 :] for k in keys - owned)
        if foreign:
            raise foreign_files_error(self.destination.url, foreign)
        return keys, owned

    def _dead_publish_keys(self) -> set[str] | None:
        """S3: the keys a publish that died (its marker is still there) may have left; None without one. A
        marker that lists nothing (unreadable) owns nothing: every object is then someone else's."""
        if not self.fs.exists(self._marker()):
            return None
        final = self.destination.url[5:]
        try:
            doc = json.loads(self.fs.cat_file(self._marker()))
            return {f"{final}/{p}" for p in doc["paths"] if isinstance(p, str)}
        except (ValueError, TypeError, KeyError):
            return set()

    def _marker(self) -> str:
        return f"{self.destination.url[5:]}.publishing"

    def _foreign(self) -> ConflictError:
        return ConflictError(
            f"{self.destination.url} is not empty and is not an oncograph export",
            hint="choose a new or empty folder; overwrite only replaces an earlier oncograph export",
        )

    def published_manifest(self) -> dict[str, Any] | None:
        """The manifest of the oncograph export published at the destination, if one is."""
        if self.fs is None:
            path = Path(self.destination.url) / MANIFEST
            if not path.is_file() or path.stat().st_size > _MAX_MANIFEST_BYTES:
                return None
            return is_export_manifest(path.read_bytes())
        key = f"{self.destination.url[5:]}/{MANIFEST}"
        with self._s3_errors():
            if not self.fs.exists(key):
                return None
            with self.fs.open(key, "rb") as fh:
                return is_export_manifest(fh.read(_MAX_MANIFEST_BYTES))

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

    def local_path(self, relative: str) -> Path | None:
        """Where a file written with :meth:`open` lies on this machine (local staging), or None (S3): a
        staged file is read back from here, so what is read is what was hashed and will be published."""
        return None if self.fs is not None else Path(self.root) / relative

    @contextmanager
    def _s3_errors(self) -> Iterator[None]:
        """S3 failures as configuration errors that say what to check (never a botocore traceback)."""
        import botocore.exceptions as bx

        hint = "check the AWS credentials in the environment and the bucket policy"
        try:
            yield
        except PermissionError as exc:
            raise ConfigurationError(f"access denied to {self.destination.url}: {exc}", hint=hint) from exc
        except (bx.NoCredentialsError, bx.PartialCredentialsError) as exc:
            raise ConfigurationError(
                f"no AWS credentials to write {self.destination.url}",
                hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or use an instance role",
            ) from exc
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError) as exc:
            raise ConfigurationError(
                f"cannot reach S3 for {self.destination.url}: {exc}",
                hint="check the network and ONCOGRAPH_S3_ENDPOINT_URL",
            ) from exc
        except bx.BotoCoreError as exc:
            raise ConfigurationError(f"S3 error for {self.destination.url}: {exc}", hint=hint) from exc

    def publish(self, manifest_bytes: bytes) -> None:
        """Write the manifest and make the export visible (see the module docstring). What is at the
        destination is checked again first: only an earlier export's own files are ever replaced."""
        if self.fs is None:
            with open(f"{self.root}/{MANIFEST}", "wb") as fh:
                fh.write(manifest_bytes)
                fh.flush()
                os.fsync(fh.fileno())
            final = Path(self.destination.url)
            aside = None
            if final.exists() or final.is_symlink():
                if final.is_symlink() or not final.is_dir():
                    raise ValidationError(
                        f"{final} is a file or a link, not a folder", hint="export elsewhere"
                    )
                old = self.published_manifest()
                if any(final.iterdir()):
                    if old is None:
                        raise self._foreign()  # something else appeared there: never delete it
                    if not self.overwrite:
                        raise ConflictError(
                            f"{final} appeared while exporting", hint="export again elsewhere"
                        )
                    self._refuse_foreign(final, old)
                aside = final.parent / f".{final.name}.old-{self.token}"
                final.rename(aside)
                try:  # again, moved aside: a file written meanwhile is put back with the old export
                    if old is not None:
                        self._refuse_foreign(aside, old)
                    elif any(aside.iterdir()):
                        raise self._foreign()
                except BaseException:
                    aside.rename(final)
                    raise
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
            old = self.published_manifest()
            if old is not None and not self.overwrite:
                raise ConflictError(
                    f"{self.destination.url} appeared while exporting", hint="export again elsewhere"
                )
            keys, owned = self._owned_s3_keys(old)
            new = {f"{final_prefix}/{relative}" for relative in self.written} | {f"{final_prefix}/{MANIFEST}"}
            # a marker beside the prefix says "a publish is under way" and lists the keys it may leave: objects
            # without a manifest next to it are a dead publish's (replaceable), not someone else's files
            listed = sorted(k[len(final_prefix) + 1 :] for k in owned | new)
            with self.fs.open(self._marker(), "wb") as fh:
                fh.write(json.dumps({"token": self.token, "paths": listed}).encode())
            if f"{final_prefix}/{MANIFEST}" in keys:
                self.fs.rm(f"{final_prefix}/{MANIFEST}")  # unpublish the old export first
            stale = sorted(k for k in keys & owned if k not in new)
            if stale:
                self.fs.rm(stale)  # files of the old export the new one lacks (never anyone else's)
            for relative in self.written:
                self.fs.copy(f"{self.root}/{relative}", f"{final_prefix}/{relative}")
            with self.fs.open(f"{final_prefix}/{MANIFEST}", "wb") as fh:
                fh.write(manifest_bytes)
            self.fs.rm(self.root, recursive=True)
            self.fs.rm(self._marker())

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
                if pattern.endswith("old-*"):
                    if not final.exists():
                        entry.rename(final)  # a publish died between moving the old export aside and renaming
                        removed += 1
                        continue
                    old = Staging(Destination(str(entry)), overwrite=True).published_manifest()
                    if old is None or local_foreign(entry, owned_paths(old)):
                        continue  # not only an old export's own files: leave it be
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed
