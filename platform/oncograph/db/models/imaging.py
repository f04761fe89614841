"""imaging models (filled in by the imaging work)."""

from __future__ import annotations
