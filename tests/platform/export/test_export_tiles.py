"""Exports with ``tiles`` (``oncograph export --tiles``): the slides' per-tile feature files and a tile-level
Parquet dataset, on a private copy of the real sample graph with real slide embeddings.

Two real slides (``data/wsi``) are saved under one graph patient's TCGA barcode and embedded by the real
runner (efficientnet-lite0, in this process), so they attach to that patient (``attached_by='barcode'``) with
real TRIDENT-layout HDF5 files. Expected values are read from those files with h5py and from the embedding
rows with SQL written here, never through the export code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from oncograph.access import Scope
from oncograph.embeddings.compute import SerialExecutor
from oncograph.embeddings.jobs import EmbedRequest
from oncograph.embeddings.runner import embed
from oncograph.errors import ValidationError
from oncograph.export.job import ExportOptions, ExportResult
from oncograph.export.schema import EXPORT_SCHEMA_VERSION
from oncograph.export.tiles import FeatureFileError
from oncograph.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
WSI = REPO / "data" / "wsi"
MODEL = "efficientnet-lite0"
EVERYTHING = Scope.everything()
ExportDB = Any  # tests/platform/export/conftest.py


@dataclass
class TileGraph:
    db: ExportDB
    cohort: Any
    case_id: str
    slides: list[dict[str, Any]]
    """The patient's slide embeddings (features_uri, features_sha256, tiles, object_id ...), export order."""


@pytest.fixture(scope="module")
def tile_graph(export_db: ExportDB, tmp_path_factory: pytest.TempPathFactory) -> TileGraph:
    # the smallest project that has a patient with a TCGA barcode: its cohort exports fast
    project, pid, barcode, case_id = export_db.sql(
        "SELECT pr.project_id, p.id, p.submitter_id, p.case_id::text FROM patient p "
        "JOIN project pr ON pr.id = p.project_id WHERE p.submitter_id LIKE 'TCGA-__-____' "
        "AND p.retired_release_id IS NULL ORDER BY (SELECT count(*) FROM patient q "
        "WHERE q.project_id = p.project_id), p.case_id LIMIT 1"
    )[0]
    folder = tmp_path_factory.mktemp("slides")
    # real slides saved under the patient's barcode: this tests the export, not whose tissue they are
    shutil.copy(WSI / "CMU-1-Small-Region.svs", folder / f"{barcode}-01A-01-TS1.svs")
    shutil.copy(WSI / "tcga-cr-7395-01a-01-ts1.svs", folder / f"{barcode}-01A-02-TS2.svs")
    done = embed(
        export_db.factory,
        EmbedRequest("slide", paths=(str(folder),), mpp=0.25),
        Settings(home=tmp_path_factory.mktemp("home")),
        SerialExecutor(threads=2),
        scope=Scope.everything("t"),
    )
    assert (done.embedded, done.failed, done.unattached) == (2, 0, 0)
    slides = [
        dict(r._mapping)
        for r in export_db.sql(
            "SELECT object_kind, object_id, model_version, features_uri, features_sha256, features_bytes, "
            "tiles, attached_by FROM embedding WHERE patient_id = :p AND modality = 'slide' "
            "ORDER BY object_kind, object_id, model_version",
            p=pid,
        )
    ]
    assert len(slides) == 2 and all(s["attached_by"] == "barcode" and s["tiles"] > 0 for s in slides)
    owner = export_db.principal("tiler", "curator")
    cohort = export_db.cohort(
        {"op": "in", "content": {"field": "project.project_id", "value": [project]}}, owner, EVERYTHING
    )
    assert case_id in export_db.members(cohort)
    return TileGraph(export_db, cohort, str(case_id), slides)


@dataclass
class Exported:
    path: Path
    result: ExportResult
    manifest: dict[str, Any]


def _export(graph: TileGraph, path: Path, **options: Any) -> Exported:
    result = graph.db.export(graph.cohort, path, options=ExportOptions(**options))
    return Exported(path, result, json.loads((path / "manifest.json").read_text()))


