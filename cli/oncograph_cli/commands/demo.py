"""``oncograph demo``: the whole foundation end to end on the bundled real data, offline.

Embedded PostgreSQL -> local GDC-compatible server on the bundled real documents -> the Prefect flow
``harvest_gdc`` -> the bundled GDC portal exports -> ``oncograph status``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from oncograph.db import get_engine, session_factory, transaction, upgrade
from oncograph.errors import OncographError
from oncograph.ingest.portal_import import import_portal_files
from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, serve_mirror
from oncograph.status import graph_status
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


def demo(
    data: Path = typer.Option(
        Path("data/gdc"), "--data", help="The bundled real GDC data (repo's data/gdc)."
    ),
    flow: bool = typer.Option(True, "--flow/--no-flow", help="Harvest through the Prefect flow."),
) -> None:
    """Run the foundation end to end on the bundled real data and print the status."""
    if not data.is_dir():
        exit_with_error(f"no data directory at {data}: run the demo from the repository root, or pass --data")
    try:
        engine = get_engine()
        upgrade(engine)
        console.print(f"[bold]1/4[/] PostgreSQL ready at {engine.url.render_as_string(hide_password=True)}")
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
                    f"[bold]2/4[/] local GDC server at {url}: {store.counts()} "
                    f"({len(report.skipped)} source items skipped while building: no id)"
                )
                if flow:
                    from oncograph_flows.harvest import harvest_gdc_flow

                    console.print(f"[bold]3/4[/] Prefect flow harvest_gdc over {len(projects)} projects ...")
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
                        harvest, _ = harvest_gdc(session_factory(engine), client, projects)
                    console.print(f"[bold]3/4[/] harvested run {harvest.run.id}")
        files = [data / f for f in DEMO_PORTAL_FILES if (data / f).exists()]
        run, counts, _ = import_portal_files(session_factory(engine), files)
        console.print(
            f"[bold]4/4[/] imported {len(files)} portal files (run {run.id}, "
            f"{sum(counts.quarantined.values())} records quarantined)"
        )
        with transaction(session_factory(engine)) as s:
            graph_status(s)
    except OncographError as exc:
        exit_with_error(str(exc))
    print_status(json_out=False)
