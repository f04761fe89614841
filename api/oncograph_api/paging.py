"""The GDC API's paging words, accepted beside oncograph's keyset paging: ``size`` for ``limit`` and ``from``
(a zero-based offset, counted from the keyset position when one is given, walked in the largest pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_OFFSET = 10_000
"""The deepest ``from``; deeper, clients follow the keyset cursor (exact at any depth, and cheap)."""
MAX_SIZE = 10_000
"""The largest ``size`` accepted; a page is at most the endpoint's own largest page."""

SizeQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_SIZE, description="The GDC API's name for `limit` (at most the largest page here)."),
]
OffsetQuery = Annotated[
    int | None,
    Query(
        alias="from",
        ge=0,
        le=MAX_OFFSET,
        description="The GDC API's paging: skip this many rows (zero-based), counted from the keyset position "
        f"(`cursor` or `after`) when one is given. Up to {MAX_OFFSET:,}; deeper, follow the keyset cursor.",
    ),
]


def page_size(limit: int | None, size: int | None, *, default: int, largest: int) -> int:
    """``limit``, or its GDC name ``size``; given both, the smaller; neither, ``default``; at most ``largest``."""
    given = [n for n in (limit, size) if n is not None]
    return min(min(given) if given else default, largest)
