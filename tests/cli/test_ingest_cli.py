"""``oncograph ingest ...`` in a real subprocess: bad data is quarantined and reported (never a traceback),
results go to stdout, progress and errors to stderr.

Bad inputs are real bundled files (data/gdc, see its SOURCES files) copied into tmp_path with one cell
corrupted on purpose.
"""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
from support.cli import run_cli

from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, serve_mirror

LUAD = "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv"
EMPTY = "gdc_portal_v2_TCGA-LUAD_family_history_EMPTY.tsv"


def _nul_copy(source: Path, out: Path) -> None:
    """``source`` with a NUL character inside one diagnosis cell of data line 31."""
    rows = list(csv.reader(source.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    col = rows[0].index("diagnoses.primary_diagnosis")
    rows[30][col] = rows[30][col][:3] + "\x00" + rows[30][col][3:]
    out.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")


def test_a_nul_cell_is_quarantined_and_reported(gdc_data: Path, fresh_db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "clinical_nul.tsv"
    _nul_copy(gdc_data / "gdc_portal_exports" / LUAD, bad)

    done = run_cli(["ingest", "gdc-portal", str(bad)], fresh_db_url, tmp_path)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "1 record(s) quarantined" in done.stdout and "oncograph status" in done.stdout
    assert "NUL character" in done.stdout
    assert "inserted      59" in done.stdout.replace(",", "")
    status = run_cli(["status", "--json"], fresh_db_url, tmp_path)
    (entry,) = orjson.loads(status.stdout)["quarantine"]
    assert entry["records"] == 1 and "NUL" in entry["example_reason"]


def test_json_output_is_only_json(gdc_data: Path, fresh_db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "clinical_nul.tsv"
    _nul_copy(gdc_data / "gdc_portal_exports" / LUAD, bad)
    done = run_cli(["ingest", "gdc-portal", "--json", str(bad)], fresh_db_url, tmp_path)
    assert done.returncode == 0, done.stderr
    payload = orjson.loads(done.stdout)
    assert payload["quarantined"] == 1 and payload["entities"]["patient"]["inserted"] == 59


def test_a_folder_is_imported_and_the_rest_listed(gdc_data: Path, fresh_db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name in (LUAD, EMPTY):
        (folder / name).write_bytes((gdc_data / "gdc_portal_exports" / name).read_bytes())
    (folder / "notes.tsv").write_text("colour\tshape\nred\tround\n")

    done = run_cli(["ingest", "gdc-portal", str(folder)], fresh_db_url, tmp_path)

    assert done.returncode == 0, done.stderr
    assert f"{EMPTY}: no rows, nothing imported" in done.stdout
    assert "1 file(s) not recognised, skipped:" in done.stdout and "notes.tsv: unknown layout" in done.stdout
    assert "1 file(s) imported" in done.stdout


def test_an_empty_file_imports_nothing(gdc_data: Path, fresh_db_url: str, tmp_path: Path) -> None:
    done = run_cli(
        ["ingest", "gdc-portal", str(gdc_data / "gdc_portal_exports" / EMPTY)], fresh_db_url, tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert f"{EMPTY}: no rows, nothing imported" in done.stdout
    releases = run_cli(["status", "--json"], fresh_db_url, tmp_path)
    assert not [r for r in orjson.loads(releases.stdout)["releases"] if r["source"] == "gdc_portal"]


def test_an_unknown_file_named_explicitly_is_an_error_on_stderr(fresh_db_url: str, tmp_path: Path) -> None:
    weird = tmp_path / "weird.tsv"
    weird.write_text("colour\tshape\nred\tround\n")
    done = run_cli(["ingest", "gdc-portal", str(weird)], fresh_db_url, tmp_path)
    assert done.returncode == 1
    assert "weird.tsv" in done.stderr and "unknown GDC portal file layout" in done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr


def test_harvest_shows_progress_on_stderr_and_results_on_stdout(
    gdc_data: Path, fresh_db_url: str, tmp_path: Path
) -> None:
    build_mirror_directory(gdc_data, tmp_path / "mirror")
    with serve_mirror(MirrorStore.from_directory(tmp_path / "mirror")) as gdc:
        done = run_cli(
            ["ingest", "gdc", "--gdc-url", gdc, "--project", "TCGA-CHOL", "--page-size", "20"],
            fresh_db_url,
            tmp_path,
        )
    assert done.returncode == 0, done.stderr
    assert "cases" in done.stderr and "identity links" in done.stderr  # the bars
    assert done.stdout.startswith("run ") and "patient" in done.stdout and "cases" not in done.stdout
