"""Bags of tiles from an export's ``tiles/<model>/`` (``oncograph export --tiles``), for multiple-instance
learning (CLAM, ABMIL, TransMIL): a slide's tile features ``[n_tiles, dim]`` and level-0 coordinates.

Only the bag index (``tiles/<model>/slides.parquet``: one row per slide) is read when a dataset is made; a
slide's HDF5 file is opened when one of its bags is asked for, read and closed again, so memory holds one bag
and nothing open is carried into DataLoader worker processes. With ``verify`` the index is checked against the
manifest at once, every HDF5 file's presence and size too, and a file's SHA-256 on its first read in a process
(local files are hashed once per process, like the rest of an export).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import h5py  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from oncograph.errors import ValidationError
from oncograph.ml.reader import ExportReader, ExportVerificationError


@dataclass(frozen=True, slots=True)
class TileSet:
    """One model's ``tiles`` entry of the manifest."""

    model: str
    dim: int
    slides: int
    rows: int
    path: str
    index: str


def tile_sets(reader: ExportReader) -> list[TileSet]:
    return [
        TileSet(
            str(e["model"]), int(e["dim"]), int(e["slides"]), int(e["rows"]), str(e["path"]), str(e["index"])
        )
        for e in reader.manifest.get("tiles", [])
        if isinstance(e, dict)
    ]


def select_tiles(reader: ExportReader, model: str) -> TileSet:
    """The tile set of ``model`` (the encoder's name, or its folder name under ``tiles/``)."""
    sets = tile_sets(reader)
    for spec in sets:
        if model in (spec.model, spec.path.split("/")[1]):
            return spec
    if not sets:
        raise ValidationError(
            f"the export at {reader.root} has no tiles",
            hint="export the cohort with tiles (oncograph export --tiles, or tiles: true in the API)",
        )
    raise ValidationError(
        f"the export has no tiles of {model!r}", hint=f"choose from {', '.join(s.model for s in sets)}"
    )


class TileBags:
    """The slides of one tile set that belong to a dataset's patients, in export order.

    Slide ``k`` belongs to patient ``patient_of[k]`` (a position in ``case_ids``); patient ``i`` owns slides
    ``slides_of(i)``. :meth:`read` opens only that slide's HDF5 file.
    """

    def __init__(self, reader: ExportReader, spec: TileSet, case_ids: pa.Array, *, verify: bool) -> None:
        self.spec = spec
        self.verify = verify
        if verify:
            reader.verify([spec.index])
        table = reader.read_table(spec.index)
        if verify:
            reader.check_rows(spec.index, table.num_rows)
        position = np.asarray(
            pc.fill_null(pc.index_in(table.column("case_id"), value_set=case_ids), -1).to_numpy(
                zero_copy_only=False
            ),
            dtype=np.int64,
        )
        keep = np.flatnonzero(position >= 0)
        # stable by patient: a patient's slides stay in export order
        keep = keep[np.argsort(position[keep], kind="stable")]
        rows = table.take(pa.array(keep)).to_pydict() if len(keep) else {n: [] for n in table.column_names}
        self.patient_of: npt.NDArray[np.int64] = position[keep]
        self.object_kinds: tuple[str, ...] = tuple(str(v) for v in rows["object_kind"])
        self.object_ids: tuple[str, ...] = tuple(str(v) for v in rows["object_id"])
        self.files: tuple[str, ...] = tuple(str(v) for v in rows["features_file"])
        self.tiles: npt.NDArray[np.int64] = np.asarray(rows["tiles"], dtype=np.int64).reshape(len(keep))
        counts = np.bincount(self.patient_of, minlength=len(case_ids))
        self.counts = counts.astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if verify:
            # every HDF5 file listed and present with its size: a missing one is found now, not mid-epoch;
            # the hashes wait for each file's first read
            reader.check_sizes(self.files)
        self._hashed: set[str] = set()

    def __len__(self) -> int:
        return len(self.files)

    def slides_of(self, patient: int) -> range:
        return range(int(self.offsets[patient]), int(self.offsets[patient + 1]))

    def read(self, reader: ExportReader, slide: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Features ``[n, dim]`` float32 and coords ``[n, 2]`` int64 (level-0 x, y) of one slide."""
        relative = self.files[slide]
        if self.verify and relative not in self._hashed:
            reader.verify([relative])
            self._hashed.add(relative)
        if reader.fs is None:
            with h5py.File(reader.url(relative), "r") as f:
                features, coords = _arrays(f)
        else:
            with reader.fs.open(reader.url(relative), "rb") as fh, h5py.File(fh, "r") as f:
                features, coords = _arrays(f)
        if features.shape != (int(self.tiles[slide]), self.spec.dim) or coords.shape != (len(features), 2):
            raise ExportVerificationError(
                f"{reader.url(relative)} holds features {features.shape} and coords {coords.shape}; the slide "
                f"index records {int(self.tiles[slide])} tiles of {self.spec.dim} floats",
                hint="re-download or re-export it",
            )
        return features, coords

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_hashed"] = set()  # each DataLoader worker checks the files it reads
        return state


def _arrays(f: Any) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    return (
        np.asarray(f["features"][:], dtype=np.float32),
        np.asarray(f["coords"][:], dtype=np.int64),
    )
