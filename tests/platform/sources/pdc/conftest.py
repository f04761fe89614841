"""Fixtures: the real recorded PDC answers (``data/pdc``) and the stand-in serving them on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from oncograph.sources.pdc.standin import RecordedPdc, RecordedQuery, serve_pdc

PDC_DATA = Path(__file__).resolve().parents[4] / "data" / "pdc"


@pytest.fixture(scope="session")
def pdc_data() -> Path:
    """The bundled real PDC recordings and SDL (provenance in ``data/pdc/SOURCES.md``)."""
    return PDC_DATA


@pytest.fixture(scope="session")
def clock() -> type[FakeClock]:
    """The :class:`FakeClock` class (a fresh one per use)."""
    return FakeClock


@pytest.fixture(scope="session")
def pdc_store() -> RecordedPdc:
    """The schema and recordings of ``data/pdc``."""
    return RecordedPdc.from_directory(PDC_DATA)


@pytest.fixture(scope="session")
def pdc_url(pdc_store: RecordedPdc) -> Iterator[str]:
    """GraphQL URL of a fault-free stand-in."""
    with serve_pdc(pdc_store) as url:
        yield url


@pytest.fixture(scope="session")
def recorded() -> Callable[[RecordedQuery], Any]:
    """The real recorded answer of a recorded query (read straight from its file)."""

    def load(query: RecordedQuery) -> Any:
        return orjson.loads((PDC_DATA / query.file).read_bytes())[query.response_key]

    return load


class FakeClock:
    """A clock that a client's ``sleep`` advances: rate limiting without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