@pytest.fixture(scope="module")
def with_tiles(tile_graph: TileGraph, export_tmp: Callable[[str], Path]) -> Exported:
    return _export(tile_graph, export_tmp("with-tiles"), tiles=True)


def _h5(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        return np.asarray(f["coords"][:]), np.asarray(f["features"][:])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder() -> str:
    return f"tiles/{MODEL}"


# -- what the export holds --------------------------------------------------------------------------------


def test_feature_files_are_copied_byte_for_byte(tile_graph: TileGraph, with_tiles: Exported) -> None:
    copies = sorted((with_tiles.path / _folder()).glob("*.h5"))
    assert len(copies) == len(tile_graph.slides)
    by_sha = {_sha256(p): p for p in copies}
    for slide in tile_graph.slides:
        source = Path(slide["features_uri"])
        copy = by_sha[slide["features_sha256"]]
        assert copy.read_bytes() == source.read_bytes()
        assert copy.name == f"{slide['object_kind']}-{slide['object_id'].replace(':', '_')}.h5"


def test_tile_rows_are_the_tiles_of_the_feature_files(tile_graph: TileGraph, with_tiles: Exported) -> None:
    folder = with_tiles.path / _folder() / "features.parquet"
    parts = sorted(folder.glob("*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]  # one file per slide
    table = pads.dataset(folder, format="parquet").to_table()
    assert table.num_rows == sum(s["tiles"] for s in tile_graph.slides)
    assert table.schema.field("features").type == pa.list_(pa.float32(), 1280)
    assert pa.types.is_dictionary(table.schema.field("object_kind").type)
    assert pq.read_schema(parts[0]).metadata[b"oncograph.schema_version"] == EXPORT_SCHEMA_VERSION.encode()
    assert b"pandas" not in pq.read_schema(parts[0]).metadata  # pandas and mlcroissant read it as they should
    for part, slide in zip(parts, tile_graph.slides, strict=True):  # parts in export order
        rows = pq.read_table(part)
        coords, features = _h5(slide["features_uri"])
        assert rows.num_rows == len(features) == slide["tiles"]
        assert set(rows.column("case_id").to_pylist()) == {tile_graph.case_id}
        assert set(rows.column("object_id").to_pylist()) == {slide["object_id"]}
        assert set(rows.column("model_version").cast(pa.string()).to_pylist()) == {slide["model_version"]}
        assert rows.column("tile").to_pylist() == list(range(len(features)))
        np.testing.assert_array_equal(rows.column("x").to_numpy(), coords[:, 0])
        np.testing.assert_array_equal(rows.column("y").to_numpy(), coords[:, 1])
        vectors = rows.column("features").combine_chunks().flatten().to_numpy().reshape(len(features), -1)
        np.testing.assert_array_equal(vectors, features)


def test_the_slide_index_lists_each_slide(tile_graph: TileGraph, with_tiles: Exported) -> None:
    index = pq.read_table(with_tiles.path / _folder() / "slides.parquet").to_pylist()
    assert [r["object_id"] for r in index] == [s["object_id"] for s in tile_graph.slides]
    for row, slide in zip(index, tile_graph.slides, strict=True):
        assert row["case_id"] == tile_graph.case_id and row["tiles"] == slide["tiles"] and row["dim"] == 1280
        assert (
            row["features_sha256"]
            == slide["features_sha256"]
            == _sha256(with_tiles.path / row["features_file"])
        )
        assert pq.read_metadata(with_tiles.path / row["part"]).num_rows == slide["tiles"]
        with h5py.File(slide["features_uri"], "r") as f:
            assert row["patch_size_level0"] == int(f["coords"].attrs["patch_size_level0"])
            assert row["target_mpp"] == pytest.approx(float(f["coords"].attrs["target_mpp"]))


def test_the_manifest_lists_every_tiles_file_with_size_and_hash(
    tile_graph: TileGraph, with_tiles: Exported
) -> None:
    m = with_tiles.manifest
    listed = {f["path"]: f for f in m["files"]}
    on_disk = {str(p.relative_to(with_tiles.path)) for p in with_tiles.path.rglob("*") if p.is_file()}
    assert on_disk == set(listed) | {"manifest.json"}
    tiles_files = {p for p in listed if p.startswith("tiles/")}
    assert len(tiles_files) == 2 + 2 + 1  # two HDF5 copies, two parts, the slide index
    for path in tiles_files:
        data = (with_tiles.path / path).read_bytes()
        assert (
            listed[path]["size"] == len(data) and listed[path]["sha256"] == hashlib.sha256(data).hexdigest()
        )
    assert m["options"]["tiles"] is True
    assert m["tiles"] == [
        {
            "model": MODEL,
            "dim": 1280,
            "slides": 2,
            "rows": sum(s["tiles"] for s in tile_graph.slides),
            "path": f"{_folder()}/features.parquet",
            "index": f"{_folder()}/slides.parquet",
        }
    ]
    # the pooled vectors are there as without tiles
    assert any(e["model"] == MODEL and e["rows"] == 2 for e in m["embeddings"])


def test_croissant_describes_the_tiles_and_validates(tile_graph: TileGraph, with_tiles: Exported) -> None:
    import mlcroissant as mlc

    dataset = mlc.Dataset(jsonld=with_tiles.path / "croissant.json")  # raises on validation errors
    assert not dataset.metadata.ctx.issues.errors
    rs = "tiles_efficientnet-lite0_features"
    assert {rs, "tiles_efficientnet-lite0_slides", "patients"} <= {r.id for r in dataset.metadata.record_sets}
    records = list(dataset.records(rs))
    assert len(records) == sum(s["tiles"] for s in tile_graph.slides)
    assert all(len(r[f"{rs}/features"]) == 1280 for r in records[:5])

    doc = json.loads((with_tiles.path / "croissant.json").read_text())
    hashes = {f["contentUrl"]: f["sha256"] for f in doc["distribution"] if "contentUrl" in f}
    listed = {f["path"]: f["sha256"] for f in with_tiles.manifest["files"]}
    tiles_files = {p for p in listed if p.startswith("tiles/")}
    assert tiles_files <= set(hashes) and all(hashes[p] == listed[p] for p in tiles_files)
    file_sets = [f for f in doc["distribution"] if f["@type"] == "cr:FileSet"]
    assert [f["includes"] for f in file_sets] == [f"{_folder()}/features.parquet/*.parquet"]


def test_an_export_without_tiles_has_no_tiles(
    tile_graph: TileGraph, export_tmp: Callable[[str], Path]
) -> None:
    plain = _export(tile_graph, export_tmp("plain"))
    assert not (plain.path / "tiles").exists()
    assert "tiles" not in plain.manifest and "tiles" not in plain.manifest["options"]
    assert not any(f["path"].startswith("tiles/") for f in plain.manifest["files"])


# -- feature files that are not the recorded ones ---------------------------------------------------------


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


@pytest.fixture()
def moved_feature_file(tile_graph: TileGraph) -> Iterator[Callable[[Path], None]]:
    """Point the second slide's embedding at another file for one test (its row is restored afterwards)."""
    slide = tile_graph.slides[1]

    def move(to: Path) -> None:
        tile_graph.db.execute(
            "UPDATE embedding SET features_uri = :to WHERE object_id = :o AND model_version = :v",
            to=str(to),
            o=slide["object_id"],
            v=slide["model_version"],
        )

    yield move
    move(Path(slide["features_uri"]))


def _fails(tile_graph: TileGraph, path: Path, match: str) -> FeatureFileError:
    export_id = tile_graph.db.queue(tile_graph.cohort, path, options=ExportOptions(tiles=True))
    from oncograph.export.job import run_export

    with pytest.raises(FeatureFileError, match=match) as err:
        run_export(tile_graph.db.factory, export_id)
    assert err.value.hint and "--tiles" in err.value.hint
    assert not path.exists() and _leftovers(path) == []  # nothing published, the staging area is gone
    row = tile_graph.db.export_row(export_id)
    assert row.status == "failed" and row.manifest is None and row.error == str(err.value)
    return err.value


def test_a_changed_feature_file_fails_the_export_and_publishes_nothing(
    tile_graph: TileGraph,
    export_tmp: Callable[[str], Path],
    moved_feature_file: Callable[[Path], None],
    tmp_path: Path,
) -> None:
    original = Path(tile_graph.slides[1]["features_uri"])
    changed = tmp_path / original.name
    shutil.copy(original, changed)
    with h5py.File(changed, "r+") as f:  # one feature value changed in place: a valid file of the same size
        f["features"][0, 0] = f["features"][0, 0] + 1.0
    assert changed.stat().st_size == original.stat().st_size and _sha256(changed) != _sha256(original)
    moved_feature_file(changed)
    error = _fails(tile_graph, export_tmp("changed"), "sha256")
    assert str(changed) in str(error) and tile_graph.slides[1]["features_sha256"] in str(error)


def test_a_missing_feature_file_fails_the_export_and_names_it(
    tile_graph: TileGraph,
    export_tmp: Callable[[str], Path],
    moved_feature_file: Callable[[Path], None],
    tmp_path: Path,
) -> None:
    gone = tmp_path / "deleted.h5"
    moved_feature_file(gone)
    error = _fails(tile_graph, export_tmp("missing"), "missing")
    assert str(gone) in str(error)


# -- the option at every door -----------------------------------------------------------------------------


def test_the_tiles_option_is_checked_and_recorded_only_when_asked() -> None:
    with pytest.raises(ValidationError, match="tiles"):
        ExportOptions(tiles="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="tiles"):
        ExportOptions.from_json({"tiles": "false"})
    assert ExportOptions.from_json({"tiles": True}).tiles is True
    assert ExportOptions.from_json({}).tiles is False
    assert "tiles" not in ExportOptions().to_json() and ExportOptions(tiles=True).to_json()["tiles"] is True
    assert ExportOptions(tiles=True).to_record()["tiles"] is True


def test_the_cli_and_the_api_accept_tiles() -> None:
    from pydantic import ValidationError as PydanticError
    from typer.testing import CliRunner

    from oncograph_api.routers.exports import ExportRequest
    from oncograph_cli.main import app

    assert ExportRequest.model_validate({"tiles": True}).tiles is True
    assert ExportRequest.model_validate({}).tiles is False
    with pytest.raises(PydanticError):
        ExportRequest.model_validate({"tiles": "yes"})
    shown = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "--tiles" in shown.output


# -- S3 -------------------------------------------------------------------------------------------------------


def test_tiles_export_to_s3(
    tile_graph: TileGraph, with_tiles: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On S3 the staging area is remote: rows are read from the verified source and the copies published."""
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "NO_PROXY": "127.0.0.1,localhost",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        s3.create_bucket(Bucket="tiles")
        result = tile_graph.db.export(
            tile_graph.cohort, "s3://tiles/exports/t", options=ExportOptions(tiles=True), endpoint_url=url
        )
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="tiles")
        keys = {o["Key"] for page in pages for o in page.get("Contents", [])}
        listed = {f["path"]: f for f in result.manifest["files"]}
        assert keys == {f"exports/t/{p}" for p in listed} | {"exports/t/manifest.json"}
        local = {
            f["path"]: f["sha256"] for f in with_tiles.manifest["files"] if f["path"].startswith("tiles/")
        }
        for path, sha in local.items():  # byte-identical to the local export's tiles
            body = s3.get_object(Bucket="tiles", Key=f"exports/t/{path}")["Body"].read()
            assert hashlib.sha256(body).hexdigest() == sha == listed[path]["sha256"]
        assert result.manifest["tiles"] == with_tiles.manifest["tiles"]
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()
