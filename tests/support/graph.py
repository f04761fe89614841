"""A database-independent snapshot of the graph: natural keys and values, no surrogate ids or timestamps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from oncograph.db.kinds import KINDS


def snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for kind in KINDS:
        cols = [f"t.{c}" for c in kind.spec.columns]
        joins = []
        for i, p in enumerate(kind.parents):
            joins.append(f"LEFT JOIN {p.table} p{i} ON p{i}.id = t.{p.column}")
            cols.append(f"p{i}.{p.key}")
        sql = f"SELECT {', '.join(cols)} FROM {kind.name} t {' '.join(joins)}"
        rows = [tuple(str(v) if v is not None else None for v in r) for r in conn.execute(text(sql))]
        out[kind.name] = sorted(rows, key=lambda r: tuple("" if v is None else v for v in r))
    for link, a, b in (("file_patient", "patient", "case_id"), ("file_sample", "sample", "sample_id")):
        sql = (
            f"SELECT f.file_id, o.{b} FROM {link} l JOIN data_file f ON f.id = l.file_id "
            f"JOIN {a} o ON o.id = l.{a}_id"
        )
        out[link] = sorted((str(x), str(y)) for x, y in conn.execute(text(sql)))
    return out
