"""What the ingest benchmarks share: the two databases a run compares (the graph, and a raw ``COPY`` of the
same rows), and how a result prints (one JSON object for scripts, else aligned ``key: value`` lines)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import create_engine, text


def print_result(result: Mapping[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")


def graph_and_copy_databases(server_url: str) -> tuple[str, str]:
    """Create the databases ``bench_graph`` and ``bench_copy`` on the embedded server; their URLs."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE bench_graph"))
        conn.execute(text("CREATE DATABASE bench_copy"))
    admin.dispose()
    return server_url.replace("/postgres?", "/bench_graph?"), server_url.replace("/postgres?", "/bench_copy?")
