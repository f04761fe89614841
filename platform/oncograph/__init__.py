"""oncograph: a provenance-tracked, patient-centric graph of NCI CRDC cancer data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("oncograph")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
