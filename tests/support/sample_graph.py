"""The demo's sample graph, built once per test session: every bundled real GDC document harvested through the
real client from the local GDC-compatible server, the demo's portal files, IDC series of the demo's TCGA
collections (idc-index-data), the recorded PDC studies, and identity links. Tests must not change it (use the
``sample_conn`` fixture, which rolls back) or must clone it (``clone_sample``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from oncograph.ingest.harvest import harvest_gdc
from oncograph.ingest.idc_import import import_idc
from oncograph.ingest.pdc_import import ingest_pdc
from oncograph.ingest.portal_import import import_portal_files
from oncograph.linking import run_linking
from oncograph.sources.gdc.client import GdcClient
from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, serve_mirror
from oncograph.sources.pdc import PdcClient
from oncograph.sources.pdc.standin import RecordedPdc, serve_pdc
from oncograph_cli.commands.demo import DEMO_PDC, DEMO_PORTAL_FILES, DEMO_TCGA_PROJECTS


def build_sample_graph(url: str, data: Path) -> None:
    engine = create_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with tempfile.TemporaryDirectory(prefix="oncograph-mirror-") as tmp:
        build_mirror_directory(data / "gdc", Path(tmp))
        store = MirrorStore.from_directory(Path(tmp))
        projects = sorted(
            {
                str(d["project"]["project_id"])
                for d in store.documents("cases")
                if isinstance(d.get("project"), dict) and d["project"].get("project_id")
            }
        )
        with serve_mirror(store) as gdc_url, GdcClient(gdc_url, page_size=500) as client:
            harvest_gdc(factory, client, projects)
    files = [data / "gdc" / f for f in DEMO_PORTAL_FILES if (data / "gdc" / f).exists()]
    import_portal_files(factory, files)
    tcga = sorted({*DEMO_TCGA_PROJECTS, *(p for p in projects if p.startswith("TCGA-"))})
    import_idc(factory, collections=[p.lower().replace("-", "_") for p in tcga])
    pdc = RecordedPdc.from_directory(data / "pdc")
    with serve_pdc(pdc) as pdc_url, PdcClient(pdc_url) as pdc_client:
        ingest_pdc(
            factory,
            pdc_client,
            studies=DEMO_PDC["studies"],
            file_types=DEMO_PDC["file_types"],
            cases=DEMO_PDC["cases"],
        )
    run_linking(factory)
    engine.dispose()
