"""Open GDC files from ``GET {gdc_url}/data/{file_id}``: resumable, md5-verified, cached.

**Cache.** ``<home>/cache/gdc/<file_id>/<file name>``: the name comes from ``Content-Disposition`` (sanitised
to one plain file name), else the file id. The download streams into ``<name>.part``; a ``.part`` left by an
interrupted run (or a body cut short) is resumed with ``Range: bytes=<size>-`` (appended on ``206``,
restarted on ``200``). Only a complete, verified file is renamed to its final name, so a final file is
always whole; reusing it costs one local read (its md5 is checked again) and no request.

**Retries** are those of every oncograph HTTP client (:mod:`oncograph.sources.http_retry`, attempts and
backoff from the ``gdc_*`` settings): connection errors, a body shorter than its ``Content-Length``, 429 and
5xx. Each retry resumes where the last attempt stopped. A ``403`` means a controlled file: oncograph only
fetches open files and never sends a token.

**Verification.** ``expected_md5`` is a required keyword of :func:`fetch_data_file`: pass the file record's
``md5sum``. Passing ``None`` is the explicit choice to accept unverified bytes (e.g. a stand-in file with no
record); there is no default, so a forgotten md5 is a type error rather than silent trust. A mismatch
deletes the download and raises :class:`~oncograph.errors.SourceError`.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Callable
from email.message import Message
from pathlib import Path

import httpx

from oncograph.errors import NotFoundError, SourceError, ValidationError
from oncograph.settings import Settings
from oncograph.sources.fetched import Digests, FetchedFile, hash_file
from oncograph.sources.gdc.client import GdcRequestError
from oncograph.sources.http_retry import Retrier, Retry, RetryPolicy, is_retryable_status

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``; ``bytes_total`` is 0 while unknown."""

_MD5 = re.compile(r"[0-9a-f]{32}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]")
_PART = ".part"


def fetch_data_file(
    file_id: str,
    settings: Settings,
    *,
    expected_md5: str | None,
    expected_size: int | None = None,
    client: httpx.Client | None = None,
    progress: Progress | None = None,
) -> FetchedFile:
    """An open GDC file: ``GET {gdc_url}/data/{file_id}``, resumable, verified, cached.

    Args:
        file_id: the GDC file UUID (untrusted: validated).
        settings: ``gdc_url``, the ``gdc_*`` retry settings and ``home`` (the cache).
        expected_md5: the record's ``md5sum``; ``None`` explicitly accepts unverified bytes (the caller
            logs that choice).
        expected_size: the record's ``file_size``, checked when given.
        client: an httpx client to send with (tests count requests on it); default one of our own.
        progress: called with ``(bytes_done, bytes_total)`` while downloading.

    Raises:
        ValidationError: ``file_id`` is not a UUID, or ``expected_md5`` is not an md5.
        NotFoundError: the GDC has no file with this id.
        GdcRequestError: a controlled file (HTTP 403), or another rejected request.
        SourceError: the bytes do not match ``expected_md5`` / ``expected_size`` (the download is deleted).
        SourceUnavailableError: the download kept failing after every retry.
    """
    file_id = gdc_file_id(file_id)
    md5 = _expected_md5(expected_md5)
    url = f"{settings.gdc_url.rstrip('/')}/data/{file_id}"
    folder = settings.home_dir / "cache" / "gdc" / file_id
    found = _cached_gdc_file(folder, md5, expected_size)
    if found is None:
        part = _download(url, folder, settings, client=client, progress=progress, fallback_name=file_id)
        found = _verify(part, md5, expected_size, url)
    path, (sha256, got_md5, size) = found
    return FetchedFile(path, url, sha256, got_md5, size)


def gdc_file_id(file_id: str) -> str:
    """``file_id`` checked to be a UUID and written as GDC writes it (lower case, 8-4-4-4-12)."""
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
