"""proteomics models (filled in by the proteomics work)."""

from __future__ import annotations
