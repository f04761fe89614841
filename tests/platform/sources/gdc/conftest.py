"""Fixtures: a mirror built once from the bundled real GDC data, served on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from oncograph.sources.gdc.mirror import BuildReport, MirrorStore, build_mirror_directory, serve_mirror

DATA = Path(__file__).resolve().parents[4] / "data" / "gdc"
API_JSON = DATA / "gdc_api_json"


@pytest.fixture(scope="session")
def mirror_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildReport]:
    """The mirror directory built from ``data/gdc`` and its report."""
    out = tmp_path_factory.mktemp("gdc-mirror") / "mirror"
    return out, build_mirror_directory(DATA, out)


@pytest.fixture(scope="session")
def mirror_dir(mirror_build: tuple[Path, BuildReport]) -> Path:
    return mirror_build[0]


@pytest.fixture(scope="session")
def mirror_store(mirror_dir: Path) -> MirrorStore:
    return MirrorStore.from_directory(mirror_dir)


@pytest.fixture(scope="session")
def mirror_url(mirror_store: MirrorStore) -> Iterator[str]:
    """Base URL of a fault-free mirror serving the real documents."""
    with serve_mirror(mirror_store) as url:
        yield url


@pytest.fixture(scope="session")
def recorded() -> Callable[[str], Any]:
    """The real recorded API response of ``data/gdc/gdc_api_json/<name>`` (its ``response`` key)."""

    def load(name: str) -> Any:
        return orjson.loads((API_JSON / name).read_bytes())["response"]

    return load
