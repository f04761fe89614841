"""Per-tile slide features in an export (``--tiles``), for multiple-instance learning (CLAM, ABMIL, TransMIL).

For each encoder model ``m`` (made a safe folder name) whose slide embeddings of the members have a feature
file, the export holds:

- ``tiles/<m>/<object key>.h5``: a byte copy of the slide's TRIDENT/CLAM feature file (``coords`` (n, 2)
  level-0 x, y; ``features`` (n, d) float32; the patching attributes), so MIL code reads it unchanged.
- ``tiles/<m>/features.parquet/part-NNNNN.parquet``: the same tiles as rows (``case_id``, ``object_kind``,
  ``object_id``, ``model_version``, ``tile``, ``x``, ``y``, ``features`` as a fixed-size float32 list), one
  file per slide, in export order: a Parquet dataset that dask, pyarrow, DuckDB or Spark read as one table.
- ``tiles/<m>/slides.parquet``: the bag index, one row per slide (its tiles, dim, HDF5 file, part, scale).

Which slides: the embeddings of :func:`oncograph.export.vectors.member_embeddings` (the same scope-checked
selection as the pooled vectors) of modality ``slide`` that name a feature file. Every such file must be the
one recorded with the embedding: it is hashed while it is copied and a missing, unreadable or different file
(sha256, size or tile count) fails the export with an error that names it, so nothing is published. It is
never skipped: an export quietly missing some slides' tiles would train a MIL model on a biased subset.

Where the feature files are: the URI each embedding records, a local path or ``s3://bucket/key`` under
``ONCOGRAPH_FEATURES_ROOT`` (:mod:`oncograph.embeddings.feature_store`), read through the same S3 endpoint
as the export's (``ONCOGRAPH_S3_ENDPOINT_URL``), so an export worker needs no disk shared with the nodes that
embedded.

Memory: dask runs one delayed task per slide on a small thread pool (:data:`WORKERS`); a task copies the file
and streams its rows in batches of about :data:`BATCH_BYTES` into the slide's Parquet part, so a cohort's
tiles are never held at once, only a few batches. Rows are read back from the staged copy (local staging),
which is exactly the verified file; with S3 staging they are read from the source, whose size and mtime are
checked unchanged since it was hashed (its size and mtime locally, its ETag on S3).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import h5py  # type: ignore[import-untyped]
import numpy as np
import pyarrow as pa
from dask.base import compute
from dask.callbacks import Callback
from dask.delayed import delayed
from sqlalchemy import Connection, select

from oncograph.access import Scope
from oncograph.embeddings.feature_store import FeatureFile, FileStat
from oncograph.errors import ConfigurationError, NotFoundError, ValidationError
from oncograph.export import vectors
from oncograph.export.schema import TILE_SLIDES_SCHEMA, tiles_schema
from oncograph.export.storage import Staging, safe_part
from oncograph.export.writer import FileRecord, HashingSink, Writer
from oncograph.settings import get_settings

#: Slides written at once (threads: h5py reads under its own lock, Parquet encoding and zstd release the GIL).
WORKERS = max(1, min(4, os.cpu_count() or 1))
#: Bytes of tile features per record batch read from an HDF5 file.
BATCH_BYTES = 8 << 20
#: The media type Croissant lists the HDF5 copies under.
HDF5_FORMAT = "application/x-hdf5"
_COPY_CHUNK = 8 << 20
_HINT = (
    "restore the file the embedding was made with (the embedding row records its sha256), or delete that "
    "embedding and embed the slide again (oncograph embed slides); export without --tiles to ship only the "
    "pooled vectors"
)


class FeatureFileError(ValidationError):
    """A slide embedding's feature file is missing, unreadable or not the one recorded with it."""


@dataclass(frozen=True)
class SlideTiles:
    """One slide embedding whose tiles the export ships, and where they go."""

    case_id: str
    object_kind: str
    object_id: str
    model: str
    model_version: str
    source: FeatureFile
    sha256: str
    size: int | None
    tiles: int | None
    h5_path: str
    part_path: str

    @property
    def label(self) -> str:
        return f"{self.object_kind} {self.object_id} (model {self.model}, {self.source})"


@dataclass
class _Probe:
    """What a feature file holds, read from its header before anything is copied."""

    tiles: int
    dim: int
    attrs: dict[str, Any]
    stat: FileStat


