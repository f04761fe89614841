"""A local stand-in for pdc.cancer.gov/graphql that answers from real recorded PDC responses.

Used by tests and the demo: graphql-core parses, validates and executes every query against PDC's own SDL;
root fields resolve from the recordings in ``data/pdc`` (never invented records), and transport faults can be
injected on demand. Typical use::

    store = RecordedPdc.from_directory(Path("data/pdc"))
    with serve_pdc(store, faults=FaultConfig(fail_rate=0.2)) as url:
        ...  # PdcClient(url)
"""

from oncograph.sources.pdc.standin.recorded_queries import RECORDED_QUERIES, RecordedQuery
from oncograph.sources.pdc.standin.schema import build_pdc_schema, fixup_sdl, missing_types
from oncograph.sources.pdc.standin.server import (
    RELEASE_HEADER,
    PdcStandinServer,
    run_pdc_standin,
    serve_pdc,
)
from oncograph.sources.pdc.standin.store import RecordedPdc, Recording, data_release_label

__all__ = [
    "RECORDED_QUERIES",
    "RELEASE_HEADER",
    "PdcStandinServer",
    "RecordedPdc",
    "RecordedQuery",
    "Recording",
    "build_pdc_schema",
    "data_release_label",
    "fixup_sdl",
    "missing_types",
    "run_pdc_standin",
    "serve_pdc",
]
