"""How long-running ingests report progress: a plain callback, so the core stays free of any display.

``progress(label, done, total)``: ``label`` names what is counted (``"cases"``, ``"files"``, a PDC study ...),
``done`` is how many are done so far for that label (cumulative, never a delta), ``total`` how many there will
be, or None when unknown. A label seen for the first time starts a new counter. The CLI draws these as rich
progress bars on stderr; flows and tests may pass any function, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

Progress: TypeAlias = Callable[[str, int, int | None], None]

__all__ = ["Progress"]
