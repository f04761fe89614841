"""Whole-slide images to tiles: open a slide, find its tissue, lay a grid at a target µm/px, read tiles.

This runs in CPU reader tasks that feed a patch encoder elsewhere, so it never imports torch: tiles leave
as ``uint8`` arrays ``(b, tile_px, tile_px, 3)`` in grid order, and the grid (level-0 top-left corners and
``patch_size_level0``) is what a TRIDENT/CLAM-style feature file records next to the features.

Physical scale (level-0 µm/px) is resolved in this order, and the source is recorded:

1. ``mpp=`` given by the caller ("given"): an explicit statement beats anything inferred;
2. ``openslide.mpp-x`` ("openslide.mpp-x"), which OpenSlide fills from the vendor's own field;
3. the TIFF resolution tags ``tiff.XResolution`` + ``tiff.ResolutionUnit`` centimeter/inch
   ("tiff.resolution"), skipped when the value is not a plausible slide scale (72 or 300 dpi defaults);
4. ``openslide.objective-power`` as 10/objective µm/px ("objective-power"), a stated approximation
   (20x ≈ 0.5 µm/px; real scanners differ by up to ~10%).

Tissue is found on a thumbnail read block by block here; :mod:`oncograph.embeddings.tissue` says how the
mask is made (and holds :class:`MaskParams` and :class:`TissueMask`, re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import openslide
from PIL import Image

from oncograph.embeddings.tissue import Background, MaskParams, TissueMask, check_mask_params, mask_thumbnail
from oncograph.errors import ValidationError

MppSource = Literal["openslide.mpp-x", "tiff.resolution", "objective-power", "given"]

#: Plausible level-0 scales of a slide scanner, µm/px; TIFF resolutions outside are ignored.
PLAUSIBLE_MPP = (0.05, 20.0)
#: A level whose downsample exceeds the wanted one by at most this factor still counts as "not coarser".
LEVEL_TOLERANCE = 1.01
#: Edge of the blocks the thumbnail is read in (level pixels), so memory stays bounded on one-level slides.
_THUMB_BLOCK = 4096


@dataclass(frozen=True, slots=True)
class SlideInfo:
    path: Path
    vendor: str | None
    width: int
    height: int
    level_count: int
    level_downsamples: tuple[float, ...]
    mpp: float
    mpp_source: str
    objective_power: float | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["level_downsamples"] = list(self.level_downsamples)
        return data


def _slide_error(path: Path, what: str, exc: BaseException) -> ValidationError:
    return ValidationError(
        f"cannot {what} slide {path.name}: {exc}",
        hint="the file is truncated, corrupt or not a whole-slide format OpenSlide reads; re-download or re-export it",
    )


def _positive(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _mpp_from_tiff(props: dict[str, str]) -> float | None:
    per_unit = {"centimeter": 10_000.0, "inch": 25_400.0}.get(props.get("tiff.ResolutionUnit", ""))
    resolution = _positive(props.get("tiff.XResolution"))
    if per_unit is None or resolution is None:
        return None
    mpp = per_unit / resolution
    return mpp if PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1] else None


def resolve_mpp(props: dict[str, str], given: float | None) -> tuple[float, MppSource] | None:
    """Level-0 µm/px and where it came from, or None when nothing states it (order: module docstring)."""
    if given is not None:
        return given, "given"
    if (mpp := _positive(props.get(openslide.PROPERTY_NAME_MPP_X))) is not None:
        return mpp, "openslide.mpp-x"
    if (mpp := _mpp_from_tiff(props)) is not None:
        return mpp, "tiff.resolution"
    if (objective := _positive(props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER))) is not None:
        return 10.0 / objective, "objective-power"
    return None


def open_slide(path: Path, mpp: float | None = None) -> tuple[openslide.OpenSlide, SlideInfo]:
    """Open a slide and state its geometry and level-0 µm/px.

    Raises:
        ValidationError: the file is missing, truncated, corrupt or unsupported; ``mpp`` is not positive;
            or nothing states the slide's scale and no ``mpp`` was given.
    """
    path = Path(path)
    if mpp is not None and _positive(str(mpp)) is None:
        raise ValidationError(
            f"mpp must be a positive number of µm per pixel, got {mpp!r}", hint="e.g. --mpp 0.25"
        )
    if not path.is_file():
        raise ValidationError(f"slide {path} does not exist", hint="check the path")
    try:
        slide = openslide.OpenSlide(path)
        props = dict(slide.properties)
        width, height = slide.dimensions
        downsamples = tuple(float(d) for d in slide.level_downsamples)
    except (openslide.OpenSlideError, OSError, ValueError) as exc:
        raise _slide_error(path, "open", exc) from exc
    resolved = resolve_mpp(props, mpp)
    if resolved is None:
        slide.close()
        raise ValidationError(
            f"slide {path.name} states no scale (no openslide.mpp-x, TIFF resolution or objective power)",
            hint="pass its level-0 µm per pixel with --mpp (e.g. 0.25 for 40x, 0.5 for 20x scanners)",
        )
    info = SlideInfo(
        path=path, vendor=props.get(openslide.PROPERTY_NAME_VENDOR), width=width, height=height,
        level_count=len(downsamples), level_downsamples=downsamples, mpp=resolved[0], mpp_source=resolved[1],
        objective_power=_positive(props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)),
    )  # fmt: skip
    return slide, info


def _read_rgba(
    slide: openslide.OpenSlide, path: Path, xy: tuple[int, int], level: int, size: tuple[int, int]
) -> Image.Image:
    try:
        return slide.read_region(xy, level, size)
    except (openslide.OpenSlideError, OSError, ValueError) as exc:
        raise _slide_error(path, "read", exc) from exc


def _slide_path(slide: openslide.OpenSlide) -> Path:
    return Path(str(getattr(slide, "_filename", "slide")))


def _thumb_block(
    slide: openslide.OpenSlide, level: int, out: tuple[int, int, int, int], ratio: tuple[float, float]
) -> Image.Image:
    """Output pixels [x0, x1) x [y0, y1) of the thumbnail, resampled from a level read with a margin."""
    x0, y0, x1, y1 = out
    level_w, level_h = slide.level_dimensions[level]
    src = (x0 * ratio[0], y0 * ratio[1], x1 * ratio[0], y1 * ratio[1])  # exact level coordinates
    margin = math.ceil(2 * max(ratio)) + 1  # the filter's support, so blocks join without seams
    rx0, ry0 = max(0, math.floor(src[0]) - margin), max(0, math.floor(src[1]) - margin)
    rx1, ry1 = min(level_w, math.ceil(src[2]) + margin), min(level_h, math.ceil(src[3]) + margin)
    ds = slide.level_downsamples[level]
    region = _read_rgba(
        slide, _slide_path(slide), (round(rx0 * ds), round(ry0 * ds)), level, (rx1 - rx0, ry1 - ry0)
    )
    box = (src[0] - rx0, src[1] - ry0, src[2] - rx0, src[3] - ry0)
    return region.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=box)


def thumbnail_rgba(slide: openslide.OpenSlide, thumbnail_max: int) -> np.ndarray:
    """The slide as uint8 RGBA (h, w, 4), longest side ``thumbnail_max``, read block by block."""
    width, height = slide.dimensions
    scale = max(width, height) / thumbnail_max if max(width, height) > thumbnail_max else 1.0
    out_w, out_h = max(1, round(width / scale)), max(1, round(height / scale))
    level = slide.get_best_level_for_downsample(scale)
    level_w, level_h = slide.level_dimensions[level]
    ratio = (level_w / out_w, level_h / out_h)
    step = max(1, math.floor(_THUMB_BLOCK / max(ratio)))  # output pixels per block
    canvas = Image.new("RGBA", (out_w, out_h), (0, 0, 0, 0))
    for y0 in range(0, out_h, step):
        for x0 in range(0, out_w, step):
            out = (x0, y0, min(out_w, x0 + step), min(out_h, y0 + step))
            canvas.paste(_thumb_block(slide, level, out, ratio), (x0, y0))
    return np.asarray(canvas)


def tissue_mask(
    slide: openslide.OpenSlide, params: MaskParams = MaskParams(), *, mpp: float | None = None
) -> TissueMask:
    """Tissue on a thumbnail: Otsu on saturation (bright background) or log-brightness (dark), then morphology.

    ``mpp`` (level-0 µm/px) only sets the dark-background smoothing width; without it the slide's metadata
    is used, else 0.5 µm/px.
    """
    check_mask_params(params)
    rgba = thumbnail_rgba(slide, params.thumbnail_max)
    if mpp is None:
        mpp = (resolve_mpp(dict(slide.properties), None) or (0.5, "given"))[0]
    return mask_thumbnail(rgba, params, level0_size=slide.dimensions, mpp=mpp)


@dataclass(frozen=True, eq=False)
class TileGrid:
    coords: np.ndarray  # (n, 2) int64 level-0 top-left (x, y), row-major
    tile_px: int
    patch_size_level0: int
    level: int
    read_size: int
    target_mpp: float
    level0_mpp: float
    tissue: np.ndarray  # (n,) float32 tissue fraction of each tile

    def __len__(self) -> int:
        return int(self.coords.shape[0])


def _check_grid_args(info: SlideInfo, target_mpp: float, tile_px: int, min_tissue: float) -> None:
    if not (math.isfinite(target_mpp) and target_mpp > 0):
        raise ValidationError(
            f"target_mpp must be a positive µm per pixel, got {target_mpp!r}", hint="e.g. 0.5"
        )
    if not 8 <= tile_px <= 4096:
        raise ValidationError(f"tile_px must be in 8..4096, got {tile_px!r}", hint="e.g. 224")
    if not 0 <= min_tissue <= 1:
        raise ValidationError(
            f"min_tissue must be a fraction in [0, 1], got {min_tissue!r}", hint="e.g. 0.25"
        )
    if target_mpp < info.mpp * 0.9:
        raise ValidationError(
            f"target {target_mpp} µm/px is finer than slide {info.path.name}'s level 0 ({info.mpp:.4g} µm/px, "
            f"from {info.mpp_source}): tiles would be upsampled",
            hint=f"use a target_mpp of at least {info.mpp:.3g}, or correct the slide's mpp with --mpp",
        )


def read_level(downsamples: tuple[float, ...], wanted: float) -> int:
    """The coarsest level whose downsample is not above ``wanted`` (within LEVEL_TOLERANCE); level 0 else."""
    fits = [i for i, ds in enumerate(downsamples) if ds <= wanted * LEVEL_TOLERANCE]
    return max(fits, key=lambda i: downsamples[i]) if fits else 0


def mask_coverage(mask: TissueMask, coords: np.ndarray, size_level0: int) -> np.ndarray:
    """Fraction of mask pixels set inside each level-0 square (x, y, size), via an integral image."""
    h, w = mask.mask.shape
    integral = np.zeros((h + 1, w + 1), dtype=np.int64)
    integral[1:, 1:] = np.cumsum(np.cumsum(mask.mask, axis=0, dtype=np.int64), axis=1)
    dx, dy = mask.downsample
    x0 = np.clip(np.round(coords[:, 0] / dx).astype(np.int64), 0, w - 1)
    y0 = np.clip(np.round(coords[:, 1] / dy).astype(np.int64), 0, h - 1)
    x1 = np.clip(np.round((coords[:, 0] + size_level0) / dx).astype(np.int64), x0 + 1, w)
    y1 = np.clip(np.round((coords[:, 1] + size_level0) / dy).astype(np.int64), y0 + 1, h)
    inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return (inside / ((x1 - x0) * (y1 - y0))).astype(np.float32)


def tile_grid(
    slide: openslide.OpenSlide,
    info: SlideInfo,
    mask: TissueMask,
    *,
    target_mpp: float = 0.5,
    tile_px: int = 224,
    min_tissue: float = 0.25,
) -> TileGrid:
    """Non-overlapping level-0 tiles of ``target_mpp * tile_px`` µm, inside the slide, with enough tissue.

    Raises:
        ValidationError: bad arguments, or a target finer than level 0 by more than 10% (would upsample).
    """
    _check_grid_args(info, target_mpp, tile_px, min_tissue)
    size = max(1, round(tile_px * target_mpp / info.mpp))
    xs = np.arange(0, info.width - size + 1, size, dtype=np.int64)
    ys = np.arange(0, info.height - size + 1, size, dtype=np.int64)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    cells = np.stack([gx.ravel(), gy.ravel()], axis=1)
    coverage = mask_coverage(mask, cells, size) if len(cells) else np.zeros(0, np.float32)
    keep = coverage >= min_tissue
    level = read_level(info.level_downsamples, size / tile_px)
    return TileGrid(
        coords=cells[keep].reshape(-1, 2), tile_px=tile_px, patch_size_level0=size, level=level,
        read_size=max(1, round(size / info.level_downsamples[level])), target_mpp=target_mpp,
        level0_mpp=info.mpp, tissue=coverage[keep],
    )  # fmt: skip


def _to_rgb(region: Image.Image) -> np.ndarray:
    rgba = np.asarray(region)
    alpha = rgba[..., 3:4]
    if alpha.min() == 255:
        return rgba[..., :3]
    weight = alpha.astype(np.float32) / 255.0  # OpenSlide's RGBA is not premultiplied
    blended = np.round(rgba[..., :3] * weight + 255.0 * (1.0 - weight))
    return np.asarray(blended, dtype=np.uint8)


def read_tiles(
    slide: openslide.OpenSlide, grid: TileGrid, batch_size: int = 64, start: int = 0
) -> Iterator[np.ndarray]:
    """Tiles as uint8 (b, tile_px, tile_px, 3) RGB in grid order from tile ``start``; transparency on white.

    Raises:
        ValidationError: a bad batch size or start, or the slide cannot be read (truncated or corrupt).
    """
    if batch_size < 1 or not 0 <= start <= len(grid):
        raise ValidationError(
            f"need batch_size >= 1 and 0 <= start <= {len(grid)}", hint=f"got {batch_size}, {start}"
        )
    path, out = _slide_path(slide), (grid.tile_px, grid.tile_px)
    for first in range(start, len(grid), batch_size):
        batch = np.empty((min(batch_size, len(grid) - first), *out, 3), dtype=np.uint8)
        for i, (x, y) in enumerate(grid.coords[first : first + len(batch)]):
            region = _read_rgba(slide, path, (int(x), int(y)), grid.level, (grid.read_size, grid.read_size))
            if region.size != out:
                region = region.resize(out, Image.Resampling.BILINEAR)  # PIL widens the filter: antialiased
            batch[i] = _to_rgb(region)
        yield batch


def tile_batches(
    path: Path,
    *,
    mpp: float | None,
    target_mpp: float,
    tile_px: int,
    min_tissue: float,
    mask_params: MaskParams,
    batch_size: int,
) -> tuple[SlideInfo, TissueMask, TileGrid, Iterator[np.ndarray]]:
    """Open, mask, grid; the returned reader closes the slide when exhausted (or closed)."""
    slide, info = open_slide(path, mpp)
    try:
        mask = tissue_mask(slide, mask_params, mpp=info.mpp)
        grid = tile_grid(slide, info, mask, target_mpp=target_mpp, tile_px=tile_px, min_tissue=min_tissue)
    except BaseException:
        slide.close()
        raise

    def reader() -> Iterator[np.ndarray]:
        try:
            yield from read_tiles(slide, grid, batch_size)
        finally:
            slide.close()

    return info, mask, grid, reader()


__all__ = [
    "LEVEL_TOLERANCE",
    "PLAUSIBLE_MPP",
    "Background",
    "MaskParams",
    "MppSource",
    "SlideInfo",
    "TileGrid",
    "TissueMask",
    "mask_coverage",
    "open_slide",
    "read_level",
    "read_tiles",
    "resolve_mpp",
    "thumbnail_rgba",
    "tile_batches",
    "tile_grid",
    "tissue_mask",
]
