"""Benchmark: load IDC's whole series index into the graph and compare with a raw COPY of the same rows.

The graph load is ``oncograph.ingest.idc_import.import_idc`` end to end: read the Parquet file, type and
validate the rows, binary ``COPY`` into staging, merge into ``idc_patient`` -> ``imaging_study`` ->
``imaging_series`` (typed, keyed, linked, with a source document and releases), all in one transaction,
into a fresh database of a fresh embedded PostgreSQL.

The baseline COPYs exactly the rows and columns the load reads (every row, the 27 index columns the graph
uses) into one untyped (all ``text``), unkeyed, logged table of another database on the same server, from a
stream formatted before the clock starts: CSV written by Arrow (the usual "raw COPY"), and, as a stricter
second baseline, PostgreSQL's binary format (what the load itself sends).

With ``--new-version`` it then loads a "next IDC version": the same real rows with 1% of them revised (a
changed SeriesDescription) and 0.5% removed, written to a temporary Parquet file. Every row seen again
moves ``last_seen_release_id``, so this rewrites the whole table (the cost of per-row lineage).

    .venv/bin/python bench/ingest_idc.py [--index PATH] [--new-version] [--json]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from report import graph_and_copy_databases, print_result
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from oncograph.db.embedded import start_embedded
from oncograph.db.migrate import upgrade
from oncograph.ingest.idc_import import import_idc
from oncograph.sources.idc import SERIES_FIELDS, default_index_path, open_index, pgcopy, read_series


def _raw_rows(index_path: Path | None) -> tuple[Any, list[str]]:
    """The rows the load reads, every value as text (NUL characters replaced, as the load does)."""
    rows = read_series(open_index(index_path))
    names = [f.column for f in SERIES_FIELDS if f.column in rows.table.column_names]
    columns = []
    for name in names:
        values = rows.table[name].cast(pa.large_string())
        if name in rows.nul_columns:
            values = pc.replace_substring(values, "\x00", "\ufffd")
        columns.append(values)
    return pa.table(columns, names=names), names


def _csv_chunks(table: Any) -> list[bytes]:
    out = []
    for batch in table.to_batches(max_chunksize=65_536):
        buf = io.BytesIO()
        pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
        out.append(buf.getvalue())
    return out


def _binary_chunks(table: Any) -> list[bytes]:
    out = []
    for batch in table.to_batches(max_chunksize=65_536):
        fields = [pgcopy.encode_field(batch.column(i), "text") for i in range(batch.num_columns)]
        out.append(bytes(pgcopy.tuples(batch.num_columns, [pgcopy.join_fields(fields)])))
    return out


def _next_version(index_path: Path | None, out: Path) -> tuple[Path, int, int]:
    """Real rows, 1% revised (SeriesDescription and series_revised_idc_version), 0.5% removed."""
    table = pq.read_table(index_path or default_index_path())
    n = table.num_rows
    names = table["SeriesDescription"].to_pylist()
    revised = table["series_revised_idc_version"].to_pylist()
    for i in range(0, n, 100):
        names[i] = f"{names[i] or ''} (revised)"
        revised[i] += 1
    table = table.set_column(
        table.column_names.index("SeriesDescription"), "SeriesDescription", pa.array(names, pa.large_string())
    )
    table = table.set_column(
        table.column_names.index("series_revised_idc_version"),
        "series_revised_idc_version",
        pa.array(revised, pa.int64()),
    )
    keep = pa.array([i % 200 != 1 for i in range(n)])
    pq.write_table(table.filter(keep), out)
    return out, len(range(0, n, 100)), n - pc.sum(keep).as_py()


def raw_copy_seconds(url: str, table: Any, names: list[str], fmt: str) -> float:
    """COPY the rows into a fresh untyped, unkeyed table; the stream is formatted before the clock starts."""
    chunks = _csv_chunks(table) if fmt == "csv" else _binary_chunks(table)
    engine = create_engine(url)
    name = f"raw_idc_{fmt}"
    with engine.connect() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        conn.execute(text(f"CREATE TABLE {name} ({', '.join(f'{c} text' for c in names)})"))
        conn.commit()
        conn.execute(text("CHECKPOINT"))
        conn.commit()
        driver = conn.connection.driver_connection
        assert driver is not None
        start = time.perf_counter()
        with driver.cursor() as cur, cur.copy(f"COPY {name} FROM STDIN (FORMAT {fmt})") as copy:
            if fmt == "binary":
                copy.write(pgcopy.HEADER)
            for chunk in chunks:
                copy.write(chunk)
            if fmt == "binary":
                copy.write(pgcopy.TRAILER)
        driver.commit()
        elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=None, help="index Parquet (default: idc-index-data's)")
    parser.add_argument(
        "--new-version", action="store_true", help="then load a revised copy as a new version"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="oncograph-bench-idc-") as tmp:
        server_url, pg = start_embedded(Path(tmp) / "pg", keep_running=False)
        try:
            graph_url, copy_url = graph_and_copy_databases(server_url)

            table, names = _raw_rows(args.index)
            copy_csv_s = raw_copy_seconds(copy_url, table, names, "csv")
            copy_binary_s = raw_copy_seconds(copy_url, table, names, "binary")
            rows = table.num_rows
            del table

            engine = create_engine(graph_url)
            upgrade(engine)
            with engine.connect() as conn:
                conn.execute(text("CHECKPOINT"))
                conn.commit()
            factory = sessionmaker(bind=engine)
            start = time.perf_counter()
            result = import_idc(factory, index_path=args.index)
            load_s = time.perf_counter() - start
            start = time.perf_counter()
            again = import_idc(factory, index_path=args.index)
            reload_s = time.perf_counter() - start
            newer: dict[str, Any] = {}
            if args.new_version:
                path, revised, removed = _next_version(args.index, Path(tmp) / "idc_index_next.parquet")
                start = time.perf_counter()
                next_load = import_idc(factory, index_path=path)
                newer = {
                    "new_version_s": round(time.perf_counter() - start, 2),
                    "new_version_revised_removed": [revised, removed],
                    "new_version_series": next_load.as_dict()["entities"]["imaging_series"],
                }
            with engine.connect() as conn:
                stored = {
                    t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("idc_patient", "imaging_study", "imaging_series")
                }
            engine.dispose()
        finally:
            pg.cleanup()

    out = {
        "release": result.release,
        "rows": rows,
        "stored": stored,
        "load_s": round(load_s, 2),
        "rows_per_s": round(rows / load_s),
        "raw_copy_csv_s": round(copy_csv_s, 2),
        "raw_copy_binary_s": round(copy_binary_s, 2),
        "ratio_to_raw_copy_csv": round(load_s / copy_csv_s, 2),
        "ratio_to_raw_copy_binary": round(load_s / copy_binary_s, 2),
        "target_ratio": 2.0,
        "reload_same_version_s": round(reload_s, 2),
        "reload_changes": {k: v["inserted"] + v["updated"] for k, v in again.as_dict()["entities"].items()},
        "bulk": result.bulk,
        **newer,
    }
    print_result(out, as_json=args.json)


if __name__ == "__main__":
    main()
