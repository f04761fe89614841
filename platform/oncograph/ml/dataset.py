"""``OncoDataset``: one export split as a PyTorch dataset of patients (clinical features, embeddings, masks,
survival target), and ``collate`` to batch it.

Embeddings are read lazily: at construction only the ``case_id`` column of each embedding file is read
(memory-mapped) to index which rows belong to which patient; the vectors of a set are decoded on first use,
one row group at a time and only for the patients of the chosen split.

With ``tiles=<model>`` (an export made with ``--tiles``) the items are bags of tiles for multiple-instance
learning: per slide (``bag="slide"``, the default, as CLAM trains: one bag per slide with the patient's label)
or per patient (``bag="patient"``: the patient's slides concatenated). A bag's HDF5 file is read only when the
item is asked for (:mod:`oncograph.ml.tiles`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from oncograph.errors import ValidationError
from oncograph.ml.features import DEFAULT_CLINICAL, ClinicalEncoder
from oncograph.ml.reader import EmbeddingSet, ExportReader, ExportVerificationError, split_filter
from oncograph.ml.tiles import TileBags, TileSet, select_tiles

INSTALL_HINT = "pip install 'oncograph[ml]'"

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without torch
    raise ImportError(f"oncograph.ml.OncoDataset needs PyTorch: {INSTALL_HINT}") from exc

Pool = Literal["mean", "none"]
Bag = Literal["slide", "patient"]
Item = dict[str, Any]

#: Prefix of embedding sets in ``modality_names`` (so a set never collides with a modality).
EMBEDDING_MASK_PREFIX = "emb:"
#: Prefix of the tile set in ``modality_names`` (``tiles:<model>``: the patient has a bag of tiles).
TILES_MASK_PREFIX = "tiles:"


class _EmbeddingIndex:
    """Rows of one embedding set per dataset patient: patient ``i`` owns ``vectors[offsets[i]:offsets[i+1]]``."""

    def __init__(self, reader: ExportReader, spec: EmbeddingSet, case_ids: pa.Array) -> None:
        self.spec = spec
        with reader.parquet(spec.path) as pf:
            cases = pf.read(columns=["case_id"]).column("case_id")
            self.row_group_sizes = [pf.metadata.row_group(k).num_rows for k in range(pf.num_row_groups)]
            width = pf.schema_arrow.field("vector").type
        if not pa.types.is_fixed_size_list(width) or width.list_size != spec.dim:
            raise ExportVerificationError(
                f"{spec.path}: vector column is {width}, the manifest says {spec.dim} floats"
            )
        self.total_rows = len(cases)
        position = np.asarray(
            pc.fill_null(pc.index_in(cases, value_set=case_ids), -1).to_numpy(zero_copy_only=False),
            dtype=np.int64,
        )
        rows = np.flatnonzero(position >= 0)
        order = np.argsort(position[rows], kind="stable")
        #: file rows of the dataset's patients, grouped by patient (file order within a patient)
        self.rows = rows[order]
        counts = np.bincount(position[rows], minlength=len(case_ids))
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.counts = counts.astype(np.int64)
        self._vectors: npt.NDArray[np.float32] | None = None

    def vectors(self, reader: ExportReader) -> npt.NDArray[np.float32]:
        if self._vectors is None:
            out = np.empty((len(self.rows), self.spec.dim), dtype=np.float32)
            if len(self.rows):
                with reader.parquet(self.spec.path) as pf:
                    start = 0
                    for k, size in enumerate(self.row_group_sizes):
                        where = np.flatnonzero((self.rows >= start) & (self.rows < start + size))
                        if len(where):
                            col = pf.read_row_group(k, columns=["vector"]).column("vector")
                            picked = col.take(pa.array(self.rows[where] - start)).combine_chunks()
                            if picked.null_count:
                                raise ExportVerificationError(f"{self.spec.path} has null vectors")
                            flat = np.asarray(picked.flatten().to_numpy(zero_copy_only=False), np.float32)
                            out[where] = flat.reshape(len(where), self.spec.dim)
                        start += size
                # hand the decoding buffers back to the OS (Arrow's allocator keeps freed pages otherwise)
                pa.default_memory_pool().release_unused()
            self._vectors = out
        return self._vectors

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_vectors"] = None  # decoded again in the process that uses it (DataLoader workers)
        return state


class OncoDataset(Dataset[Item]):
    """Patients of one split of an export, for PyTorch.

    Args:
        path: the export folder, or an ``s3://bucket/prefix`` (any fsspec URL; see ``storage_options``).
        modalities: the ``has_<modality>`` flags that enter ``modality_mask``; ``()``: every modality column
            of ``patients.parquet``.
        split: ``"train"``, ``"val"``, ``"test"``, several of them, or ``None`` for every patient.
        clinical: ``patients.parquet`` columns to encode (see :mod:`oncograph.ml.features`).
        embeddings: embedding sets to load: names (the model, or ``modality/model`` when a model appears under
            several modalities), model names or ``modality/model``; ``None``: every set in the manifest.
        pool: ``"mean"``: one ``[dim]`` vector per patient and set, the mean over the patient's objects
            (zeros when it has none); ``"none"``: the ``[n_objects, dim]`` vectors (``n_objects`` may be 0).
        verify: check the export's schema version and the SHA-256 of every file read against the manifest
            (an HDF5 file of ``tiles`` on its first read in the process; its presence and size at once).
        storage_options: passed to fsspec for non-local paths.
        tiles: a tile set of the export (``--tiles``): the encoder's name. Items become bags of tiles.
        bag: with ``tiles``: ``"slide"``, one item per slide of the split's patients (a patient without a
            slide has no item); ``"patient"``, one item per patient, its slides' tiles concatenated in export
            order (``[0, dim]`` when it has none, and ``tiles:<model>`` of ``modality_mask`` is False).

    Each item is a dict:

    - ``case_id``: str
    - ``clinical``: float32 ``[len(feature_names)]``, NaN where missing; ``clinical_mask``: bool, value present
    - ``embeddings``: ``{name: float32 [dim]}`` (or ``[n, dim]`` with ``pool="none"``)
    - ``modality_mask``: bool ``[len(modality_names)]``: the ``has_<modality>`` flags, then for each
      embedding set ``emb:<name>``: the patient has at least one vector of it
    - ``target``: ``{"os_time_days": float32 (NaN if missing), "os_event": float32 (1 death, 0 censored,
      NaN if missing), "has_target": bool}``

    With ``tiles``, also (``n`` tiles of the bag, ``dim`` the tile set's width):

    - ``tiles``: float32 ``[n, dim]``; ``coords``: int64 ``[n, 2]``, level-0 top-left x, y of each tile
    - ``bag="slide"``: ``object_kind``, ``object_id``: str, the slide
    - ``bag="patient"``: ``object_ids``: list of str, the slides; ``tile_slide``: int64 ``[n]``, the
      position in ``object_ids`` of each tile's slide

    With ``batch_size=1`` the default DataLoader collation works as well as :func:`collate`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        modalities: Sequence[str] = (),
        split: str | Sequence[str] | None = "train",
        clinical: Sequence[str] = DEFAULT_CLINICAL,
        embeddings: Sequence[str] | None = None,
        pool: Pool = "mean",
        verify: bool = True,
        *,
        storage_options: Mapping[str, Any] | None = None,
        tiles: str | None = None,
        bag: Bag = "slide",
    ) -> None:
        if pool not in ("mean", "none"):
            raise ValueError(f"pool must be 'mean' or 'none', not {pool!r}")
        if bag not in ("slide", "patient"):
            raise ValidationError(f"unknown bag {bag!r}", hint="bag='slide' (one per slide) or bag='patient'")
        self.pool: Pool = pool
        self.bag: Bag = bag
        self.reader = ExportReader(path, storage_options=storage_options)
        self.manifest = self.reader.manifest
        splits = split_filter(self.reader, split)
        self.split = split
        specs = self.reader.select_embeddings(embeddings)
        tile_spec = select_tiles(self.reader, tiles) if tiles is not None else None
        if verify:
            self.reader.check_version()
            self.reader.verify(["patients.parquet", *(s.path for s in specs)])

        whole = self.reader.read_table("patients.parquet")
        if verify:
            self.reader.check_rows("patients.parquet", whole.num_rows)
        self.encoder = ClinicalEncoder.fit(whole, clinical)
        if splits is None:
            table = whole
        else:
            keep = pc.is_in(whole.column("split").cast(pa.string()), value_set=pa.array(sorted(splits)))
            table = whole.filter(pc.fill_null(keep, False))
        self.patients: pa.Table = table
        self.case_ids: tuple[str, ...] = tuple(str(c) for c in table.column("case_id").to_pylist())

        self._clinical, self._clinical_mask = self.encoder.transform(table)

        available = [
            n[4:] for n in table.column_names if n.startswith("has_") and not n.startswith("has_emb_")
        ]
        chosen = list(dict.fromkeys([modalities] if isinstance(modalities, str) else modalities))
        unknown = [m for m in chosen if m not in available]
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; the export has {', '.join(available)}")
        self.modalities: tuple[str, ...] = tuple(chosen or available)

        case_array = table.column("case_id").combine_chunks().cast(pa.string())
        self._embeddings = [_EmbeddingIndex(self.reader, spec, case_array) for spec in specs]
        if verify:
            for index in self._embeddings:
                self.reader.check_rows(index.spec.path, index.total_rows)
        self._tiles = (
            TileBags(self.reader, tile_spec, case_array, verify=verify) if tile_spec is not None else None
        )

        n = len(self.case_ids)
        flags = [
            np.asarray(table.column(f"has_{m}").fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
            for m in self.modalities
        ]
        flags += [index.counts > 0 for index in self._embeddings]
        if self._tiles is not None:
            flags.append(self._tiles.counts > 0)
        self._modality_mask = (
            np.stack(flags, axis=1).reshape(n, len(flags)) if flags else np.zeros((n, 0), dtype=bool)
        )

        time = np.asarray(table.column("os_time_days").cast(pa.float64()).to_numpy(), dtype=np.float64)
        event = np.asarray(table.column("os_event").cast(pa.float64()).to_numpy(), dtype=np.float64)
        self._os_time = time.astype(np.float32).reshape(n)
        self._os_event = event.astype(np.float32).reshape(n)
        self._has_target = ~np.isnan(self._os_time) & ~np.isnan(self._os_event)

    # -- layout --------------------------------------------------------------------------------------------

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the ``clinical`` vector's entries, in order (``column`` or ``column=category``)."""
        return self.encoder.feature_names

    @property
    def categories(self) -> dict[str, tuple[str, ...]]:
        """Categories of each one-hot column (every split of the export), in feature order."""
        return dict(self.encoder.categories)

    @property
    def embedding_names(self) -> tuple[str, ...]:
        return tuple(index.spec.name for index in self._embeddings)

    @property
    def embedding_dims(self) -> dict[str, int]:
        return {index.spec.name: index.spec.dim for index in self._embeddings}

    @property
    def embedding_sets(self) -> tuple[EmbeddingSet, ...]:
        return tuple(index.spec for index in self._embeddings)

    @property
    def modality_names(self) -> tuple[str, ...]:
        """Names of the ``modality_mask`` entries, in order."""
        names = self.modalities + tuple(EMBEDDING_MASK_PREFIX + n for n in self.embedding_names)
        if self._tiles is not None:
            names += (TILES_MASK_PREFIX + self._tiles.spec.model,)
        return names

    @property
    def tile_set(self) -> TileSet | None:
        """The tile set the bags come from (``tiles=``), with its ``dim``."""
        return self._tiles.spec if self._tiles is not None else None

    def load_embeddings(self) -> None:
        """Decode every selected embedding set now (otherwise each is decoded on first use)."""
        for index in self._embeddings:
            index.vectors(self.reader)

    # -- Dataset -------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        if self._tiles is not None and self.bag == "slide":
            return len(self._tiles)
        return len(self.case_ids)

    def __getitem__(self, i: int) -> Item:
        n = len(self)
        if not -n <= i < n:
            unit = "slides" if self._tiles is not None and self.bag == "slide" else "patients"
            raise IndexError(f"index {i} out of range for {n} {unit}")
        i %= n
        if self._tiles is None:
            return self._patient_item(i)
        if self.bag == "slide":
            features, coords = self._tiles.read(self.reader, i)
            item = self._patient_item(int(self._tiles.patient_of[i]))
            item["object_kind"] = self._tiles.object_kinds[i]
            item["object_id"] = self._tiles.object_ids[i]
        else:
            slides = self._tiles.slides_of(i)
            bags = [self._tiles.read(self.reader, k) for k in slides]  # one file open at a time
            item = self._patient_item(i)
            item["object_ids"] = [self._tiles.object_ids[k] for k in slides]
            dim = self._tiles.spec.dim
            features = np.concatenate([f for f, _ in bags]) if bags else np.zeros((0, dim), np.float32)
            coords = np.concatenate([c for _, c in bags]) if bags else np.zeros((0, 2), np.int64)
            item["tile_slide"] = torch.from_numpy(
                np.repeat(np.arange(len(bags), dtype=np.int64), [len(f) for f, _ in bags])
            )
        item["tiles"] = torch.from_numpy(features)
        item["coords"] = torch.from_numpy(coords)
        return item

    def _patient_item(self, i: int) -> Item:
        embeddings: dict[str, torch.Tensor] = {}
        for index in self._embeddings:
            start, stop = int(index.offsets[i]), int(index.offsets[i + 1])
            if self.pool == "none":
                part = index.vectors(self.reader)[start:stop] if stop > start else None
                embeddings[index.spec.name] = (
                    torch.from_numpy(part.copy())
                    if part is not None
                    else torch.zeros((0, index.spec.dim), dtype=torch.float32)
                )
            elif stop > start:
                pooled = index.vectors(self.reader)[start:stop].mean(axis=0, dtype=np.float64)
                embeddings[index.spec.name] = torch.from_numpy(pooled.astype(np.float32))
            else:
                embeddings[index.spec.name] = torch.zeros(index.spec.dim, dtype=torch.float32)
        return {
            "case_id": self.case_ids[i],
            "clinical": torch.from_numpy(self._clinical[i].copy()),
            "clinical_mask": torch.from_numpy(self._clinical_mask[i].copy()),
            "embeddings": embeddings,
            "modality_mask": torch.from_numpy(self._modality_mask[i].copy()),
            "target": {
                "os_time_days": torch.tensor(float(self._os_time[i]), dtype=torch.float32),
                "os_event": torch.tensor(float(self._os_event[i]), dtype=torch.float32),
                "has_target": torch.tensor(bool(self._has_target[i])),
            },
        }

    @staticmethod
    def collate(batch: Sequence[Item]) -> Item:
        """Same as the module's :func:`collate`."""
        return collate(batch)

    def __repr__(self) -> str:
        return (
            f"OncoDataset({self.reader.root!r}, split={self.split!r}, patients={len(self)}, "
            f"features={len(self.feature_names)}, embeddings={list(self.embedding_dims.items())}, "
            f"pool={self.pool!r}"
            + (
                f", tiles={self._tiles.spec.model!r}, bag={self.bag!r}, bags={len(self)})"
                if self._tiles is not None
                else ")"
            )
        )


def collate(batch: Sequence[Item]) -> Item:
    """Batch items of an :class:`OncoDataset` (``DataLoader(ds, collate_fn=collate)``).

    Tensors are stacked on a new first axis. Unpooled embeddings (``[n_i, dim]``) are padded with zeros to
    ``[batch, max n_i, dim]`` and ``embedding_mask[name]`` (bool ``[batch, max n_i]``) marks the real rows.
    ``case_id`` becomes a list of strings. Bags of tiles (``tiles``, ``coords``, ``tile_slide``) are padded
    the same way (``tile_slide`` with -1) and ``tiles_mask`` (bool ``[batch, max n_i]``) marks the real
    tiles; ``object_kind``/``object_id``/``object_ids`` become lists. MIL trains with ``batch_size=1``,
    where nothing is padded.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    first = batch[0]
    out: Item = {
        "case_id": [b["case_id"] for b in batch],
        "clinical": torch.stack([b["clinical"] for b in batch]),
        "clinical_mask": torch.stack([b["clinical_mask"] for b in batch]),
        "modality_mask": torch.stack([b["modality_mask"] for b in batch]),
        "target": {k: torch.stack([b["target"][k] for b in batch]) for k in first["target"]},
    }
    embeddings: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    for name in first["embeddings"]:
        parts: list[torch.Tensor] = [b["embeddings"][name] for b in batch]
        if parts[0].dim() == 1:
            embeddings[name] = torch.stack(parts)
            continue
        embeddings[name], masks[name] = _pad(parts, 0)
    out["embeddings"] = embeddings
    if masks:
        out["embedding_mask"] = masks
    if "tiles" in first:
        out["tiles"], out["tiles_mask"] = _pad([b["tiles"] for b in batch], 0)
        out["coords"], _ = _pad([b["coords"] for b in batch], 0)
        for key in ("object_kind", "object_id", "object_ids"):
            if key in first:
                out[key] = [b[key] for b in batch]
        if "tile_slide" in first:
            out["tile_slide"], _ = _pad([b["tile_slide"] for b in batch], -1)
    return out


def _pad(parts: Sequence[torch.Tensor], fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``parts`` (``[n_i, ...]``) stacked as ``[batch, max n_i, ...]`` padded with ``fill``, and the mask of
    real rows."""
    longest = max(p.shape[0] for p in parts)
    padded = torch.full((len(parts), longest, *parts[0].shape[1:]), fill, dtype=parts[0].dtype)
    mask = torch.zeros((len(parts), longest), dtype=torch.bool)
    for k, p in enumerate(parts):
        padded[k, : p.shape[0]] = p
        mask[k, : p.shape[0]] = True
    return padded, mask


__all__ = ["DEFAULT_CLINICAL", "EMBEDDING_MASK_PREFIX", "TILES_MASK_PREFIX", "OncoDataset", "collate"]
