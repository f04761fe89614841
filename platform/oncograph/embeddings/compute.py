"""The two halves of the embedding pipeline that run on workers: reading (CPU) and encoding (GPU or CPU).

- :func:`read_job` turns one job into a :class:`Header` (tile coordinates and reading parameters) followed by
  batches of uint8 RGB arrays (slide tiles at the encoder's µm/px; 2.5D scan slices). It runs in CPU tasks, so
  it never imports torch.
- :class:`Encoding` holds one loaded encoder and encodes batches (images or texts); an encoder actor holds one.
- :class:`SerialExecutor` runs both in this process, one job after another: the reference the Ray executor in
  ``oncograph_flows.embed`` is measured against, and what runs where Ray is not wanted.

An executor yields one :class:`Result` per job: its features, or the reason it failed (a corrupt slide, an
unreadable DICOM, no tissue). A failure never stops the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from oncograph.embeddings.encoders import EncoderSpec
from oncograph.embeddings.jobs import EmbedRequest, Job
from oncograph.errors import OncographError, ValidationError


@dataclass(frozen=True, slots=True)
class Header:
    """What a reader knows of a job before its first batch: tile coordinates and the parameters used."""

    coords: np.ndarray | None
    details: dict[str, Any] = field(default_factory=dict)
    count: int = 0


@dataclass(frozen=True, slots=True)
class Result:
    job: Job
    header: Header | None = None
    features: np.ndarray | None = None
    error: str | None = None


def _fallback_mpp(path: Path, fallback: float | None) -> float | None:
    """``fallback`` for a slide that states no scale of its own; None (its own scale) otherwise."""
    if fallback is None:
        return None
    import openslide

    from oncograph.embeddings.slides import resolve_mpp

    try:
        with openslide.OpenSlide(path) as slide:
            props = dict(slide.properties)
    except Exception:
        return None
    return fallback if resolve_mpp(props, None) is None else None


def _slide_batches(job: Job, spec: EncoderSpec, request: EmbedRequest) -> Iterator[Header | np.ndarray]:
    from oncograph.embeddings.slides import MaskParams, tile_batches

    assert job.path is not None
    target = spec.mpp if spec.mpp is not None else 0.5
    params = MaskParams()
    info, mask, grid, batches = tile_batches(
        Path(job.path),
        mpp=_fallback_mpp(Path(job.path), request.mpp),
        target_mpp=target,
        tile_px=spec.tile_size,
        min_tissue=request.min_tissue,
        mask_params=params,
        batch_size=request.batch_size,
    )
    if len(grid.coords) == 0:
        raise ValidationError(
            f"no tissue found in {Path(job.path).name} at {target} µm/px",
            hint="lower --min-tissue, or check the slide is not blank",
        )
    from oncograph.embeddings.features import feature_attrs

    attrs = feature_attrs(info, grid, encoder=spec.name, encoder_version=spec.version)
    yield Header(
        coords=grid.coords,
        details={
            "h5_attrs": attrs,
            "slide": info.to_json(),
            "mask": {**params.to_json(), "threshold": float(mask.threshold)},
            "tile_px": grid.tile_px,
            "patch_size_level0": grid.patch_size_level0,
            "read_level": grid.level,
            "target_mpp": grid.target_mpp,
            "level0_mpp": grid.level0_mpp,
            "min_tissue": request.min_tissue,
        },
        count=len(grid.coords),
    )
    yield from batches


def _scan_batches(job: Job, spec: EncoderSpec, request: EmbedRequest) -> Iterator[Header | np.ndarray]:
    from oncograph.embeddings.scans import scan_slices

    slices, details = scan_slices(job.series, window_preset=request.window, size=spec.tile_size)
    n = len(slices)
    yield Header(coords=None, details={**job.details, "scan": details}, count=n)
    for start in range(0, n, request.batch_size):
        yield slices[start : start + request.batch_size]


def read_job(job: Job, spec: EncoderSpec, request: EmbedRequest) -> Iterator[Header | np.ndarray]:
    """The job's :class:`Header`, then its batches (uint8 ``(b, H, W, 3)``). Raises OncographError on bad input."""
    if job.modality == "slide":
        yield from _slide_batches(job, spec, request)
    elif job.modality == "scan":
        yield from _scan_batches(job, spec, request)
    else:
        raise ValidationError(
            f"read_job does not read {job.modality} jobs (text is encoded in batches of jobs)"
        )


class Encoding:
    """One loaded encoder; :meth:`images` and :meth:`texts` return float32 ``(n, dim)``."""

    def __init__(self, spec: EncoderSpec, device: str | None = None, threads: int | None = None) -> None:
        from oncograph.embeddings import encoders

        self.spec = spec
        self._text: encoders.TextEncoder | None = None
        self._image: encoders.ImageEncoder | None = None
        if "text" in spec.modalities:
            self._text = encoders.load_text_encoder(spec, device=device)
        else:
            self._image = encoders.load_image_encoder(spec, device=device, threads=threads)

    def images(self, batch: np.ndarray) -> np.ndarray:
        if self._image is None:
            raise ValidationError(f"encoder {self.spec.name} encodes text, not images")
        return self._image.encode(batch)

    def texts(self, batch: Sequence[str]) -> np.ndarray:
        if self._text is None:
            raise ValidationError(f"encoder {self.spec.name} encodes images, not text")
        return self._text.encode(batch)


def failure_reason(exc: BaseException) -> str:
    """A one-line reason for a job's failure (an OncographError's own message; else the exception's type)."""
    if isinstance(exc, OncographError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:500]


def text_chunks(jobs: Sequence[Job], size: int) -> Iterator[list[Job]]:
    for start in range(0, len(jobs), size):
        yield list(jobs[start : start + size])


class Executor(Protocol):
    def run(self, jobs: Sequence[Job], spec: EncoderSpec, request: EmbedRequest) -> Iterator[Result]: ...


class SerialExecutor:
    """Reads and encodes in this process, one job after the other (no overlap of reading with encoding)."""

    def __init__(self, device: str | None = None, threads: int | None = None) -> None:
        self.device = device
        self.threads = threads
        self._encoding: Encoding | None = None

    def _encoder(self, spec: EncoderSpec) -> Encoding:
        if self._encoding is None or self._encoding.spec != spec:
            self._encoding = Encoding(spec, self.device, self.threads)
        return self._encoding

    def run(self, jobs: Sequence[Job], spec: EncoderSpec, request: EmbedRequest) -> Iterator[Result]:
        if not jobs:
            return
        encoding = self._encoder(spec)
        if request.modality == "text":
            for chunk in text_chunks(jobs, request.batch_size):
                vectors = encoding.texts([j.text or "" for j in chunk])
                for job, vector in zip(chunk, vectors, strict=True):
                    yield Result(job, Header(None, {}, 1), vector[None, :])
            return
        for job in jobs:
            try:
                reader = read_job(job, spec, request)
                header = next(reader)
                assert isinstance(header, Header)
                parts = [encoding.images(batch) for batch in reader]  # type: ignore[arg-type]
                yield Result(job, header, np.concatenate(parts) if parts else None)
            except Exception as exc:
                yield Result(job, error=failure_reason(exc))
