"""Loaders for exported datasets (``oncograph export``): PyTorch and Hugging Face ``datasets``.

Needs the ``ml`` extra (``pip install 'oncograph[ml]'``: PyTorch and ``datasets``); importing this package
does not, each loader imports its framework when first used. Nothing here touches the database.

PyTorch::

    from torch.utils.data import DataLoader
    from oncograph.ml import OncoDataset, collate

    train = OncoDataset("exports/luad", split="train", embeddings=["toy/a"], pool="mean")
    loader = DataLoader(train, batch_size=32, shuffle=True, collate_fn=collate)
    for batch in loader:
        x = batch["clinical"]                  # [B, len(train.feature_names)], NaN where missing
        present = batch["clinical_mask"]       # [B, F] bool
        slide = batch["embeddings"]["toy/a"]   # [B, dim]: mean over the patient's slides, zeros if none
        has = batch["modality_mask"]           # [B, len(train.modality_names)] bool
        t, e = batch["target"]["os_time_days"], batch["target"]["os_event"]

Bags of tiles for multiple-instance learning (an export made with ``oncograph export --tiles``): one item
per slide (``bag="slide"``, CLAM's unit) or per patient (``bag="patient"``), each slide's HDF5 file read only
when its item is::

    bags = OncoDataset("exports/luad", split="train", tiles="efficientnet-lite0", bag="slide")
    for item in DataLoader(bags, batch_size=1, shuffle=True, collate_fn=collate):
        h = item["tiles"]                      # [1, n_tiles, dim] float32; item["coords"]: [1, n_tiles, 2]
        label = item["target"]["os_event"]     # the slide's patient's label

Hugging Face ``datasets``, one table per call (the tables have different columns, so they cannot share one
``load_dataset`` call); the split is a column::

    import datasets
    d = datasets.load_dataset("parquet", data_files={"patients": f"{path}/patients.parquet"})
    train = d["patients"].filter(lambda r: r["split"] == "train")
    diagnoses = datasets.load_dataset("parquet", data_files={"diagnoses": f"{path}/diagnoses.parquet"})

or every table at once, verified against the manifest and restricted to a split's patients::

    from oncograph.ml import load_tables
    tables = load_tables(path, split="train")   # DatasetDict: patients, diagnoses, ..., files, splits
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oncograph.ml.features import DEFAULT_CLINICAL, ClinicalEncoder
from oncograph.ml.reader import EmbeddingSet, ExportReader, ExportVerificationError

if TYPE_CHECKING:
    from oncograph.ml.dataset import OncoDataset, collate
    from oncograph.ml.hf import load_tables

_LAZY = {
    "OncoDataset": "oncograph.ml.dataset",
    "collate": "oncograph.ml.dataset",
    "load_tables": "oncograph.ml.hf",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oncograph.ml' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_CLINICAL",
    "ClinicalEncoder",
    "EmbeddingSet",
    "ExportReader",
    "ExportVerificationError",
    "OncoDataset",
    "collate",
    "load_tables",
]