@dataclass
class TilesWritten:
    """What the tiles step wrote, for the manifest and Croissant."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    """The manifest's ``tiles``: per model its dim, slides, rows (tiles) and paths."""
    datasets: list[tuple[str, pa.Schema, list[tuple[str, str]]]] = field(default_factory=list)
    """(folder of a tile-level Parquet dataset, its schema, (path, sha256) of each of its files)."""
    attachments: list[tuple[str, str, str]] = field(default_factory=list)
    """(path, sha256, media type) of the HDF5 copies."""

    @property
    def part_paths(self) -> set[str]:
        return {path for _, _, parts in self.datasets for path, _ in parts}


def slides_with_tiles(
    conn: Connection, version_id: int, scope: Scope, *, endpoint_url: str | None = None
) -> list[SlideTiles]:
    """The shipped slide embeddings that have a feature file, by model then in export order (``endpoint_url``:
    the S3 endpoint of ``s3://`` feature files; unset = AWS)."""
    emb = vectors.member_embeddings(version_id, scope)
    c = emb.c
    rows = conn.execute(
        select(
            c.case_id,
            c.object_kind,
            c.object_id,
            c.model,
            c.model_version,
            c.features_uri,
            c.features_sha256,
            c.features_bytes,
            c.tiles,
        )
        .where(c.modality == "slide", c.features_uri.is_not(None))
        .order_by(c.model, c.case_uuid, c.object_kind, c.object_id, c.model_version)
    ).all()
    stems = Counter((r.model, f"{safe_part(r.object_kind)}-{safe_part(r.object_id)}") for r in rows)
    number: Counter[str] = Counter()
    out = []
    for r in rows:
        folder = f"tiles/{safe_part(r.model)}"
        stem = f"{safe_part(r.object_kind)}-{safe_part(r.object_id)}"
        if stems[(r.model, stem)] > 1:  # several versions of one object, or ids equal once made safe
            full = "\0".join((r.object_kind, r.object_id, r.model_version))
            stem += "-" + hashlib.sha256(full.encode()).hexdigest()[:12]
        try:
            source = FeatureFile(str(r.features_uri), endpoint_url)
        except ValidationError as exc:
            raise FeatureFileError(
                f"the feature file of {r.object_kind} {r.object_id} (model {r.model}) is neither a local file "
                f"nor on S3: {r.features_uri}",
                hint="--tiles copies feature files from a local folder or s3:// (ONCOGRAPH_FEATURES_ROOT)",
            ) from exc
        if not r.features_sha256:
            raise FeatureFileError(
                f"the feature file of {r.object_kind} {r.object_id} (model {r.model}) has no recorded sha256, "
                "so it cannot be verified: " + str(source),
                hint=_HINT,
            )
        out.append(
            SlideTiles(
                case_id=str(r.case_id),
                object_kind=str(r.object_kind),
                object_id=str(r.object_id),
                model=str(r.model),
                model_version=str(r.model_version),
                source=source,
                sha256=str(r.features_sha256),
                size=None if r.features_bytes is None else int(r.features_bytes),
                tiles=None if r.tiles is None else int(r.tiles),
                h5_path=f"{folder}/{stem}.h5",
                part_path=f"{folder}/features.parquet/part-{number[r.model]:05d}.parquet",
            )
        )
        number[r.model] += 1
    return out


def _probe(slide: SlideTiles) -> _Probe:
    """Check a feature file's presence, size, layout and tile count (cheap: stat and HDF5 header)."""
    with _reading(slide):
        stat = slide.source.stat()
    if slide.size is not None and stat.size != slide.size:
        raise FeatureFileError(
            f"the feature file of {slide.label} is {stat.size} bytes, {slide.size} were recorded when the "
            "slide was embedded: it was changed or replaced",
            hint=_HINT,
        )
    try:
        with _reading(slide), slide.source.open() as fh, h5py.File(fh, "r") as f:
            coords, features = f.get("coords"), f.get("features")
            if not isinstance(coords, h5py.Dataset) or not isinstance(features, h5py.Dataset):
                raise FeatureFileError(
                    f"the feature file of {slide.label} has no 'coords' and 'features' datasets", hint=_HINT
                )
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
            attrs.update({k: _plain(v) for k, v in coords.attrs.items()})
            c_shape, f_shape = tuple(coords.shape), tuple(features.shape)
    except OSError as exc:
        raise FeatureFileError(
            f"the feature file of {slide.label} is not a readable HDF5 file: {exc}", hint=_HINT
        ) from exc
    if len(c_shape) != 2 or c_shape[1] != 2 or len(f_shape) != 2 or f_shape[0] != c_shape[0]:
        raise FeatureFileError(
            f"the feature file of {slide.label} has coords {c_shape} and features {f_shape}, not (n, 2) and "
            "(n, d)",
            hint=_HINT,
        )
    if slide.tiles is not None and c_shape[0] != slide.tiles:
        raise FeatureFileError(
            f"the feature file of {slide.label} holds {c_shape[0]} tiles, the embedding records {slide.tiles}",
            hint=_HINT,
        )
    return _Probe(int(c_shape[0]), int(f_shape[1]), attrs, stat)


