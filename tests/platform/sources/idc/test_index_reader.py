"""Reading IDC's real series index with Arrow: identity of the file, groups, the binary COPY encoding."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from oncograph.sources.idc import default_index_path, open_index, pgcopy, read_series


def test_the_packaged_index_is_named_by_its_idc_version() -> None:
    index = open_index()
    revised = pq.read_table(default_index_path(), columns=["series_revised_idc_version"]).column(0)
    assert index.idc_version == pc.max(revised).as_py()
    assert index.release_label() == f"idc v{index.idc_version} (idc-index-data {index.package_version})"
    assert index.sha256 == hashlib.sha256(default_index_path().read_bytes()).hexdigest()
    pointer = index.pointer()
    assert pointer["row_count"] == pq.ParquetFile(default_index_path()).metadata.num_rows
    assert pointer["build"].startswith(index.package_version)


def test_another_file_is_named_by_its_content(tmp_path: Path) -> None:
    table = pq.read_table(default_index_path(), filters=[("collection_id", "=", "tcga_chol")])
    path = tmp_path / "chol.parquet"
    pq.write_table(table, path)
    index = open_index(path)
    assert index.package_version is None
    assert index.release_label() == f"idc v{index.idc_version} (chol.parquet sha256:{index.sha256[:16]})"


def test_groups_are_study_collection_and_patient() -> None:
    rows = read_series(open_index(), collections=["nlst"])
    raw = rows.table
    triples = set(
        zip(
            raw["StudyInstanceUID"].to_pylist(),
            raw["collection_id"].to_pylist(),
            raw["PatientID"].to_pylist(),
            strict=True,
        )
    )
    assert rows.groups.num_rows == len(triples)
    # IDC v25 has one nlst study whose series name two patients: two groups, one study
    studies = rows.groups.group_by("study_instance_uid").aggregate([("patient_id", "count_distinct")])
    assert pc.max(studies["patient_id_count_distinct"]).as_py() == 2
    assert rows.quarantined == [] and rows.rows_valid == raw.num_rows


def test_fields_encode_as_postgres_binary_copy() -> None:
    ints = pgcopy.encode_field(pa.array([1, None], pa.int32()), "int4")
    assert pgcopy.join_fields([ints]).to_pylist() == [struct.pack(">ii", 4, 1), struct.pack(">i", -1)]
    text = pgcopy.encode_field(pa.array(["é", ""], pa.large_string()), "text")
    assert pgcopy.join_fields([text]).to_pylist() == [
        struct.pack(">i", 2) + "é".encode(),
        struct.pack(">i", 0),
    ]
    days = pgcopy.encode_field(pa.array([10958], pa.date32()), "date")  # 2000-01-02
    assert pgcopy.join_fields([days]).to_pylist() == [struct.pack(">ii", 4, 1)]
    uuid = pgcopy.encode_field(pa.array(["085e85b3-3780-47f6-8538-585bcca95336"], pa.large_string()), "uuid")
    assert pgcopy.join_fields([uuid]).to_pylist() == [
        struct.pack(">i", 16) + bytes.fromhex("085e85b3378047f68538585bcca95336")
    ]
