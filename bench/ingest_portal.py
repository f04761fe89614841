"""Benchmark: import a GDC Data Portal clinical TSV with oncograph, against a naive pandas ``to_sql`` of the
same file into the same PostgreSQL.

The file is SYNTHETIC at scale: the REAL portal export ``gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv``
(data/gdc/SOURCES.md; 60 cases, one row per case x diagnosis x treatment, 210 columns) with its row groups
repeated ``--patients / 60`` times by a seeded generator that replaces every UUID with a fresh one (uuid5 of
the seed, the copy and the original) and appends ``-SYN<n>`` to every submitter id, so the layout and values
are real while no row can be mistaken for a real patient's. Both sides read the same bytes from disk:

- oncograph: ``import_portal_files`` (format detection, mapping of every column onto the typed graph, keys,
  lineage, one release) into a migrated database;
- naive: ``pandas.read_csv(sep="\\t", dtype=str)`` then ``DataFrame.to_sql`` with pandas' defaults (one
  untyped, unkeyed table of text columns in another database; rows sent by the driver's ``executemany``).

Target (issue 12): oncograph at least as fast as the naive load (ratio naive_s / oncograph_s >= 1).

    .venv/bin/python bench/ingest_portal.py --patients 20000 [--json]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import graph_and_copy_databases, print_result

from oncograph.db.embedded import start_embedded
from oncograph.db.migrate import upgrade
from oncograph.ingest.portal_import import import_portal_files

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "data" / "gdc" / "gdc_portal_exports" / "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def synthetic_tsv(path: Path, patients: int, seed: int) -> tuple[int, int]:
    """Write the scaled SYNTHETIC TSV; returns (cases, rows)."""
    with TEMPLATE.open(newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        rows = list(reader)
    submitter_cols = [i for i, name in enumerate(header) if name.endswith("submitter_id")]
    case_col = header.index("cases.case_id")
    real_cases = list(dict.fromkeys(r[case_col] for r in rows))
    copies = max(1, -(-patients // len(real_cases)))
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"oncograph-bench-portal-{seed}")
    written = 0
    with path.open("w", newline="") as out:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for n in range(copies):
            for row in rows:
                new = [str(uuid.uuid5(namespace, f"{n}:{v}")) if _UUID.match(v) else v for v in row]
                for i in submitter_cols:
                    if new[i] and new[i] != "'--":
                        new[i] = f"{new[i]}-SYN{n}"
                writer.writerow(new)
                written += 1
    return copies * len(real_cases), written


def measure(patients: int, seed: int) -> dict[str, object]:
    """Both loads of the same SYNTHETIC file in one run; the figures."""
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="oncograph-bench-portal-") as tmp:
        tsv = Path(tmp) / "synthetic_portal_clinical.tsv"
        cases, rows = synthetic_tsv(tsv, patients, seed)
        tsv_bytes = tsv.stat().st_size
        server_url, pg = start_embedded(Path(tmp) / "pg", keep_running=False)
        try:
            graph_url, naive_url = graph_and_copy_databases(server_url)
            engine = create_engine(graph_url)
            upgrade(engine)
            factory = sessionmaker(bind=engine)
            start = time.perf_counter()
            _, counts, _ = import_portal_files(factory, [tsv])
            ours_s = time.perf_counter() - start
            with engine.connect() as conn:
                stored = int(conn.execute(text("SELECT count(*) FROM patient")).scalar_one())
            engine.dispose()

            naive = create_engine(naive_url)
            start = time.perf_counter()
            frame = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
            frame.to_sql("naive_portal", naive, index=False)
            naive_s = time.perf_counter() - start
            naive.dispose()
        finally:
            pg.cleanup()
    return {
        "cases": cases,
        "tsv_rows": rows,
        "tsv_mb": round(tsv_bytes / 1e6, 1),
        "patients_stored": stored,
        "quarantined": sum(counts.quarantined.values()),
        "oncograph_s": round(ours_s, 2),
        "oncograph_rows_per_s": round(rows / ours_s, 1),
        "naive_pandas_to_sql_s": round(naive_s, 2),
        "naive_rows_per_s": round(rows / naive_s, 1),
        "ratio_naive_over_oncograph": round(naive_s / ours_s, 3),
        "target": "ratio >= 1 (oncograph at least as fast as the naive load)",
        "met": naive_s >= ours_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    print_result(measure(args.patients, args.seed), as_json=args.json)


if __name__ == "__main__":
    main()
