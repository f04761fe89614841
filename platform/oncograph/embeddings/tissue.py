"""Where the tissue is on a whole-slide image: a mask over its thumbnail, and how it was made.

Tissue is found on a thumbnail. Brightfield slides (H&E on a white background) are thresholded on HSV
saturation, as CLAM and TRIDENT's classic path do. Fluorescence slides have a *dark* background, where the
saturation of near-black noise is meaningless (a pixel (3, 1, 0) has saturation 1): for them the signal is
the brightness log1p(max(R, G, B)) / log(256), box-smoothed over ``dark_smooth_um`` (50 µm: a few nuclear
spacings) so that sparse nuclear stain (DAPI) reads as a tissue region rather than as scattered dots; that
width needs the slide's scale (``mpp=``, else its metadata, else 0.5 µm/px is assumed). Which case applies
is decided from the median brightness of the thumbnail (below 0.5 means a dark background) unless
``MaskParams.background`` says so. In both cases the threshold is Otsu's (floored at ``min_threshold``)
unless fixed, followed by a closing, an opening and the removal of small objects; transparent pixels
(outside the scanned area) are never tissue.

This module works on the thumbnail array (``oncograph.embeddings.slides.tissue_mask`` reads it from the
slide): numpy and SciPy only, no OpenSlide, no torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from oncograph.errors import ValidationError

Background = Literal["auto", "bright", "dark"]


@dataclass(frozen=True, slots=True)
class MaskParams:
    """How the tissue mask was made; recorded with every embedding (``to_json``).

    Thresholds are in signal units in [0, 1] (saturation, or log-brightness on a dark background); radii and
    ``smooth_radius`` are in thumbnail pixels, ``dark_smooth_um`` in µm; ``min_object_frac`` is a fraction of
    the thumbnail's area.
    """

    thumbnail_max: int = 1024
    saturation_threshold: float | None = None  # None: Otsu
    min_threshold: float = 0.05
    close_radius: int = 4
    open_radius: int = 2
    min_object_frac: float = 0.0005
    smooth_radius: int = 2
    dark_smooth_um: float = 50.0
    background: Background = "auto"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class TissueMask:
    mask: np.ndarray  # bool (h, w) over the thumbnail
    downsample: tuple[float, float]  # level-0 px per mask px in x, y
    threshold: float
    params: MaskParams
    background: str = "bright"  # what was found: "bright" (saturation) or "dark" (log-brightness)

    @property
    def fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=256, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist, dtype=np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2
    return float(centres[int(np.argmax(np.nan_to_num(between)))])


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return np.asarray(xx * xx + yy * yy <= radius * radius)


def _morphology(mask: np.ndarray, params: MaskParams) -> np.ndarray:
    pad = max(params.close_radius, params.open_radius, 1)
    # Pad by reflection so that tissue touching the slide's edge is not eroded by the border.
    work = np.pad(mask, pad, mode="reflect")
    if params.close_radius > 0:
        work = ndimage.binary_closing(work, structure=_disk(params.close_radius))
    if params.open_radius > 0:
        work = ndimage.binary_opening(work, structure=_disk(params.open_radius))
    work = work[pad:-pad, pad:-pad]
    labels, count = ndimage.label(work)
    if count:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= params.min_object_frac * work.size
        keep[0] = False
        work = keep[labels]
    return np.asarray(work, dtype=bool)


def _signal(rgba: np.ndarray, params: MaskParams, mask_mpp: float) -> tuple[np.ndarray, str]:
    rgb = rgba[..., :3].astype(np.float32) / 255.0
    opaque = rgba[..., 3] >= 128
    value = rgb.max(axis=-1)
    background = params.background
    if background == "auto":
        background = "dark" if opaque.any() and float(np.median(value[opaque])) < 0.5 else "bright"
    if background == "dark":
        signal, radius = np.log1p(value * 255.0) / np.log(256.0), round(params.dark_smooth_um / mask_mpp)
    else:
        spread = value - rgb.min(axis=-1)
        signal, radius = (
            np.divide(spread, value, out=np.zeros_like(value), where=value > 0),
            params.smooth_radius,
        )
    if radius > 0:
        signal = ndimage.uniform_filter(signal, size=2 * radius + 1, mode="reflect")
    return np.where(opaque, signal, 0.0), background


def check_mask_params(params: MaskParams) -> None:
    problems = [
        name
        for name, ok in (
            ("thumbnail_max >= 16", params.thumbnail_max >= 16),
            ("0 <= min_threshold < 1", 0 <= params.min_threshold < 1),
            (
                "0 < saturation_threshold < 1",
                params.saturation_threshold is None or 0 < params.saturation_threshold < 1,
            ),
            (
                "radii >= 0",
                min(params.close_radius, params.open_radius, params.smooth_radius, params.dark_smooth_um)
                >= 0,
            ),
            ("0 <= min_object_frac < 1", 0 <= params.min_object_frac < 1),
            ("background in auto/bright/dark", params.background in ("auto", "bright", "dark")),
        )
        if not ok
    ]
    if problems:
        raise ValidationError(f"invalid mask parameters: need {', '.join(problems)}", hint=f"got {params}")


def mask_thumbnail(
    rgba: np.ndarray, params: MaskParams, *, level0_size: tuple[int, int], mpp: float
) -> TissueMask:
    """Tissue on a slide's uint8 RGBA thumbnail: Otsu on saturation (bright background) or log-brightness
    (dark), then morphology.

    Args:
        rgba: the thumbnail, (h, w, 4); transparent pixels are never tissue.
        params: how to make the mask.
        level0_size: the slide's level-0 (width, height), which the mask's downsample refers to.
        mpp: the slide's level-0 µm/px; it only sets the dark-background smoothing width.

    Raises:
        ValidationError: invalid ``params``.
    """
    check_mask_params(params)
    signal, background = _signal(rgba, params, mpp * level0_size[0] / rgba.shape[1])
    opaque = rgba[..., 3] >= 128
    if params.saturation_threshold is not None:
        threshold = params.saturation_threshold
    else:
        threshold = max(_otsu(signal[opaque]) if opaque.any() else 1.0, params.min_threshold)
    mask = _morphology((signal > threshold) & opaque, params)
    width, height = level0_size
    downsample = (width / mask.shape[1], height / mask.shape[0])
    return TissueMask(
        mask=mask, downsample=downsample, threshold=threshold, params=params, background=background
    )