@contextmanager
def _reading(slide: SlideTiles) -> Iterator[None]:
    """A feature file that is missing or cannot be read, as the export's error naming the slide."""
    try:
        yield
    except NotFoundError as exc:
        raise FeatureFileError(f"the feature file of {slide.label} is missing", hint=_HINT) from exc
    except ConfigurationError as exc:
        raise FeatureFileError(f"cannot read the feature file of {slide.label}: {exc}", hint=_HINT) from exc


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _rows(
    path: Path | FeatureFile, slide: SlideTiles, schema: pa.Schema, dim: int
) -> Iterator[pa.RecordBatch]:
    """The tiles of one feature file as record batches of about :data:`BATCH_BYTES`, in file order."""
    if isinstance(path, FeatureFile):
        with _reading(slide), path.open() as fh:
            yield from _rows_of(fh, slide, schema, dim)
    else:
        yield from _rows_of(path, slide, schema, dim)


def _rows_of(file: Any, slide: SlideTiles, schema: pa.Schema, dim: int) -> Iterator[pa.RecordBatch]:
    step = max(1, BATCH_BYTES // (4 * dim))
    kind = pa.array([slide.object_kind])
    version = pa.array([slide.model_version])
    with h5py.File(file, "r") as f:
        coords, features = f["coords"], f["features"]
        n = int(coords.shape[0])
        for start in range(0, n, step):
            stop = min(n, start + step)
            k = stop - start
            xy = np.asarray(coords[start:stop], dtype=np.int64).reshape(k, 2)
            values = np.ascontiguousarray(features[start:stop], dtype=np.float32).reshape(-1)
            zeros = pa.array(np.zeros(k, dtype=np.int32))
            yield pa.RecordBatch.from_arrays(
                [
                    pa.repeat(pa.scalar(slide.case_id), k),
                    pa.DictionaryArray.from_arrays(zeros, kind),
                    pa.repeat(pa.scalar(slide.object_id), k),
                    pa.DictionaryArray.from_arrays(zeros, version),
                    pa.array(np.arange(start, stop, dtype=np.int32)),
                    pa.array(xy[:, 0]),
                    pa.array(xy[:, 1]),
                    pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float32()), dim),
                ],
                schema=schema,
            )


def _ship(
    slide: SlideTiles, probe: _Probe, dim: int, staging: Staging, writer: Writer
) -> tuple[FileRecord, FileRecord]:
    """Copy one feature file into the export while hashing it, check the hash, then write its Parquet part."""
    with _reading(slide), slide.source.open() as src, staging.open(slide.h5_path) as fh:
        sink = HashingSink(fh)
        while block := src.read(_COPY_CHUNK):
            sink.write(block)
    digest = sink.sha256.hexdigest()
    if digest != slide.sha256:
        raise FeatureFileError(
            f"the feature file of {slide.label} is not the one its embedding was made from: its sha256 is "
            f"{digest}, the embedding records {slide.sha256}",
            hint=_HINT,
        )
    h5 = FileRecord(slide.h5_path, None, sink.size, digest)
    staged = staging.local_path(slide.h5_path)
    part = writer.parquet(
        slide.part_path,
        tiles_schema(dim),
        _rows(staged or slide.source, slide, tiles_schema(dim), dim),
        keep=False,
    )
    if staged is None:
        _unchanged(slide, probe)
    return h5, part


def _unchanged(slide: SlideTiles, probe: _Probe) -> None:
    with _reading(slide):
        now = slide.source.stat()
    if now != probe.stat:
        raise FeatureFileError(f"the feature file of {slide.label} changed while it was exported", hint=_HINT)


