"""Hugging Face ``datasets`` views of an export's tables (see :func:`load_tables`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from oncograph.ml.reader import TABLES, ExportReader, safe_name, split_filter

INSTALL_HINT = "pip install 'oncograph[ml]'"


def load_tables(
    path: str | os.PathLike[str],
    split: str | Sequence[str] | None = None,
    *,
    tables: Sequence[str] = TABLES,
    embeddings: bool = False,
    verify: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """The export's tables as a ``datasets.DatasetDict`` keyed by table name (``patients``, ``diagnoses``,
    ``treatments``, ``follow_ups``, ``exposures``, ``samples``, ``files``, ``splits``).

    ``split`` (``"train"``, ``"val"``, ``"test"``, several, or ``None`` for all) keeps the rows of that
    split's patients in every table. ``embeddings=True`` adds each embedding set as
    ``embeddings.<modality>.<model>`` (``case_id``, ``object_id``, ``vector`` ...). ``verify`` checks the schema
    version and the SHA-256 of every file read. Tables are read into memory (they are patient-sized; the
    embeddings of a large export are better read with :class:`~oncograph.ml.OncoDataset`).
    """
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is part of the ml extra
        raise ImportError(f"oncograph.ml.load_tables needs Hugging Face datasets: {INSTALL_HINT}") from exc

    reader = ExportReader(path, storage_options=storage_options)
    splits = split_filter(reader, split)
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"unknown tables {unknown}; an export has {', '.join(TABLES)}")
    files = {t: f"{t}.parquet" for t in tables}
    if embeddings:
        for s in reader.embedding_sets():
            files[f"embeddings.{safe_name(s.modality)}.{safe_name(s.model)}"] = s.path
    if splits is not None and "splits.parquet" not in files.values():
        files_read = [*files.values(), "splits.parquet"]
    else:
        files_read = list(files.values())
    if verify:
        reader.check_version()
        reader.verify(files_read)

    keep: pa.Array | None = None
    if splits is not None:
        assignment = reader.read_table("splits.parquet", ["case_id", "split"])
        chosen = pc.is_in(assignment.column("split").cast(pa.string()), value_set=pa.array(sorted(splits)))
        keep = assignment.filter(pc.fill_null(chosen, False)).column("case_id").combine_chunks()

    out = {}
    for name, relative in files.items():
        table = reader.read_table(relative)
        if verify:
            reader.check_rows(relative, table.num_rows)
        if keep is not None:
            table = table.filter(pc.fill_null(pc.is_in(table.column("case_id"), value_set=keep), False))
        out[name] = datasets.Dataset(table)
    return datasets.DatasetDict(out)


__all__ = ["load_tables"]
