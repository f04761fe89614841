"""Radiology scans (DICOM CT/MR series) to 2.5D slice stacks that an image encoder can embed.

Why this module exists: an encoder wants small RGB-like images, a scan is a folder of DICOM files. Between the
two sit decisions that change every embedding and so are recorded with it (``scan_slices`` returns them):
which files form a series, in which order, in which intensity scale, at which spacing.

Key contracts:

- ``find_series`` reads headers only (it stops before the pixel data) and never raises for a bad file: each
  file it cannot use is an :class:`Unreadable` with a reason. A file whose pixel data is shorter than its
  header declares is caught here; a file that fails to decode is caught by ``load_volume``
  (:class:`~oncograph.errors.ValidationError` naming the file).
- Slices are sorted ascending along the slice normal (row × column direction cosines) by the projection of
  ImagePositionPatient, the order ITK/GDCM use. Without usable positions the order falls back to
  InstanceNumber, then to the file name, and ``Series.notes`` says so.
- Pixel values go through the modality LUT (RescaleSlope/Intercept) for every modality: Hounsfield units for
  CT, the scanner's rescaled values for MR (Philips MR sets RescaleSlope per series). Pixels equal to
  PixelPaddingValue (outside the field of view) take the slice's lowest other value (-1024 HU on our CT).
- ``series_sha256`` hashes file contents, not paths or order: the same series copied elsewhere has one hash.

The package runs in CPU reader tasks: numpy, pydicom, SimpleITK and Pillow only, no torch.

Modules: :mod:`.series` (headers only: grouping, ordering, spacing, content hash) and :mod:`.pixels`
(decoding, windows, resampling, 2.5D slices).
"""

from oncograph.embeddings.scans.pixels import (
    DEFAULT_CT_WINDOW,
    WINDOWS,
    Volume,
    load_volume,
    normalise_mr,
    resample,
    scan_slices,
    slices_25d,
    window,
    window_values,
)
from oncograph.embeddings.scans.series import Ordering, Series, Unreadable, find_series, series_sha256

__all__ = [
    "DEFAULT_CT_WINDOW",
    "WINDOWS",
    "Ordering",
    "Series",
    "Unreadable",
    "Volume",
    "find_series",
    "load_volume",
    "normalise_mr",
    "resample",
    "scan_slices",
    "series_sha256",
    "slices_25d",
    "window",
    "window_values",
]
