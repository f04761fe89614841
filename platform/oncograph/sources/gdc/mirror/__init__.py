"""A local stand-in for api.gdc.cancer.gov that serves real recorded GDC documents.

Used by tests, the demo and benchmarks; a harvester pointed at it cannot tell it from the real API (same
endpoints, parameters, filters grammar, envelope and pagination), except that it can inject faults on demand.

Typical use::

    report = build_mirror_directory(Path("data/gdc"), tmp / "mirror")
    store = MirrorStore.from_directory(tmp / "mirror")
    with serve_mirror(store, faults=FaultConfig(fail_rate=0.1)) as url:
        ...  # point GdcClient(base_url=url) at it
"""

from oncograph.sources.gdc.mirror.build import BuildReport, SkippedItem, build_mirror_directory
from oncograph.sources.gdc.mirror.faults import FaultConfig, FaultCounters, FaultInjector
from oncograph.sources.gdc.mirror.filters import FilterError, parse_filters
from oncograph.sources.gdc.mirror.projection import Projection, nested_paths
from oncograph.sources.gdc.mirror.server import MirrorServer, run_mirror, serve_mirror
from oncograph.sources.gdc.mirror.store import ENDPOINTS, ID_FIELDS, RECORDED_STATUS, Endpoint, MirrorStore

__all__ = [
    "ENDPOINTS",
    "ID_FIELDS",
    "RECORDED_STATUS",
    "BuildReport",
    "Endpoint",
    "FaultConfig",
    "FaultCounters",
    "FaultInjector",
    "FilterError",
    "MirrorServer",
    "MirrorStore",
    "Projection",
    "SkippedItem",
    "build_mirror_directory",
    "nested_paths",
    "parse_filters",
    "run_mirror",
    "serve_mirror",
]
