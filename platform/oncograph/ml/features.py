"""Clinical features of ``patients.parquet`` as a float32 matrix and a presence mask (numpy, no PyTorch).

- numeric columns (integers, floats) are used as they are, NaN where missing;
- boolean columns are 0.0 / 1.0, NaN where missing;
- categorical columns (dictionary or text) are one-hot over the categories present in the **whole export**
  (every split), sorted, so train, val and test share one encoding; a missing value is all zeros.

The mask is true where the value is present (for a one-hot block: on every column of the block).
Feature names are ``column`` for numeric and boolean columns and ``column=category`` for one-hot columns, in
the order of the ``clinical`` argument, then of the sorted categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

#: Baseline patient facts known at diagnosis. The survival target and what gives it away (vital_status,
#: days_to_death, os_*) are left out on purpose; pass ``clinical=`` to choose other columns.
DEFAULT_CLINICAL: tuple[str, ...] = (
    "age_at_index",
    "age_at_diagnosis_days",
    "sex",
    "race",
    "ethnicity",
    "project_id",
    "primary_site",
    "disease_type",
    "stage",
    "tumor_grade",
)

#: Columns that are identifiers or bookkeeping, never features.
NOT_FEATURES = frozenset({"case_id", "submitter_id", "split", "idc_patient_ids", "pdc_case_ids"})


@dataclass
class ClinicalEncoder:
    """The feature layout of some ``patients.parquet`` columns, fitted on the whole table."""

    columns: tuple[str, ...]
    kinds: dict[str, str] = field(default_factory=dict)  # column -> "numeric" | "categorical"
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def fit(cls, table: pa.Table, columns: Sequence[str]) -> ClinicalEncoder:
        if isinstance(columns, str):
            columns = [columns]
        enc = cls(tuple(dict.fromkeys(columns)))
        names = set(table.column_names)
        for c in enc.columns:
            if c not in names:
                raise ValueError(
                    f"patients.parquet has no column {c!r}; feature columns: "
                    + ", ".join(n for n in table.column_names if n not in NOT_FEATURES)
                )
            if c in NOT_FEATURES:
                raise ValueError(f"{c!r} is an identifier or bookkeeping column, not a feature")
            t = table.schema.field(c).type
            if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
                enc.kinds[c] = "numeric"
            elif pa.types.is_dictionary(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
                enc.kinds[c] = "categorical"
                values = pc.unique(table.column(c).cast(pa.string())).drop_null().to_pylist()
                enc.categories[c] = tuple(sorted(str(v) for v in values))
            else:
                raise ValueError(f"column {c!r} of type {t} cannot be a clinical feature")
        return enc

    @property
    def feature_names(self) -> tuple[str, ...]:
        out: list[str] = []
        for c in self.columns:
            if self.kinds[c] == "numeric":
                out.append(c)
            else:
                out += [f"{c}={v}" for v in self.categories[c]]
        return tuple(out)

    def transform(self, table: pa.Table) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """``(values [rows, features] float32, present [rows, features] bool)``."""
        n = table.num_rows
        blocks: list[npt.NDArray[np.float32]] = []
        masks: list[npt.NDArray[np.bool_]] = []
        for c in self.columns:
            col = table.column(c)
            if self.kinds[c] == "numeric":
                values = np.asarray(col.cast(pa.float64()).to_numpy(), dtype=np.float64).reshape(n)
                present = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=bool) & ~np.isnan(
                    values
                )
                blocks.append(np.where(present, values, np.nan).astype(np.float32).reshape(n, 1))
                masks.append(present.reshape(n, 1))
            else:
                cats = self.categories[c]
                idx = pc.index_in(col.cast(pa.string()), value_set=pa.array(cats, pa.string()))
                pos = np.asarray(
                    pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64
                ).reshape(n)
                onehot = np.zeros((n, len(cats)), dtype=np.float32)
                hit = pos >= 0
                onehot[np.flatnonzero(hit), pos[hit]] = 1.0
                blocks.append(onehot)
                masks.append(np.repeat(hit.reshape(n, 1), len(cats), axis=1))
        if not blocks:
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=bool)
        return np.concatenate(blocks, axis=1), np.concatenate(masks, axis=1)
