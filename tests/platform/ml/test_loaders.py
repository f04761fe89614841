"""Loaders of exported datasets (``oncograph.ml``) on a real export of the demo's sample graph.

One export per module: a private copy of the sample graph, a saved cohort (TCGA-CHOL + TCGA-LUAD: every
clinical table has rows), embeddings for some of its members, then the real export job. Expected values are
read back from the exported Parquet files with pyarrow, never through the loaders.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import sessionmaker
from support.db import clone_database, drop_database

from oncograph.access import Scope
from oncograph.cohorts import saved
from oncograph.cohorts.fields import MODALITIES
from oncograph.db.models import Principal
from oncograph.embeddings import EmbeddingRow, store_embeddings
from oncograph.export.job import ExportOptions, create_export, run_export
from oncograph.export.schema import embedding_column
from oncograph.ml import DEFAULT_CLINICAL, ExportVerificationError

torch = pytest.importorskip("torch", reason="needs the ml extra: pip install 'oncograph[ml]'")
datasets = pytest.importorskip("datasets", reason="needs the ml extra: pip install 'oncograph[ml]'")
from torch.utils.data import DataLoader  # noqa: E402

from oncograph.ml import OncoDataset, collate, load_tables  # noqa: E402

pytestmark = pytest.mark.integration

PROJECTS = ["TCGA-CHOL", "TCGA-LUAD"]
SLIDE_MODEL, SLIDE_DIM = "toy/slide-enc", 8
CT_MODEL, CT_DIM = "toy-ct", 5
_counter = itertools.count()


@dataclass(frozen=True)
class Export:
    path: Path
    manifest: dict[str, Any]
    #: model -> case_id -> vectors as inserted (float32)
    inserted: dict[str, dict[str, list[np.ndarray]]]


@pytest.fixture(scope="module")
def export(
    pg_server_url: str, sample_url: str, sample_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Export]:
    # A module-scoped private copy of the sample graph (what ``clone_sample`` makes, at module scope: one
    # export serves every test here). A template database must have no other connections while it is copied.
    sample_engine.dispose()
    name = f"oncograph_ml{os.getpid()}_{next(_counter)}_test"
    url = clone_database(pg_server_url, sample_url, name)
    assert "test" in (make_url(url).database or "")
    engine = create_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    destination = tmp_path_factory.mktemp("ml_export") / "chol_luad"
    inserted: dict[str, dict[str, list[np.ndarray]]] = {
        SLIDE_MODEL: defaultdict(list),
        CT_MODEL: defaultdict(list),
    }
    try:
        with factory() as s, s.begin():
            owner = Principal(name="ml-loader-tests", role="curator")
            s.add(owner)
            s.flush()
            info = saved.create_from_filter(
                s,
                name="ml loaders",
                filters={"op": "in", "content": {"field": "project.project_id", "value": PROJECTS}},
                owner=owner,
                scope=Scope.everything(),
            )
            members = sorted(saved.member_patient_ids(s, info.id, owner, scope=Scope.everything()))
            case_of = {
                int(pid): str(case)
                for pid, case in s.execute(
                    text("SELECT id, case_id::text FROM patient WHERE id = ANY(:ids)"), {"ids": members}
                )
            }
            # Synthetic placeholder vectors (seeded noise) until real slide/CT encoders run in the embeddings
            # issue; what matters here is their layout: two models of different dimensions, patients with
            # two objects of a model, with one, and with none at all.
            rng = np.random.default_rng(20240601)
            rows: list[EmbeddingRow] = []
            for k, pid in enumerate(members):
                if k % 3 == 0:
                    continue  # no embeddings
                for j in range(2 if k % 4 == 1 else 1):
                    v = rng.normal(size=SLIDE_DIM).astype(np.float32)
                    rows.append(
                        EmbeddingRow(pid, "slide", f"slide-{pid}-{j}", "slide", SLIDE_MODEL, "1", v.tolist())
                    )
                    inserted[SLIDE_MODEL][case_of[pid]].append(v)
                if k % 2 == 0:
                    v = rng.normal(size=CT_DIM).astype(np.float32)
                    rows.append(EmbeddingRow(pid, "series", f"series-{pid}", "ct", CT_MODEL, "1", v.tolist()))
                    inserted[CT_MODEL][case_of[pid]].append(v)
            store_embeddings(s, rows)
            queued = create_export(
                s,
                cohort_id=info.id,
                principal=owner,
                destination=str(destination),
                options=ExportOptions(),
                scope=Scope.everything(),
            )
            export_id = queued.id
        result = run_export(factory, export_id)
        yield Export(Path(result.destination), result.manifest, {m: dict(v) for m, v in inserted.items()})
    finally:
        engine.dispose()
        drop_database(pg_server_url, name)


# -- helpers: expected values straight from the Parquet files -------------------------------------------------


def _patients(export: Export) -> pa.Table:
    return pq.read_table(export.path / "patients.parquet")


def _patient_rows(export: Export) -> dict[str, dict[str, Any]]:
    return {r["case_id"]: r for r in _patients(export).to_pylist()}


def _split_counts(export: Export) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in pq.read_table(export.path / "splits.parquet").to_pylist():
        counts[r["split"]] += 1
    return dict(counts)


def _vectors(export: Export, model: str) -> dict[str, list[np.ndarray]]:
    entry = next(e for e in export.manifest["embeddings"] if e["model"] == model)
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    for r in pq.read_table(export.path / entry["path"]).to_pylist():
        out[r["case_id"]].append(np.asarray(r["vector"], dtype=np.float32))
    return out


def _expected_clinical(export: Export, columns: tuple[str, ...]) -> tuple[list[str], dict[str, list[float]]]:
    """Feature names and per-patient vectors (NaN where missing) per the documented encoding."""
    table = _patients(export)
    rows = table.to_pylist()
    names: list[str] = []
    encoders: list[tuple[str, list[Any] | None]] = []
    for c in columns:
        t = table.schema.field(c).type
        if pa.types.is_dictionary(t) or pa.types.is_string(t):
            cats = sorted({r[c] for r in rows if r[c] is not None})
            names += [f"{c}={v}" for v in cats]
            encoders.append((c, cats))
        else:
            names.append(c)
            encoders.append((c, None))
    vectors: dict[str, list[float]] = {}
    for r in rows:
        vec: list[float] = []
        for c, categories in encoders:
            if categories is None:
                vec.append(math.nan if r[c] is None else float(r[c]))
            else:
                vec += [1.0 if r[c] == v else 0.0 for v in categories]
        vectors[r["case_id"]] = vec
    return names, vectors


# -- the export this module tests ------------------------------------------------------------------------------


def test_the_export_has_what_the_tests_need(export: Export) -> None:
    sets = {(e["modality"], e["model"], e["dim"]) for e in export.manifest["embeddings"]}
    assert sets == {("slide", SLIDE_MODEL, SLIDE_DIM), ("ct", CT_MODEL, CT_DIM)}
    assert set(_split_counts(export)) == {"train", "val", "test"}
    slide = _vectors(export, SLIDE_MODEL)
    assert any(len(v) == 2 for v in slide.values()) and any(len(v) == 1 for v in slide.values())
    assert len(slide) < export.manifest["row_counts"]["patients.parquet"]  # some patients have none


# -- OncoDataset -----------------------------------------------------------------------------------------------


def test_lengths_per_split_match_splits_parquet(export: Export) -> None:
    counts = _split_counts(export)
    assert counts == export.manifest["splits"]
    seen: set[str] = set()
    assignment = {r["case_id"]: r["split"] for r in pq.read_table(export.path / "splits.parquet").to_pylist()}
    for split, n in counts.items():
        ds = OncoDataset(export.path, split=split)
        assert len(ds) == n
        assert all(assignment[c] == split for c in ds.case_ids)
        assert not seen & set(ds.case_ids)
        seen |= set(ds.case_ids)
    everyone = OncoDataset(export.path, split=None)
    assert len(everyone) == sum(counts.values()) == export.manifest["row_counts"]["patients.parquet"]
    assert set(everyone.case_ids) == seen == set(assignment)
    assert len(OncoDataset(export.path, split=["val", "test"])) == counts["val"] + counts["test"]
    with pytest.raises(ValueError, match="unknown split"):
        OncoDataset(export.path, split="training")


def test_clinical_vector_matches_patients_parquet(export: Export) -> None:
    names, expected = _expected_clinical(export, DEFAULT_CLINICAL)
    train = OncoDataset(export.path, split="train")
    test = OncoDataset(export.path, split="test")
    assert list(train.feature_names) == names == list(test.feature_names)  # one encoding for every split
    assert "age_at_index" in names and any(n.startswith("stage=") for n in names)
    rows = _patient_rows(export)
    for ds in (train, test):
        for i in range(len(ds)):
            item = ds[i]
            want = np.asarray(expected[item["case_id"]], dtype=np.float32)
            got = item["clinical"].numpy()
            assert item["clinical"].dtype == torch.float32 and got.shape == (len(names),)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)])
            mask = item["clinical_mask"].numpy()
            assert item["clinical_mask"].dtype == torch.bool
            for k, name in enumerate(names):
                column = name.split("=", 1)[0]
                assert mask[k] == (rows[item["case_id"]][column] is not None), (item["case_id"], name)
            # each one-hot block is all zeros (missing) or has exactly one 1
            for c in ("sex", "race", "stage"):
                block = [got[k] for k, n in enumerate(names) if n.startswith(f"{c}=")]
                assert sum(block) == (0.0 if rows[item["case_id"]][c] is None else 1.0)
    # missing values exist in this real cohort, so NaN and the mask are exercised
    everyone = OncoDataset(export.path, split=None)
    assert not all(bool(everyone[i]["clinical_mask"].all()) for i in range(len(everyone)))


def test_chosen_clinical_columns_booleans_and_bad_columns(export: Export) -> None:
    columns = ("age_at_index", "has_ct", "os_event", "project_id")
    names, expected = _expected_clinical(export, columns)
    ds = OncoDataset(export.path, split=None, clinical=columns, embeddings=[])
    assert (
        list(ds.feature_names)
        == names
        == ["age_at_index", "has_ct", "os_event", *[f"project_id={p}" for p in PROJECTS]]
    )
    assert ds.categories == {"project_id": tuple(PROJECTS)}
    for i in range(len(ds)):
        got, want = ds[i]["clinical"].numpy(), np.asarray(expected[ds.case_ids[i]], dtype=np.float32)
        np.testing.assert_array_equal(np.nan_to_num(got, nan=-7), np.nan_to_num(want, nan=-7))
    with pytest.raises(ValueError, match="no column 'nope'"):
        OncoDataset(export.path, clinical=["nope"])
    with pytest.raises(ValueError, match="identifier"):
        OncoDataset(export.path, clinical=["case_id"])


def test_masks_match_has_columns_and_embedding_presence(export: Export) -> None:
    ds = OncoDataset(export.path, split=None)
    modalities = [
        c[4:] for c in _patients(export).column_names if c.startswith("has_") and not c.startswith("has_emb_")
    ]
    assert modalities == list(MODALITIES)
    assert ds.embedding_names == (CT_MODEL, SLIDE_MODEL)
    assert ds.modality_names == (*MODALITIES, f"emb:{CT_MODEL}", f"emb:{SLIDE_MODEL}")
    rows = _patient_rows(export)
    present = {m: set(_vectors(export, m)) for m in (SLIDE_MODEL, CT_MODEL)}
    for i in range(len(ds)):
        item = ds[i]
        row = rows[item["case_id"]]
        mask = dict(zip(ds.modality_names, item["modality_mask"].tolist(), strict=True))
        assert item["modality_mask"].dtype == torch.bool
        for m in MODALITIES:
            assert mask[m] == row[f"has_{m}"]
        for model in (SLIDE_MODEL, CT_MODEL):
            assert mask[f"emb:{model}"] == (item["case_id"] in present[model]) == row[embedding_column(model)]
        assert row["has_embedding"] == (mask[f"emb:{SLIDE_MODEL}"] or mask[f"emb:{CT_MODEL}"])
    chosen = OncoDataset(export.path, modalities=["slide", "ct"], embeddings=[SLIDE_MODEL])
    assert chosen.modality_names == ("slide", "ct", f"emb:{SLIDE_MODEL}")
    assert chosen[0]["modality_mask"].shape == (3,)
    with pytest.raises(ValueError, match="unknown modalities"):
        OncoDataset(export.path, modalities=["xrays"])


def test_pooled_embedding_is_the_mean_of_the_patients_vectors(export: Export) -> None:
    ds = OncoDataset(export.path, split=None)
    assert ds.embedding_dims == {CT_MODEL: CT_DIM, SLIDE_MODEL: SLIDE_DIM}
    with_two = without = 0
    for model, dim in ((SLIDE_MODEL, SLIDE_DIM), (CT_MODEL, CT_DIM)):
        vectors = _vectors(export, model)
        for i in range(len(ds)):
            item = ds[i]
            got = item["embeddings"][model]
            assert got.dtype == torch.float32 and got.shape == (dim,)
            case = item["case_id"]
            if case in vectors:
                want = np.mean(np.stack(vectors[case]), axis=0)
                np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
                # and the vectors are the ones stored before the export
                inserted = np.mean(np.stack(export.inserted[model][case]), axis=0)
                np.testing.assert_allclose(got.numpy(), inserted, rtol=1e-5, atol=1e-6)
                with_two += len(vectors[case]) == 2
            else:
                assert case not in export.inserted[model]
                assert not got.any()
                assert not item["modality_mask"][ds.modality_names.index(f"emb:{model}")]
                without += 1
    assert with_two > 0 and without > 0


def test_targets_match_patients_parquet(export: Export) -> None:
    ds = OncoDataset(export.path, split=None)
    rows = _patient_rows(export)
    missing = 0
    for i in range(len(ds)):
        target = ds[i]["target"]
        row = rows[ds.case_ids[i]]
        assert bool(target["has_target"]) == (row["os_time_days"] is not None and row["os_event"] is not None)
        if row["os_time_days"] is None:
            assert math.isnan(float(target["os_time_days"]))
            assert row["os_excluded_reason"] is not None
            missing += 1
        else:
            assert float(target["os_time_days"]) == row["os_time_days"]
            assert float(target["os_event"]) == float(row["os_event"])
    assert 0 < missing < len(ds)  # the real cohort has patients without a survival target


def test_dataloader_batches_of_eight(export: Export) -> None:
    ds = OncoDataset(export.path, split="train")
    loader = DataLoader(ds, batch_size=8, shuffle=False, num_workers=0, collate_fn=collate)
    batches = list(loader)
    assert len(batches) == math.ceil(len(ds) / 8)
    assert [c for b in batches for c in b["case_id"]] == list(ds.case_ids)
    first = batches[0]
    F, M = len(ds.feature_names), len(ds.modality_names)
    assert first["clinical"].shape == (8, F) and first["clinical"].dtype == torch.float32
    assert first["clinical_mask"].shape == (8, F) and first["clinical_mask"].dtype == torch.bool
    assert first["modality_mask"].shape == (8, M)
    assert first["embeddings"][SLIDE_MODEL].shape == (8, SLIDE_DIM)
    assert first["embeddings"][CT_MODEL].shape == (8, CT_DIM)
    assert {k: v.shape for k, v in first["target"].items()} == {
        k: (8,) for k in ("os_time_days", "os_event", "has_target")
    }
    assert "embedding_mask" not in first
    last = batches[-1]
    assert last["clinical"].shape[0] == len(ds) - 8 * (len(batches) - 1)
    for k in range(8):
        item = ds[k]
        assert torch.equal(first["clinical"][k].nan_to_num(-1), item["clinical"].nan_to_num(-1))
        assert torch.equal(first["embeddings"][SLIDE_MODEL][k], item["embeddings"][SLIDE_MODEL])
        assert torch.equal(first["modality_mask"][k], item["modality_mask"])
    # the default collate of torch works too for pooled items; shuffling with a seeded generator covers all
    g = torch.Generator().manual_seed(0)
    shuffled = [c for b in DataLoader(ds, batch_size=8, shuffle=True, generator=g) for c in b["case_id"]]
    assert sorted(shuffled) == sorted(ds.case_ids)
    # picklable (DataLoader workers with the spawn start method)
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3]["embeddings"][SLIDE_MODEL], ds[3]["embeddings"][SLIDE_MODEL])


def test_unpooled_embeddings_are_padded_with_a_mask(export: Export) -> None:
    ds = OncoDataset(export.path, split=None, pool="none")
    slide = _vectors(export, SLIDE_MODEL)
    for i in range(len(ds)):
        got = ds[i]["embeddings"][SLIDE_MODEL]
        want = slide.get(ds.case_ids[i], [])
        assert got.shape == (len(want), SLIDE_DIM)
        if want:
            np.testing.assert_array_equal(got.numpy(), np.stack(want))  # file order within the patient
    saw_padding = False
    for batch in DataLoader(ds, batch_size=8, collate_fn=collate):
        emb, mask = batch["embeddings"][SLIDE_MODEL], batch["embedding_mask"][SLIDE_MODEL]
        counts = [len(slide.get(c, [])) for c in batch["case_id"]]
        assert emb.shape == (len(counts), max(counts), SLIDE_DIM) and mask.shape == (len(counts), max(counts))
        assert mask.sum(dim=1).tolist() == counts
        assert not emb[~mask].any()  # padding is zeros
        for k, c in enumerate(batch["case_id"]):
            if counts[k]:
                np.testing.assert_array_equal(emb[k, : counts[k]].numpy(), np.stack(slide[c]))
        saw_padding |= 0 < min(counts) < max(counts) or (min(counts) == 0 < max(counts))
        ct = batch["embedding_mask"][CT_MODEL]
        assert ct.shape[1] == max(1 if c in export.inserted[CT_MODEL] else 0 for c in batch["case_id"])
    assert saw_padding


def test_embedding_selection(export: Export) -> None:
    only = OncoDataset(export.path, embeddings=[f"slide/{SLIDE_MODEL}"])
    assert only.embedding_names == (SLIDE_MODEL,)
    assert set(only[0]["embeddings"]) == {SLIDE_MODEL}
    none = OncoDataset(export.path, embeddings=[])
    assert none[0]["embeddings"] == {} and none.modality_names == tuple(MODALITIES)
    with pytest.raises(ValueError, match=r"no embeddings 'nope'.*slide/toy/slide-enc"):
        OncoDataset(export.path, embeddings=["nope"])


def test_a_model_under_two_modalities_is_named_modality_slash_model(export: Export, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(export.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    ct = next(e for e in manifest["embeddings"] if e["model"] == CT_MODEL)
    manifest["embeddings"].append({**ct, "modality": "mr"})  # the same file under a second modality
    (copy / "manifest.json").write_text(json.dumps(manifest))
    ds = OncoDataset(copy, split=None, verify=False)
    assert ds.embedding_names == (f"ct/{CT_MODEL}", SLIDE_MODEL, f"mr/{CT_MODEL}")
    assert OncoDataset(copy, embeddings=[CT_MODEL], verify=False).embedding_names == (
        f"ct/{CT_MODEL}",
        f"mr/{CT_MODEL}",
    )


# -- verification ----------------------------------------------------------------------------------------------


def _flip_byte(path: Path, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_tampered_files_are_refused(export: Export, tmp_path: Path) -> None:
    copy = tmp_path / "tampered"
    shutil.copytree(export.path, copy)
    OncoDataset(copy)  # an intact copy loads

    slide_path = next(e["path"] for e in export.manifest["embeddings"] if e["model"] == SLIDE_MODEL)
    _flip_byte(copy / slide_path)
    with pytest.raises(
        ExportVerificationError, match=r"toy_slide-enc\.parquet is corrupt or was modified.*sha256"
    ):
        OncoDataset(copy)
    OncoDataset(copy, embeddings=[CT_MODEL])  # only the files read are checked

    _flip_byte(copy / "patients.parquet", at=os.path.getsize(copy / "patients.parquet") // 2)
    with pytest.raises(ExportVerificationError, match=r"patients\.parquet is corrupt") as err:
        OncoDataset(copy, embeddings=[])
    assert "verify=False" in str(err.value) and "re-download or re-export" in str(err.value)
    with pytest.raises(ExportVerificationError, match=r"patients\.parquet is corrupt"):
        load_tables(copy, tables=["patients"])

    (copy / "samples.parquet").unlink()
    with pytest.raises(ExportVerificationError, match=r"samples\.parquet is missing"):
        load_tables(copy, tables=["samples"])


def test_incompatible_schema_version_and_missing_manifest(export: Export, tmp_path: Path) -> None:
    copy = tmp_path / "future"
    shutil.copytree(export.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    minor = manifest["export_schema_version"].split(".")[0] + ".99"
    (copy / "manifest.json").write_text(json.dumps({**manifest, "export_schema_version": minor}))
    assert len(OncoDataset(copy)) == export.manifest["splits"]["train"]  # a newer minor version is compatible
    (copy / "manifest.json").write_text(json.dumps({**manifest, "export_schema_version": "99.0"}))
    with pytest.raises(ExportVerificationError, match=r"99\.0 is incompatible"):
        OncoDataset(copy)
    assert len(OncoDataset(copy, verify=False)) == export.manifest["splits"]["train"]
    (copy / "manifest.json").unlink()
    with pytest.raises(ExportVerificationError, match="not an oncograph export"):
        OncoDataset(copy)


# -- Hugging Face datasets ---------------------------------------------------------------------------------


def test_the_documented_datasets_one_liner(export: Export, tmp_path: Path) -> None:
    path = str(export.path)
    cache = str(tmp_path / "hf")
    d = datasets.load_dataset("parquet", data_files={"patients": f"{path}/patients.parquet"}, cache_dir=cache)
    patients = d["patients"]
    assert patients.num_rows == export.manifest["row_counts"]["patients.parquet"]
    counts = _split_counts(export)
    for split, n in counts.items():
        assert patients.filter(lambda r, s=split: r["split"] == s).num_rows == n
    diagnoses = datasets.load_dataset(
        "parquet", data_files={"diagnoses": f"{path}/diagnoses.parquet"}, cache_dir=cache
    )
    assert diagnoses["diagnoses"].num_rows == export.manifest["row_counts"]["diagnoses.parquet"]


def test_load_tables_row_counts_and_split_filtering(export: Export) -> None:
    counts = export.manifest["row_counts"]
    tables = load_tables(export.path)
    assert isinstance(tables, datasets.DatasetDict)
    assert set(tables) == {
        "patients",
        "diagnoses",
        "treatments",
        "follow_ups",
        "exposures",
        "samples",
        "files",
        "splits",
    }
    for name, table in tables.items():
        assert table.num_rows == counts[f"{name}.parquet"] > 0, name
    assignment = {r["case_id"]: r["split"] for r in pq.read_table(export.path / "splits.parquet").to_pylist()}
    for split, n in _split_counts(export).items():
        part = load_tables(export.path, split=split, embeddings=True)
        assert part["patients"].num_rows == part["splits"].num_rows == n
        assert set(part["patients"]["split"]) == {split}
        for name in ("diagnoses", "treatments", "follow_ups", "exposures", "samples", "files"):
            case_ids = (
                pq.read_table(export.path / f"{name}.parquet", columns=["case_id"])
                .column("case_id")
                .to_pylist()
            )
            assert part[name].num_rows == sum(assignment[c] == split for c in case_ids), (name, split)
            assert {assignment[c] for c in part[name]["case_id"]} <= {split}
        slide_key = "embeddings.slide.toy_slide_enc"
        assert {k for k in part if k.startswith("embeddings.")} == {slide_key, "embeddings.ct.toy_ct"}
        assert all(assignment[c] == split for c in part[slide_key]["case_id"])
        assert len(part[slide_key][0]["vector"]) == SLIDE_DIM
    row = load_tables(export.path, split="train", tables=["patients"])["patients"][0]
    assert isinstance(row["sex"], str | None) and isinstance(row["age_at_index"], int | None)


# -- packaging -------------------------------------------------------------------------------------------------


def test_without_torch_the_error_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import oncograph.ml as ml\n"
        "try:\n    ml.OncoDataset\nexcept ImportError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "ERR oncograph.ml.OncoDataset needs PyTorch: pip install 'oncograph[ml]'" in out.stdout


# -- S3 --------------------------------------------------------------------------------------------------------


def test_an_export_on_s3_loads_like_the_local_one(export: Export, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export copied to an S3 bucket (moto's server): same patients, features and vectors, verified."""
    from moto.server import ThreadedMotoServer

    s3fs = pytest.importorskip("s3fs")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": f"http://{host}:{port}", "region_name": "eu-west-1"},
        }
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
        fs.mkdir("oncograph-ml")
        fs.put(f"{export.path}/", "oncograph-ml/exports/chol_luad", recursive=True)
        url = "s3://oncograph-ml/exports/chol_luad"
        remote = OncoDataset(url, split="val", pool="none", storage_options=options)
        local = OncoDataset(export.path, split="val", pool="none")
        assert remote.case_ids == local.case_ids and remote.feature_names == local.feature_names
        for i in range(len(local)):
            a, b = remote[i], local[i]
            assert torch.equal(a["clinical"].nan_to_num(-1), b["clinical"].nan_to_num(-1))
            for name in local.embedding_names:
                assert torch.equal(a["embeddings"][name], b["embeddings"][name])
        tables = load_tables(url, split="val", tables=["patients", "diagnoses"], storage_options=options)
        assert tables["patients"].num_rows == export.manifest["splits"]["val"]
    finally:
        server.stop()
