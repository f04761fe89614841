"""``OncoDataset(..., tiles=<model>)``: bags of tiles for multiple-instance learning, on a real export with
``--tiles`` of the demo's sample graph.

Two real slides (``data/wsi``) are saved under one graph patient's TCGA barcode and embedded by the real
runner, so that patient has two bags and the cohort's other patients none. Expected values are read from the
exported HDF5 files with h5py and from the Parquet files with pyarrow, never through the loader.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import sessionmaker
from support.db import clone_database, drop_database

from oncograph.access import Scope
from oncograph.cohorts import saved
from oncograph.db.models import Principal
from oncograph.embeddings.compute import SerialExecutor
from oncograph.embeddings.jobs import EmbedRequest
from oncograph.embeddings.runner import embed
from oncograph.errors import ValidationError
from oncograph.export.job import ExportOptions, create_export, run_export
from oncograph.ml import ExportVerificationError
from oncograph.settings import Settings

torch = pytest.importorskip("torch", reason="needs the ml extra: pip install 'oncograph[ml]'")
from torch.utils.data import DataLoader  # noqa: E402

from oncograph.ml import OncoDataset, collate  # noqa: E402

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
WSI = REPO / "data" / "wsi"
MODEL, DIM = "efficientnet-lite0", 1280
_counter = itertools.count()


@dataclass(frozen=True)
class Export:
    path: Path
    manifest: dict[str, Any]
    case_id: str
    """The patient with two slides."""
    slides: list[dict[str, Any]]
    """Rows of tiles/<model>/slides.parquet (export order)."""


@pytest.fixture(scope="module")
def export(
    pg_server_url: str, sample_url: str, sample_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Export]:
    sample_engine.dispose()  # a template database must have no other connections while it is copied
    name = f"oncograph_mil{os.getpid()}_{next(_counter)}_test"
    url = clone_database(pg_server_url, sample_url, name)
    engine = create_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    try:
        with engine.connect() as conn:
            project, barcode, case_id = conn.execute(
                text(
                    "SELECT pr.project_id, p.submitter_id, p.case_id::text FROM patient p "
                    "JOIN project pr ON pr.id = p.project_id WHERE p.submitter_id LIKE 'TCGA-__-____' "
                    "AND p.retired_release_id IS NULL ORDER BY (SELECT count(*) FROM patient q "
                    "WHERE q.project_id = p.project_id), p.case_id LIMIT 1"
                )
            ).one()
        folder = tmp_path_factory.mktemp("mil_slides")
        # real slides saved under the patient's barcode: they attach to it (attached_by = 'barcode')
        shutil.copy(WSI / "CMU-1-Small-Region.svs", folder / f"{barcode}-01A-01-TS1.svs")
        shutil.copy(WSI / "tcga-cr-7395-01a-01-ts1.svs", folder / f"{barcode}-01A-02-TS2.svs")
        done = embed(
            factory,
            EmbedRequest("slide", paths=(str(folder),), mpp=0.25),
            Settings(home=tmp_path_factory.mktemp("mil_home")),
            SerialExecutor(threads=2),
            scope=Scope.everything("t"),
        )
        assert (done.embedded, done.unattached) == (2, 0)
        destination = tmp_path_factory.mktemp("mil_export") / "bags"
        with factory() as s, s.begin():
            owner = Principal(name="mil-tests", role="curator")
            s.add(owner)
            s.flush()
            info = saved.create_from_filter(
                s,
                name="mil",
                filters={"op": "in", "content": {"field": "project.project_id", "value": [project]}},
                owner=owner,
                scope=Scope.everything(),
            )
            export_id = create_export(
                s,
                cohort_id=info.id,
                principal=owner,
                destination=str(destination),
                options=ExportOptions(tiles=True),
                scope=Scope.everything(),
            ).id
        result = run_export(factory, export_id)
        path = Path(result.destination)
        slides = pq.read_table(path / f"tiles/{MODEL}/slides.parquet").to_pylist()
        assert [s["case_id"] for s in slides] == [case_id, case_id]
        yield Export(path, result.manifest, str(case_id), slides)
    finally:
        engine.dispose()
        drop_database(pg_server_url, name)


def _h5(export: Export, slide: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(export.path / slide["features_file"], "r") as f:
        return np.asarray(f["features"][:]), np.asarray(f["coords"][:])


def _patients(export: Export) -> dict[str, dict[str, Any]]:
    return {r["case_id"]: r for r in pq.read_table(export.path / "patients.parquet").to_pylist()}


def _copy(export: Export, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(export.path, target)
    return target


# -- bags per slide and per patient ----------------------------------------------------------------------


def test_slide_bags_are_the_slides_tiles_with_their_patients_label(export: Export) -> None:
    bags = OncoDataset(export.path, split=None, tiles=MODEL)
    assert len(bags) == 2 and bags.tile_set is not None and bags.tile_set.dim == DIM
    patient = _patients(export)[export.case_id]
    for i, slide in enumerate(export.slides):
        item = bags[i]
        features, coords = _h5(export, slide)
        assert item["tiles"].dtype == torch.float32 and item["tiles"].shape == (slide["tiles"], DIM)
        assert item["coords"].dtype == torch.int64 and item["coords"].shape == (slide["tiles"], 2)
        np.testing.assert_array_equal(item["tiles"].numpy(), features)
        np.testing.assert_array_equal(item["coords"].numpy(), coords)
        assert (item["case_id"], item["object_id"]) == (export.case_id, slide["object_id"])
        assert item["object_kind"] == slide["object_kind"]
        expected = float("nan") if patient["os_event"] is None else float(patient["os_event"])
        np.testing.assert_equal(item["target"]["os_event"].item(), expected)
        mask = dict(zip(bags.modality_names, item["modality_mask"].tolist(), strict=True))
        assert mask[f"tiles:{MODEL}"] is True and mask["slide"] is True


def test_patient_bags_concatenate_the_slides_and_mask_the_patients_without(export: Export) -> None:
    bags = OncoDataset(export.path, split=None, tiles=MODEL, bag="patient")
    assert len(bags) == len(_patients(export)) > 1
    name = f"tiles:{MODEL}"
    seen_empty = False
    for i in range(len(bags)):
        item = bags[i]
        has = dict(zip(bags.modality_names, item["modality_mask"].tolist(), strict=True))[name]
        if item["case_id"] == export.case_id:
            parts = [_h5(export, s) for s in export.slides]
            np.testing.assert_array_equal(item["tiles"].numpy(), np.concatenate([f for f, _ in parts]))
            np.testing.assert_array_equal(item["coords"].numpy(), np.concatenate([c for _, c in parts]))
            assert item["object_ids"] == [s["object_id"] for s in export.slides]
            expected = np.repeat([0, 1], [s["tiles"] for s in export.slides])
            np.testing.assert_array_equal(item["tile_slide"].numpy(), expected)
            assert has is True
        else:
            assert item["tiles"].shape == (0, DIM) and item["coords"].shape == (0, 2)
            assert item["object_ids"] == [] and item["tile_slide"].shape == (0,)
            assert has is False
            seen_empty = True
    assert seen_empty


def test_the_split_decides_which_slides_are_bags(export: Export) -> None:
    split = pq.read_table(export.path / "splits.parquet").to_pylist()
    mine = next(r["split"] for r in split if r["case_id"] == export.case_id)
    other = next(s for s in ("train", "val", "test") if s != mine)
    assert len(OncoDataset(export.path, split=mine, tiles=MODEL)) == 2
    assert len(OncoDataset(export.path, split=other, tiles=MODEL)) == 0


def test_bags_go_through_a_dataloader_with_batch_size_one(export: Export) -> None:
    bags = OncoDataset(export.path, split=None, tiles=MODEL)
    sizes = sorted(s["tiles"] for s in export.slides)
    for collate_fn in (None, collate):  # PyTorch's default collation and ours
        loader = DataLoader(bags, batch_size=1, shuffle=True, collate_fn=collate_fn)
        batches = list(loader)
        assert sorted(b["tiles"].shape[1] for b in batches) == sizes
        assert all(b["tiles"].shape[0] == 1 and b["tiles"].shape[2] == DIM for b in batches)
        assert all(b["coords"].shape[2] == 2 and b["case_id"] == [export.case_id] for b in batches)
    # more than one bag per batch: padded, and the mask says which tiles are real
    (both,) = list(DataLoader(bags, batch_size=2, collate_fn=collate))
    assert both["tiles"].shape == (2, max(sizes), DIM)
    assert both["tiles_mask"].sum(dim=1).tolist() == [s["tiles"] for s in export.slides]
    assert both["object_id"] == [s["object_id"] for s in export.slides]


# -- lazy: one file per item, read when asked ------------------------------------------------------------


def test_a_bag_reads_only_its_own_file(export: Export, tmp_path: Path) -> None:
    copy = _copy(export, tmp_path)
    bags = OncoDataset(copy, split=None, tiles=MODEL)  # checks presence and sizes now
    (copy / export.slides[1]["features_file"]).unlink()  # another slide's file, after construction
    item = bags[0]
    assert item["tiles"].shape == (export.slides[0]["tiles"], DIM)
    with pytest.raises(ExportVerificationError, match="missing"):
        bags[1]
    # nothing is read before an item is asked for: without verification a dataset over no HDF5 file at all
    # is made, and only its items fail
    for slide in export.slides:
        (copy / slide["features_file"]).unlink(missing_ok=True)
    unread = OncoDataset(copy, split=None, tiles=MODEL, bag="patient", verify=False)
    assert len(unread) > 1
    with pytest.raises(OSError):
        unread[unread.case_ids.index(export.case_id)]


def test_a_missing_feature_file_is_found_when_the_dataset_is_made(export: Export, tmp_path: Path) -> None:
    copy = _copy(export, tmp_path)
    (copy / export.slides[0]["features_file"]).unlink()
    with pytest.raises(ExportVerificationError, match="missing"):
        OncoDataset(copy, split=None, tiles=MODEL)


def test_a_changed_feature_file_is_refused_on_its_first_read(export: Export, tmp_path: Path) -> None:
    copy = _copy(export, tmp_path)
    with h5py.File(copy / export.slides[1]["features_file"], "r+") as f:  # same size, other values
        f["features"][0, 0] = f["features"][0, 0] + 1.0
    bags = OncoDataset(copy, split=None, tiles=MODEL)
    assert bags[0]["tiles"].shape[0] == export.slides[0]["tiles"]
    with pytest.raises(ExportVerificationError, match="sha256"):
        bags[1]
    assert OncoDataset(copy, split=None, tiles=MODEL, verify=False)[1]["tiles"].shape[1] == DIM


def test_bags_pickle_for_dataloader_workers(export: Export) -> None:
    bags = OncoDataset(export.path, split=None, tiles=MODEL, bag="patient")
    again = pickle.loads(pickle.dumps(bags))
    i = bags.case_ids.index(export.case_id)
    np.testing.assert_array_equal(again[i]["tiles"].numpy(), bags[i]["tiles"].numpy())


# -- asking for what is not there ------------------------------------------------------------------------


def test_unknown_tiles_and_bags_are_clear_errors(export: Export, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        OncoDataset(export.path, split=None, tiles="no-such-encoder")
    assert MODEL in err.value.hint
    with pytest.raises(ValidationError, match="bag"):
        OncoDataset(export.path, split=None, tiles=MODEL, bag="tile")  # type: ignore[arg-type]
    copy = _copy(export, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["tiles"]  # what an export without --tiles records
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValidationError) as err:
        OncoDataset(copy, split=None, tiles=MODEL)
    assert "--tiles" in err.value.hint
    # without tiles= the export is the usual patient dataset
    plain = OncoDataset(export.path, split=None)
    assert len(plain) == len(_patients(export)) and "tiles" not in plain[0]
