"""``oncograph demo``: everything end to end on the bundled real data, offline.

Embedded PostgreSQL -> local GDC-compatible server on the bundled real documents -> the Prefect flow
``harvest_gdc`` -> the bundled GDC portal exports -> IDC series of the TCGA collections of those projects
(from the index that idc-index-data ships; ``--idc-all`` loads the whole ~1M-series index) -> PDC studies
from the local GraphQL stand-in on the recorded responses -> identity links -> ``oncograph status``.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import typer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db import get_engine, session_factory
from oncograph.db.migrate import upgrade
from oncograph.errors import OncographError
from oncograph.ingest.portal_import import import_portal_files
from oncograph.linking import run_linking
from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, serve_mirror
from oncograph_cli.commands.status import status as print_status
from oncograph_cli.output import console, exit_with_error

#: Portal downloads imported by the demo (the JSON exports the mirror serves arrive through the API instead).
DEMO_PORTAL_FILES = (
    "gdc_portal_exports/gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv",
    "gdc_portal_exports/gdc_portal_v2_TCGA-LUAD_exposure_first60cases.tsv",
    "gdc_portal_exports/gdc_portal_v2_TCGA-LUAD_follow_up_first60cases.tsv",
    "gdc_portal_exports/gdc_portal_v2_TCGA-LUAD_pathology_detail_first60cases.tsv",
    "gdc_portal_exports/gdc_portal_v2_TCGA-LUAD_family_history_EMPTY.tsv",
    "gdc_portal_exports/gdc_clinical_TCGA-COAD_portal_v2_2025_first60cases.tsv",
    "gdc_portal_exports/gdc_clinical_TCGA-LIHC_portal_v1_2020s.tsv",
    "gdc_portal_exports/gdc_sample_sheet_TCGA-LIHC_expression.tsv",
    "gdc_portal_exports/gdc_clinical_supplement_BCR_Biotab_clinical_patient_brca_first100_plus3linked.txt",
    "gdc_portal_exports/gdc_sample_sheet_2025_TCGA-BRCA-OV-LUAD_240rows.tsv",
    "gdc_portal_exports/gdc_manifest_2025_TCGA-BRCA-OV-LUAD_240files.txt",
    "gdc_portal_json/gdc_clinical_TCGA-BRCA_2019_1036cases_tumor_stage.json",
    "gdc_portal_json/gdc_api_cases_TCGA-BRCA_2026_50cases_few_fields.json",
)
#: What the recorded PDC responses cover (see data/pdc/SOURCES.md).
DEMO_PDC = {
    "studies": ["PDC000109", "PDC000110", "PDC000111", "S038-3"],
    "file_types": ["RAW"],
    "cases": ["01BR001"],
}


def demo(
    data: Path = typer.Option(Path("data"), "--data", help="The bundled real data (the repository's data/)."),
    flow: bool = typer.Option(True, "--flow/--no-flow", help="Harvest GDC through the Prefect flow."),
    idc_all: bool = typer.Option(
        False,
        "--idc-all",
        help="Load IDC's whole series index, not only the TCGA collections of the demo's GDC projects.",
    ),
    serve: bool = typer.Option(
        True,
        "--serve/--no-serve",
        help="End with the REST API and the UI up until Ctrl-C; --no-serve checks the API and exits (scripts).",
    ),
    port: int = typer.Option(8000, "--port", help="Port of the REST API."),
    ui_port: int = typer.Option(8501, "--ui-port", help="Port of the UI."),
    embed: bool = typer.Option(
        True,
        "--embed/--no-embed",
        help="Embed the bundled slides and every patient's clinical text (on Ray).",
    ),
) -> None:
    """Run everything end to end on the bundled real data and print the status."""
    if not (data / "gdc").is_dir():
        exit_with_error(f"no data/gdc under {data}: run the demo from the repository root, or pass --data")
    try:
        engine = get_engine()
        upgrade(engine)
        factory = session_factory(engine)
        console.print(f"[bold]1/8[/] PostgreSQL ready at {engine.url.render_as_string(hide_password=True)}")
        projects = _gdc(data / "gdc", flow=flow)
        files = [data / "gdc" / f for f in DEMO_PORTAL_FILES if (data / "gdc" / f).exists()]
        run, counts, _ = import_portal_files(factory, files)
        console.print(
            f"[bold]4/8[/] imported {len(files)} GDC portal files (run {run.id}, "
            f"{sum(counts.quarantined.values())} records quarantined)"
        )
        _idc(factory, projects, everything=idc_all)
        _pdc(factory, data / "pdc")
        link_run, created = run_linking(factory)
        console.print(f"      identity links (run {link_run.id}): {created}")
        if embed:
            _embed(factory, data)
        print_status(json_out=False)
        key, cohort_id = _cohort_and_export(factory)
        _api(engine, key, cohort_id, serve=serve, port=port, ui_port=ui_port)
    except OncographError as exc:
        exit_with_error(str(exc))


#: The bundled real slides (data/wsi/SOURCES.md). The TCGA fixture states no scale: 0.25 µm/px stands in.
DEMO_SLIDES = ("CMU-1-Small-Region.svs", "tcga-cr-7395-01a-01-ts1.svs", "test3-DAPI-2-387.ndpi")
DEMO_FALLBACK_MPP = 0.25


def _embed(factory: sessionmaker[Session], data: Path) -> None:
    """Embed the bundled slides and all patients' clinical text on a local Ray; show similar patients."""
    from oncograph.embeddings.jobs import EmbedRequest
    from oncograph.embeddings.similar import similar_patients
    from oncograph.settings import get_settings
    from oncograph_flows.embed import RayExecutor, run_embedding

    settings = get_settings()
    slides = tuple(str(data / "wsi" / name) for name in DEMO_SLIDES if (data / "wsi" / name).is_file())
    with RayExecutor(settings) as executor:
        if slides:
            done = run_embedding(
                EmbedRequest(
                    "slide", paths=slides, mpp=DEMO_FALLBACK_MPP, batch_size=settings.embed_batch_size
                ),
                settings=settings,
                factory=factory,
                executor=executor,
            )
            console.print(
                f"      slides (run {done.run_id}, {done.encoder}): {done.embedded} embedded, {done.skipped} "
                f"already done, {done.failed} failed, {done.tiles} tiles; {done.unattached} not in the graph "
                "(kept unattached, never guessed)"
            )
        text_run = run_embedding(
            EmbedRequest("text", batch_size=settings.embed_batch_size),
            settings=settings,
            factory=factory,
            executor=executor,
        )
    console.print(
        f"      clinical text (run {text_run.run_id}, {text_run.encoder}): {text_run.embedded} embedded, "
        f"{text_run.skipped} already done in {text_run.seconds:.1f} s"
    )
    with factory() as session:
        from sqlalchemy import text

        rows = session.execute(
            text(
                "SELECT p.id, p.submitter_id FROM embedding e JOIN patient p ON p.id = e.patient_id "
                "WHERE e.model = :m ORDER BY p.submitter_id LIMIT 1"
            ),
            {"m": text_run.encoder},
        ).all()
        if not rows:
            return
        pid, submitter = rows[0]
        everyone = list(
            session.execute(text("SELECT id FROM patient WHERE retired_release_id IS NULL")).scalars()
        )
        near = similar_patients(session, everyone, pid, text_run.encoder, k=3)
    listed = ", ".join(f"{n.submitter_id} ({1 - n.distance:.2f})" for n in near)
    console.print(f"      patients whose records read most like {submitter}'s: {listed}")