class _Progress(Callback):
    """Reports each finished slide (dask calls ``_posttask`` on the scheduling thread, the caller's)."""

    def __init__(self, report: Callable[[int, int], None], total: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.report, self.total, self.done = report, total, 0

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.done += 1
        self.report(self.done, self.total)


def write_tiles(
    conn: Connection,
    version_id: int,
    scope: Scope,
    *,
    staging: Staging,
    writer: Writer,
    report: Callable[[int, int], None],
) -> TilesWritten:
    """Write the ``tiles/`` folder of an export (module docstring) and add its files to ``writer.files``.

    ``report(slides done, slides)`` is called on this thread after each slide.

    Raises:
        FeatureFileError: a feature file is missing, unreadable, of another layout, tile count or dimension
            than the model's others, or differs from the one recorded with its embedding.
    """
    endpoint = staging.destination.endpoint_url or get_settings().s3_endpoint_url
    slides = slides_with_tiles(conn, version_id, scope, endpoint_url=endpoint)
    return ship(slides, staging=staging, writer=writer, report=report)


def ship(
    slides: list[SlideTiles], *, staging: Staging, writer: Writer, report: Callable[[int, int], None]
) -> TilesWritten:
    """Copy, verify and write the tiles of ``slides`` (by model, in export order): :func:`write_tiles` without
    the database, so it can be run on any list of feature files."""
    probes = [_probe(s) for s in slides]
    dims: dict[str, int] = {}
    for slide, probe in zip(slides, probes, strict=True):
        dim = dims.setdefault(slide.model, probe.dim)
        if probe.dim != dim:
            raise FeatureFileError(
                f"the feature file of {slide.label} has {probe.dim} floats per tile, the model's other slides "
                f"have {dim}",
                hint="one model's tile features share one width; re-embed the odd slide with the same encoder",
            )
    # one delayed task per slide: a partial, so dask neither hashes nor unpacks the staging and writer
    tasks = [
        delayed(partial(_ship, s, p, dims[s.model], staging, writer), pure=False)(dask_key_name=f"tiles-{i}")
        for i, (s, p) in enumerate(zip(slides, probes, strict=True))
    ]
    done: list[tuple[FileRecord, FileRecord]] = []
    if tasks:
        # an executor of our own: when a slide fails, leaving the block waits for the slides still being
        # written, so the staging area is removed after them and nothing writes into it afterwards. The
        # progress callback is this computation's only (a global one would see other exports' tasks).
        with ThreadPoolExecutor(
            max_workers=min(WORKERS, len(tasks)), thread_name_prefix="export-tiles"
        ) as pool:
            done = list(
                compute(  # type: ignore[no-untyped-call]
                    *tasks,
                    scheduler="threads",
                    pool=pool,
                    callbacks=[_Progress(report, len(tasks))._callback],
                )
            )

    result = TilesWritten()
    for model, dim in dims.items():
        chosen = [(s, p, d) for s, p, d in zip(slides, probes, done, strict=True) if s.model == model]
        folder = f"tiles/{safe_part(model)}"
        writer.files.extend(h5 for _, _, (h5, _) in chosen)
        writer.files.extend(part for _, _, (_, part) in chosen)
        index = writer.parquet(f"{folder}/slides.parquet", TILE_SLIDES_SCHEMA, _index(chosen, dim))
        result.entries.append(
            {
                "model": model,
                "dim": dim,
                "slides": len(chosen),
                "rows": sum(p.tiles for _, p, _ in chosen),
                "path": f"{folder}/features.parquet",
                "index": index.path,
            }
        )
        result.datasets.append(
            (
                f"{folder}/features.parquet",
                tiles_schema(dim),
                [(part.path, part.sha256) for _, _, (_, part) in chosen],
            )
        )
        result.attachments += [(h5.path, h5.sha256, HDF5_FORMAT) for _, _, (h5, _) in chosen]
    return result


def _index(
    chosen: list[tuple[SlideTiles, _Probe, tuple[FileRecord, FileRecord]]], dim: int
) -> Iterator[pa.RecordBatch]:
    def number(probe: _Probe, key: str, kind: type) -> Any:
        value = probe.attrs.get(key)
        try:
            return kind(value) if value is not None and value != "None" else None
        except (TypeError, ValueError):
            return None

    yield pa.RecordBatch.from_pydict(
        {
            "case_id": [s.case_id for s, _, _ in chosen],
            "object_kind": [s.object_kind for s, _, _ in chosen],
            "object_id": [s.object_id for s, _, _ in chosen],
            "model_version": [s.model_version for s, _, _ in chosen],
            "tiles": [p.tiles for _, p, _ in chosen],
            "dim": [dim] * len(chosen),
            "features_file": [h5.path for _, _, (h5, _) in chosen],
            "features_sha256": [h5.sha256 for _, _, (h5, _) in chosen],
            "part": [part.path for _, _, (_, part) in chosen],
            "patch_size_level0": [number(p, "patch_size_level0", int) for _, p, _ in chosen],
            "level0_mpp": [number(p, "level0_mpp", float) for _, p, _ in chosen],
            "target_mpp": [number(p, "target_mpp", float) for _, p, _ in chosen],
        },
        schema=TILE_SLIDES_SCHEMA,
    )