#: The demo cohort: TCGA breast and lung cases with a slide image (copied GDC filter grammar + our fields).
DEMO_COHORT = {
    "op": "and",
    "content": [
        {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-BRCA", "TCGA-LUAD"]}},
        {"op": "in", "content": {"field": "modalities", "value": ["slide"]}},
    ],
}


def _cohort_and_export(factory: sessionmaker[Session]) -> tuple[str, int]:
    """A demo curator with a fresh API key, a saved cohort and its ML-ready export under ONCOGRAPH_HOME."""
    from oncograph.access import Scope
    from oncograph.access.principals import add_principal, get_principal, issue_key
    from oncograph.cohorts import saved
    from oncograph.db import transaction
    from oncograph.errors import NotFoundError
    from oncograph.export.job import ExportOptions, create_export, run_export
    from oncograph.settings import get_settings

    with transaction(factory) as s:
        try:
            demo_user = get_principal(s, "demo")
        except NotFoundError:
            demo_user = add_principal(s, "demo", "curator")
        key = issue_key(s, "demo").key
        cohort = saved.create_from_filter(
            s,
            name="TCGA BRCA+LUAD with slides",
            filters=DEMO_COHORT,
            owner=demo_user,
            scope=Scope(principal="demo", role="curator"),
            description="demo: breast and lung adenocarcinoma cases with slide images (GDC or IDC)",
            shared=True,
        )
        destination = get_settings().home_dir / "exports" / f"cohort-{cohort.id}"
        export = create_export(
            s,
            cohort_id=cohort.id,
            principal=demo_user,
            destination=str(destination),
            options=ExportOptions(seed=0),
            scope=Scope(principal="demo", role="curator"),
        )
    console.print(
        f"[bold]7/8[/] cohort {cohort.id} {cohort.name!r}: {cohort.latest.size} patients, "
        f"member hash {cohort.latest.member_hash[:12]}…"
    )
    result = run_export(factory, export.id)
    console.print(
        f"      exported to {result.destination}: "
        + ", ".join(f"{k} {v}" for k, v in result.manifest["splits"].items())
        + f" ({len(result.manifest['files'])} files, manifest.json + croissant.json)"
    )
    return key, cohort.id


def _serve(engine: Engine, key: str, cohort_id: int, *, port: int, ui_port: int) -> None:
    """The REST API (with an export worker) and the UI until Ctrl-C, which stops both."""
    import uvicorn

    from oncograph.export.worker import start_worker_thread
    from oncograph_api.app import create_app
    from oncograph_cli.commands.ui import ui_command, ui_env

    api_url = f"http://127.0.0.1:{port}"
    _, stop = start_worker_thread(session_factory(engine))
    # the UI process gets the demo key from its environment (one person on their own machine): no login
    ui = subprocess.Popen(ui_command(ui_port), env=ui_env(api_url, key), stdout=subprocess.DEVNULL)
    console.print(
        f"[bold]8/8[/] REST API at {api_url}/docs and the cohort builder at http://127.0.0.1:{ui_port}\n"
        f"      demo API key (curator): {key}\n"
        f"      try: curl -H 'X-API-Key: {key}' {api_url}/cohorts/{cohort_id}\n"
        "      Ctrl-C stops both."
    )
    try:
        uvicorn.run(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    finally:
        stop.set()
        ui.terminate()
        try:
            ui.wait(timeout=15)
        except subprocess.TimeoutExpired:
            ui.kill()
        console.print("      stopped the API and the UI")


def _api(engine: Engine, key: str, cohort_id: int, *, serve: bool, port: int, ui_port: int) -> None:
    """Start the REST API and show that the demo key works on it; with ``serve``, keep it and the UI up."""
    import httpx
    import uvicorn

    from oncograph_api.app import create_app

    if serve:
        _serve(engine, key, cohort_id, port=port, ui_port=ui_port)
        return
    app = create_app(engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free, log_level="warning"))
    thread = threading.Thread(target=server.run, name="demo-api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{free}"
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        facets = httpx.post(
            f"{url}/facets",
            headers={"X-API-Key": key},
            json={"filters": DEMO_COHORT, "facets": ["demographic.vital_status"]},
            timeout=60,
        ).json()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    console.print(
        f"[bold]8/8[/] REST API checked on {url}: POST /facets -> {facets.get('total')} patients.\n"
        f"      Serve it and the UI: `oncograph demo` without --no-serve, or `oncograph serve` + `oncograph ui`; "
        f"demo API key (curator): {key}"
    )


def _gdc(data: Path, *, flow: bool) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="oncograph-mirror-") as tmp:
        report = build_mirror_directory(data, Path(tmp))
        store = MirrorStore.from_directory(Path(tmp))
        projects = sorted(
            {
                str(d["project"]["project_id"])
                for d in store.documents("cases")
                if isinstance(d.get("project"), dict) and d["project"].get("project_id")
            }
        )
        with serve_mirror(store) as url:
            console.print(
                f"[bold]2/8[/] local GDC server at {url}: {store.counts()} "
                f"({len(report.skipped)} source items skipped while building: no id)"
            )
            if flow:
                from oncograph_flows.harvest import harvest_gdc_flow

                console.print(f"[bold]3/8[/] Prefect flow harvest_gdc over {len(projects)} projects ...")
                result = harvest_gdc_flow(projects=projects, gdc_url=url)
                console.print(
                    f"      run {result['run_id']} (flow run {result['prefect_flow_run_id']}), "
                    f"release {result['release']!r}"
                )
            else:
                from oncograph.ingest.harvest import harvest_gdc
                from oncograph.settings import get_settings
                from oncograph.sources.gdc.client import GdcClient

                with GdcClient.from_settings(get_settings(), base_url=url) as client:
                    harvest, _ = harvest_gdc(session_factory(get_engine()), client, projects)
                console.print(f"[bold]3/8[/] harvested run {harvest.run.id}")
    return projects


#: TCGA projects the bundled GDC data covers (API harvest + portal files); their IDC collections are loaded.
DEMO_TCGA_PROJECTS = (
    "TCGA-BRCA",
    "TCGA-CHOL",
    "TCGA-COAD",
    "TCGA-GBM",
    "TCGA-LIHC",
    "TCGA-LUAD",
    "TCGA-PAAD",
)


def _idc(factory: sessionmaker[Session], projects: list[str], *, everything: bool) -> None:
    from oncograph.ingest.idc_import import import_idc

    tcga = sorted({*DEMO_TCGA_PROJECTS, *(p for p in projects if p.startswith("TCGA-"))})
    collections = None if everything else [p.lower().replace("-", "_") for p in tcga]
    result = import_idc(factory, collections=collections)
    series = result.entities["imaging_series"]
    console.print(
        f"[bold]5/8[/] IDC {result.release}: run {result.run.id}, "
        f"{len(result.collections)} collections, series inserted {series.inserted:,}, "
        f"unchanged {series.unchanged:,}, quarantined {series.quarantined:,}"
    )


def _pdc(factory: sessionmaker[Session], data: Path) -> None:
    from oncograph.ingest.pdc_import import ingest_pdc
    from oncograph.sources.pdc import PdcClient
    from oncograph.sources.pdc.standin import RecordedPdc, serve_pdc

    store = RecordedPdc.from_directory(data)
    with serve_pdc(store) as url, PdcClient(url) as client:
        handle, counts = ingest_pdc(
            factory,
            client,
            studies=DEMO_PDC["studies"],
            file_types=DEMO_PDC["file_types"],
            cases=DEMO_PDC["cases"],
        )
    inserted = {k: v["inserted"] for k, v in counts.entities().items()}
    console.print(f"[bold]6/8[/] PDC stand-in at {url}: run {handle.run.id}, inserted {inserted}")
