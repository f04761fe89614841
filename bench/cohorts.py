"""Benchmark: the cohort engine at scale (facet counts, cohort creation, /facets under concurrent clients).

1. Builds the REAL sample graph (tests/support/sample_graph.py: the bundled GDC documents harvested through
   the real client, the demo's portal files, IDC series of the demo's TCGA collections, the recorded PDC
   studies, identity links) in a fresh embedded PostgreSQL, then SCALES it to ``--patients`` with the seeded
   generator of bench/scale_graph.py: SYNTHETIC patients that are clones of real ones (new keys, ``-SYN<n>``
   submitter ids, the real values), with ~``--files-per-patient`` cloned real file rows each. VACUUM ANALYZE
   after.
2. In process (``oncograph.cohorts.query.facets`` under ``Scope.everything()``): p50/p95/max latency of the
   facets of a realistic set of fields for a set of realistic filters, after one warm-up call, ``--repeat``
   times each (fewer, but at least 3, once ``--budget-s`` of timed calls is spent), plus a per-field
   breakdown; and of cohort creation (``oncograph.cohorts.saved.create_from_filter`` when present, timed up
   to its COMMIT and rolled back; otherwise ``member_ids`` + inserting them into a temp table).
3. Over HTTP, when ``oncograph_api`` has an app factory (``oncograph_api.app.create_app``): requests/s and
   latency of ``POST /facets`` (the same filters and fields, round robin) under ``--clients`` concurrent
   clients (httpx, async) for a fixed ``--http-seconds`` window, against uvicorn in a subprocess, as an admin
   principal with an API key (an API scope, not the unrestricted one). Otherwise it says why it was skipped.

Target: facets p95 <= 100 ms at 100k patients (met when every filter's p95 is).

    .venv/bin/python bench/cohorts.py --patients 100000 [--repeat 20] [--json] [--keep | --db-dir DIR]

``--db-dir DIR`` keeps the cluster there and reuses a graph built there with the same parameters.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from scale_graph import scale
from support.sample_graph import build_sample_graph

from oncograph.access import Scope
from oncograph.cohorts import index
from oncograph.cohorts.query import DEFAULT_FACETS, facets, member_ids
from oncograph.db.embedded import start_embedded
from oncograph.db.migrate import upgrade

REPO = Path(__file__).resolve().parents[1]
DATABASE = "bench_cohorts"
TARGET_P95_MS = 100.0

FACET_FIELDS = list(DEFAULT_FACETS)


def _leaf(op: str, field: str, value: Any) -> dict[str, Any]:
    return {"op": op, "content": {"field": field, "value": value}}


FILTERS: dict[str, Any] = {
    "all patients": None,
    "project in [TCGA-BRCA]": _leaf("in", "project.project_id", ["TCGA-BRCA"]),
    "Dead and age_at_diagnosis >= 20000": {
        "op": "and",
        "content": [
            _leaf("=", "demographic.vital_status", "Dead"),
            _leaf(">=", "diagnoses.age_at_diagnosis", 20000),
        ],
    },
    "modalities slide and idc.modality MR": {
        "op": "and",
        "content": [_leaf("=", "modalities", "slide"), _leaf("=", "idc.modality", "MR")],
    },
    "exclude classification metastasis/recurrence": _leaf(
        "exclude", "diagnoses.classification_of_tumor", ["metastasis", "recurrence"]
    ),
    "primary_diagnosis *carcinoma, NOS": _leaf("in", "diagnoses.primary_diagnosis", ["*carcinoma, NOS"]),
}


# -- building the graph --------------------------------------------------------------------------------------


def _meta(engine: Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('bench_meta')")).scalar_one() is None:
            return None
        return dict(conn.execute(text("SELECT meta FROM bench_meta")).scalar_one())


def build(
    server_url: str, args: argparse.Namespace, log: Callable[[str], None]
) -> tuple[Engine, dict[str, Any]]:
    """The scaled graph in database ``bench_cohorts`` (reused when ``--db-dir`` holds one with the same
    parameters)."""
    params = {"patients": args.patients, "files_per_patient": args.files_per_patient, "seed": args.seed}
    url = server_url.replace("/postgres?", f"/{DATABASE}?")
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}).first()
    if exists:
        engine = create_engine(url)
        meta = _meta(engine)
        if meta and meta.get("params") == params:
            log(f"reusing the scaled graph in {DATABASE} ({params})")
            admin.dispose()
            return engine, meta
        engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()
    engine = create_engine(url, pool_size=4)
    start = time.perf_counter()
    upgrade(engine)
    build_sample_graph(url, REPO / "data")
    sample_s = time.perf_counter() - start
    log(f"real sample graph built in {sample_s:.1f} s")
    log(
        f"scaling to {args.patients:,} patients with SYNTHETIC clones of real patients "
        f"(bench/scale_graph.py, seed {args.seed}, ~{args.files_per_patient} cloned real files per patient)"
    )
    report = scale(engine, patients=args.patients, files_per_patient=args.files_per_patient, seed=args.seed)
    with engine.begin() as conn:
        counts = {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("patient", "data_file", "file_patient", "diagnosis", "identity_link", "imaging_series")
        }
        size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar_one()
        meta = {
            "params": params,
            "sample_graph_s": round(sample_s, 1),
            "scale": report.to_json(),
            "scale_s": round(
                report.seconds.get("insert_total", 0.0) + report.seconds.get("vacuum_analyze", 0.0), 1
            ),
            "rows": counts,
            "database_size": size,
        }
        conn.execute(text("CREATE TABLE bench_meta (meta jsonb)"))
        conn.execute(text("INSERT INTO bench_meta VALUES (CAST(:m AS jsonb))"), {"m": json.dumps(meta)})
    log(f"scaled in {meta['scale_s']} s: {counts} ({size})")
    return engine, meta


# -- in-process measurements ---------------------------------------------------------------------------------


def _stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)

    def pct(p: float) -> float:
        # nearest-rank percentile
        k = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
        return ordered[k]

    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(pct(95), 1),
        "max_ms": round(ordered[-1], 1),
    }


def _timed(
    fn: Callable[[], Any], repeat: int, *, warm: int = 1, budget_s: float = 0.0, min_runs: int = 3
) -> tuple[list[float], Any]:
    """``warm`` untimed calls, then up to ``repeat`` timed ones (ms); with ``budget_s``, stop once the timed
    runs took longer than it and at least ``min_runs`` ran (a slow engine must not make the bench endless)."""
    result = None
    for _ in range(warm):
        result = fn()
    out: list[float] = []
    spent = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        out.append(elapsed * 1000)
        spent += elapsed
        if budget_s and spent > budget_s and len(out) >= min(min_runs, repeat):
            break
    return out, result


def measure_facets(engine: Engine, scope: Scope, repeat: int, budget_s: float, mode: str) -> dict[str, Any]:
    """Facet latency per filter. ``mode``: ``computed`` (the cohort index, every answer computed: the figure
    the target is about), ``cached`` (the index's answer cache: a repeated request), ``sql`` (the SQL engine,
    as before the index)."""
    rows: dict[str, Any] = {}
    guard = {"computed": index.answers_uncached, "cached": nullcontext, "sql": index.disabled}[mode]
    with engine.connect() as conn, guard():
        for label, flt in FILTERS.items():

            def run(flt: Any = flt, conn: Connection = conn) -> int:
                total, _ = facets(conn, flt, FACET_FIELDS, scope)
                conn.rollback()
                return total

            ms, total = _timed(run, repeat, budget_s=budget_s)
            rows[label] = {"patients": total, **_stats(ms)}
    return rows


def measure_cold(engine: Engine, scope: Scope, trials: int) -> dict[str, Any]:
    """The first facets read after a commit that changed the graph (an ingest, here an empty UPDATE of
    ``patient``: any committed statement on a graph table moves the graph version), which rebuilds the
    index's columns from PostgreSQL; and the first cohort creation after it, which also loads the releases."""
    from oncograph.access import ensure_local_principal
    from oncograph.cohorts.saved import create_from_filter

    facets_ms: list[float] = []
    creation_ms: list[float] = []
    for _ in range(trials):
        with engine.begin() as conn:
            conn.execute(text("UPDATE patient SET state = state WHERE false"))
        with engine.connect() as conn:
            start = time.perf_counter()
            facets(conn, None, FACET_FIELDS, scope)
            facets_ms.append((time.perf_counter() - start) * 1000)
            conn.rollback()
        with engine.begin() as conn:
            conn.execute(text("UPDATE patient SET state = state WHERE false"))
        with Session(engine) as session:
            owner = ensure_local_principal(session)
            session.commit()
            start = time.perf_counter()
            create_from_filter(session, name="bench", filters=None, owner=owner, scope=scope)
            session.flush()
            creation_ms.append((time.perf_counter() - start) * 1000)
            session.rollback()
    return {"facets_after_commit": _stats(facets_ms), "creation_after_commit": _stats(creation_ms)}


def measure_breakdown(engine: Engine, scope: Scope, repeat: int) -> dict[str, dict[str, float]]:
    """Median ms of ``facets`` with one field at a time (the cohort count included in each)."""
    out: dict[str, dict[str, float]] = {}
    with engine.connect() as conn, index.answers_uncached():
        for label, flt in FILTERS.items():
            per: dict[str, float] = {}

            def only_count(flt: Any = flt, conn: Connection = conn) -> None:
                facets(conn, flt, [], scope)
                conn.rollback()

            per["(cohort count)"] = round(statistics.median(_timed(only_count, repeat, warm=0)[0]), 1)
            for name in FACET_FIELDS:

                def one(flt: Any = flt, name: str = name, conn: Connection = conn) -> None:
                    facets(conn, flt, [name], scope)
                    conn.rollback()

                per[name] = round(statistics.median(_timed(one, repeat, warm=0)[0]), 1)
            out[label] = per
    return out


def _saved_creator() -> tuple[Callable[..., Any] | None, str]:
    try:
        saved = importlib.import_module("oncograph.cohorts.saved")
    except ImportError as exc:
        return None, f"oncograph.cohorts.saved is not importable ({exc})"
    fn = getattr(saved, "create_from_filter", None)
    if not callable(fn):
        return None, "oncograph.cohorts.saved has no create_from_filter"
    wanted = {"session", "name", "filters", "owner", "scope"}
    params = set(inspect.signature(fn).parameters)
    if not wanted <= params:
        return None, f"create_from_filter takes {sorted(params)}, expected {sorted(wanted)}"
    how = (
        "oncograph.cohorts.saved.create_from_filter (cohort + frozen version + members + hash), "
        "timed up to COMMIT, then rolled back"
    )
    return fn, how


def measure_creation(
    engine: Engine, scope: Scope, repeat: int, budget_s: float
) -> tuple[str, dict[str, Any]]:
    create, how = _saved_creator()
    rows: dict[str, Any] = {}
    if create is not None:
        from oncograph.access import ensure_local_principal

        with Session(engine, expire_on_commit=False) as session:
            owner = ensure_local_principal(session)
            session.commit()
            try:
                for label, flt in FILTERS.items():

                    def run(flt: Any = flt) -> int:
                        info = create(session=session, name="bench", filters=flt, owner=owner, scope=scope)
                        session.rollback()
                        return int(
                            getattr(info, "size", 0) or getattr(getattr(info, "latest", None), "size", 0)
                        )

                    ms, size = _timed(run, repeat, budget_s=budget_s)
                    rows[label] = {"members": size, **_stats(ms)}
                return how, rows
            except Exception as exc:  # the saved-cohort API changed under us: fall back, say why
                session.rollback()
                how = f"create_from_filter failed ({type(exc).__name__}: {exc}); fell back"
                rows = {}
    how = (how + "; " if create is None else how + ": ") + "timed member_ids + INSERT into a temp table"
    with engine.connect() as conn:
        for label, flt in FILTERS.items():

            def fallback(flt: Any = flt, conn: Connection = conn) -> int:
                ids = member_ids(conn, flt, scope)
                conn.execute(text("CREATE TEMP TABLE bench_members (patient_id bigint) ON COMMIT DROP"))
                conn.execute(
                    text("INSERT INTO bench_members SELECT unnest(CAST(:ids AS bigint[]))"), {"ids": ids}
                )
                conn.rollback()
                return len(ids)

            ms, size = _timed(fallback, repeat, budget_s=budget_s)
            rows[label] = {"members": size, **_stats(ms)}
    return how, rows


# -- HTTP ----------------------------------------------------------------------------------------------------

_FACTORIES = (
    ("oncograph_api.app", "create_app"),
    ("oncograph_api.main", "create_app"),
    ("oncograph_api", "create_app"),
    ("oncograph_api.app", "app_factory"),
)

_SERVER = """
import importlib, sys, uvicorn
module, attr, port, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
options = dict(host="127.0.0.1", port=port, log_level="warning", access_log=False)
if workers == 1:
    uvicorn.run(getattr(importlib.import_module(module), attr)(), **options)
else:  # as `oncograph serve --workers N`: N processes on one port, each with its own index
    from uvicorn.supervisors import Multiprocess
    from oncograph_cli.commands.serve import listening_socket
    config = uvicorn.Config(f"{module}:{attr}", factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[listening_socket("127.0.0.1", port)]).run()
"""


def _find_factory() -> tuple[tuple[str, str] | None, str]:
    problems = []
    for module, attr in _FACTORIES:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            problems.append(f"{module}: {exc}")
            continue
        fn = getattr(mod, attr, None)
        if callable(fn):
            required = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            ]
            if required:
                problems.append(f"{module}.{attr} needs arguments {[p.name for p in required]}")
                continue
            return (module, attr), f"{module}.{attr}()"
        problems.append(f"{module} has no {attr}")
    return None, "no app factory in oncograph_api (" + "; ".join(problems) + ")"


def _facets_path(module: str, attr: str) -> str | None:
    """The POST path ending in ``/facets`` of the app's OpenAPI document."""
    app = getattr(importlib.import_module(module), attr)()
    for path, ops in app.openapi().get("paths", {}).items():
        if path.rstrip("/").endswith("/facets") and "post" in ops:
            return str(path)
    return None


def _api_key(engine: Engine) -> str | None:
    try:
        from oncograph.access import add_principal, issue_key
    except ImportError:
        return None
    with Session(engine) as session:
        try:
            add_principal(session, "bench", "admin")
        except Exception:  # already there (a reused --db-dir)
            session.rollback()
        key = issue_key(session, "bench").key
        session.commit()
    return key


@contextmanager
def _server(
    module: str,
    attr: str,
    url: str,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
) -> Iterator[str]:
    """uvicorn serving the app in a subprocess (its own GIL), its log in ``log_path``; yields the base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ONCOGRAPH_DATABASE_URL": url, **(extra_env or {})}
    log_file = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, module, attr, str(port), str(workers)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API server exited: {_tail(log_path)}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the API server did not listen within 60 s") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _bodies() -> list[dict[str, Any]]:
    return [{"filters": flt or {}, "facets": FACET_FIELDS} for flt in FILTERS.values()]


async def _load(
    base: str, path: str, headers: dict[str, str], clients: int, seconds: float
) -> dict[str, Any]:
    import httpx

    bodies = _bodies()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    samples: dict[str, str] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=seconds + 60
    ) as client:

        async def worker(n: int, stop: float) -> None:
            i = n
            while time.perf_counter() < stop:
                body = bodies[i % len(bodies)]
                i += 1
                start = time.perf_counter()
                try:
                    r = await client.post(path, json=body)
                    ok, key, detail = r.status_code == 200, str(r.status_code), r.text[:300]
                except httpx.HTTPError as exc:
                    ok, key, detail = False, type(exc).__name__, str(exc)[:300]
                if ok:
                    latencies.append((time.perf_counter() - start) * 1000)
                else:
                    errors[key] = errors.get(key, 0) + 1
                    samples.setdefault(key, detail)

        start = time.perf_counter()
        tasks = [asyncio.create_task(worker(n, start + seconds)) for n in range(clients)]
        # a fixed window: requests still running at its end are cancelled and counted apart
        _, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = time.perf_counter() - start
    out: dict[str, Any] = {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests_ok": len(latencies),
        "errors": errors,
        "error_samples": samples,
        "unfinished_at_end": len(pending),
        "requests_per_s": round(len(latencies) / elapsed, 2),
    }
    if latencies:
        out.update(_stats(latencies))
    return out


def measure_http(
    engine: Engine, url: str, runs: list[tuple[int, bool]], seconds: float, workers: int = 1
) -> dict[str, Any]:
    """``POST /facets`` against uvicorn (``workers`` processes), one server per answer-cache setting; ``runs``:
    (clients, cache)."""
    found, how = _find_factory()
    if found is None:
        return {"skipped": how}
    module, attr = found
    try:
        os.environ["ONCOGRAPH_DATABASE_URL"] = url
        path = _facets_path(module, attr)
    except Exception as exc:
        return {"skipped": f"{how} failed: {type(exc).__name__}: {exc}"}
    if path is None:
        return {"skipped": f"the app of {how} has no POST .../facets route"}
    key = _api_key(engine)
    headers = {"X-API-Key": key} if key else {}
    import httpx

    out: dict[str, Any] = {"app": how, "path": path, "server_workers": workers, "runs": []}
    for cache in sorted({c for _, c in runs}):
        env = {"ONCOGRAPH_COHORT_ANSWER_CACHE": "true" if cache else "false"}
        with tempfile.TemporaryDirectory(prefix="oncograph-bench-api-") as tmp:
            log_path = Path(tmp) / "server.log"
            with _server(module, attr, url, log_path, env, workers) as base:
                # warm-up requests per body, as in process: each server process's index loads each field on first
                # use; each request on a new connection, which any of the processes may accept
                for body in _bodies() * (1 if workers == 1 else 4 * workers):
                    probe = httpx.post(base + path, json=body, headers=headers, timeout=600)
                    if probe.status_code != 200:
                        return {
                            "skipped": f"probe POST {path} answered {probe.status_code}: {probe.text[:300]}"
                        }
                for clients, _ in [r for r in runs if r[1] == cache]:
                    result = asyncio.run(_load(base, path, headers, clients, seconds))
                    result["answer_cache"] = cache
                    if result["errors"]:
                        result["server_log_tail"] = _tail(log_path)
                    out["runs"].append(result)
    return out


def _targets(
    patients: int, facet_rows: dict[str, Any], creation: dict[str, Any], http: dict[str, Any]
) -> list[dict[str, Any]]:
    """Issue 12's targets, each with what was measured."""
    facets_limit = TARGET_P95_MS if patients < 1_000_000 else 1000.0
    out = []
    if facet_rows:
        worst = max(facet_rows.items(), key=lambda kv: kv[1]["p95_ms"])
        out.append(
            {
                "target": f"facets p95 <= {facets_limit:.0f} ms in process (answers computed)",
                "measured": f"worst p95 {worst[1]['p95_ms']} ms ({worst[0]})",
                "met": worst[1]["p95_ms"] <= facets_limit,
            }
        )
    if creation:
        slowest = max(creation.items(), key=lambda kv: kv[1]["p50_ms"])
        out.append(
            {
                "target": "cohort creation p50 <= 500 ms",
                "measured": f"worst p50 {slowest[1]['p50_ms']} ms ({slowest[0]}, {slowest[1]['members']:,} members)",
                "met": slowest[1]["p50_ms"] <= 500,
            }
        )
    for run in http.get("runs", []):
        if run["answer_cache"]:
            continue
        if run["clients"] == 1:
            out.append(
                {
                    "target": "facets p95 <= 150 ms over HTTP (1 client, answers computed)",
                    "measured": f"p95 {run.get('p95_ms')} ms",
                    "met": bool(run.get("p95_ms") is not None and run["p95_ms"] <= 150 and not run["errors"]),
                }
            )
        else:
            out.append(
                {
                    "target": f"/facets under {run['clients']} clients >= 50 req/s, 0 errors, p95 <= 1 s "
                    "(answers computed)",
                    "measured": f"{run['requests_per_s']} req/s, errors {run['errors']}, p95 {run.get('p95_ms')} ms "
                    f"({http.get('server_workers', 1)} server process(es))",
                    "met": bool(
                        run["requests_per_s"] >= 50
                        and not run["errors"]
                        and run.get("p95_ms") is not None
                        and run["p95_ms"] <= 1000
                    ),
                }
            )
    return out


# -- output --------------------------------------------------------------------------------------------------


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    meta = result["graph"]
    console.print(
        f"[bold]graph[/]: {meta['rows']['patient']:,} patients "
        f"({meta['scale']['synthetic_patients']:,} SYNTHETIC "
        f"clones of {meta['scale']['real_patients']:,} real ones, seed {meta['scale']['seed']}), "
        f"{meta['rows']['data_file']:,} files, {meta['rows']['imaging_series']:,} IDC series, "
        f"{meta['database_size']}; real sample graph {meta['sample_graph_s']} s, scaling {meta['scale_s']} s"
    )
    for title, key, count in (
        (
            f"facets ({len(FACET_FIELDS)} fields), in process, cohort index, answers computed",
            "facets",
            "patients",
        ),
        ("the same, answer cache (a repeated request)", "facets_cached", "patients"),
        ("the same, SQL engine (the index off)", "facets_sql", "patients"),
        ("cohort creation, in process (index warm)", "creation", "members"),
    ):
        if not result.get(key):
            continue
        table = Table(title=title)
        for col in ("filter", count, "p50 ms", "p95 ms", "max ms", "n"):
            table.add_column(col, justify="left" if col == "filter" else "right")
        for label, row in result[key].items():
            table.add_row(
                label,
                f"{row[count]:,}",
                f"{row['p50_ms']}",
                f"{row['p95_ms']}",
                f"{row['max_ms']}",
                f"{row['n']}",
            )
        console.print(table)
    cold = result["after_commit"]
    if cold:
        console.print(
            "first read after a commit that moved the graph version (index rebuild): facets p50 "
            f"{cold['facets_after_commit']['p50_ms']} ms, max {cold['facets_after_commit']['max_ms']} ms; "
            f"cohort creation (all patients) p50 {cold['creation_after_commit']['p50_ms']} ms, "
            f"max {cold['creation_after_commit']['max_ms']} ms"
        )
    console.print(f"cohort creation: {result['creation_method']}")
    if result.get("breakdown"):
        table = Table(title="facets breakdown: median ms of facets() with one field (cohort count included)")
        table.add_column("field")
        labels = list(result["breakdown"])
        for i in range(len(labels)):
            table.add_column(f"F{i + 1}", justify="right")
        for name in ["(cohort count)", *FACET_FIELDS]:
            table.add_row(name, *[f"{result['breakdown'][lab][name]}" for lab in labels])
        console.print(table)
        console.print("  " + "; ".join(f"F{i + 1} = {lab}" for i, lab in enumerate(labels)))
    http = result["http"]
    if "skipped" in http:
        console.print(f"[yellow]HTTP /facets: skipped[/]: {http['skipped']}")
    for run in http.get("runs", []):
        console.print(
            f"HTTP {http['path']} ({http.get('server_workers', 1)} server process(es)): {run['clients']} client(s), "
            f"answer cache {'on' if run['answer_cache'] else 'off'}, "
            f"{run['seconds']} s: [bold]{run['requests_per_s']} requests/s[/], {run['requests_ok']:,} ok, "
            f"errors {run['errors']}, {run['unfinished_at_end']} unfinished at the end, "
            f"p50 {run.get('p50_ms')} ms, p95 {run.get('p95_ms')} ms"
        )
    console.print(
        f"machine: {result['machine']['cpus']} CPUs, "
        f"load average at the end {result['machine']['loadavg_at_end']}"
    )
    for target in result["targets"]:
        colour = "green" if target["met"] else "red"
        console.print(
            f"[bold {colour}]{target['target']}: {'met' if target['met'] else 'MISSED'}[/] ({target['measured']})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--files-per-patient", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per filter (after 1 warm-up run)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=60.0,
        help="stop repeating a filter after this many seconds of timed runs (3 runs at least; 0: no limit)",
    )
    parser.add_argument(
        "--breakdown-repeat", type=int, default=1, help="runs per field of the breakdown (0: none)"
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--http-seconds", type=float, default=15.0, help="length of each HTTP run")
    parser.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="API processes serving the HTTP runs (as `oncograph serve --workers N`)",
    )
    parser.add_argument(
        "--sql-repeat", type=int, default=3, help="runs per filter through the SQL engine (0: skip)"
    )
    parser.add_argument("--cold-trials", type=int, default=3, help="first reads after a commit to time")
    parser.add_argument("--http-only", action="store_true", help="measure only POST /facets over HTTP")
    parser.add_argument("--keep", action="store_true", help="keep the database directory (printed)")
    parser.add_argument(
        "--db-dir", type=Path, help="cluster directory to use and keep; reuses a graph built there"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    keep = args.keep or args.db_dir is not None
    root = args.db_dir or Path(tempfile.mkdtemp(prefix="oncograph-bench-cohorts-"))
    server_url, pg = start_embedded(root / "pg", keep_running=False)
    try:
        engine, meta = build(server_url, args, log)
        scope = Scope.everything()
        log(
            f"timing facets: {len(FILTERS)} filters x up to {args.repeat} runs "
            f"(at least 3, within ~{args.budget_s:.0f} s per filter)"
        )
        facet_rows: dict[str, Any] = {}
        cached_rows: dict[str, Any] = {}
        sql_rows: dict[str, Any] = {}
        cold: dict[str, Any] = {}
        breakdown: dict[str, Any] = {}
        how, creation = "not measured (--http-only)", {}
        if not args.http_only:
            facet_rows = measure_facets(engine, scope, args.repeat, args.budget_s, "computed")
            log("timing facets with the answer cache (repeated requests)")
            cached_rows = measure_facets(engine, scope, args.repeat, args.budget_s, "cached")
            if args.sql_repeat:
                log(f"timing facets through the SQL engine ({args.sql_repeat} runs per filter)")
                sql_rows = measure_facets(engine, scope, args.sql_repeat, args.budget_s, "sql")
            log("timing the first reads after a commit")
            cold = measure_cold(engine, scope, args.cold_trials)
            if args.breakdown_repeat:
                log("timing the per-field breakdown")
                breakdown = measure_breakdown(engine, scope, args.breakdown_repeat)
            log("timing cohort creation")
            how, creation = measure_creation(engine, scope, args.repeat, args.budget_s)
        log(
            f"HTTP: 1 and {args.clients} clients for {args.http_seconds:.0f} s each, "
            f"{args.server_workers} server process(es)"
        )
        try:
            http = measure_http(
                engine,
                engine.url.render_as_string(hide_password=False),
                [(1, False), (args.clients, False), (args.clients, True)],
                args.http_seconds,
                args.server_workers,
            )
        except Exception as exc:
            http = {"skipped": f"HTTP run failed: {type(exc).__name__}: {exc}"}
        engine.dispose()
    finally:
        pg.cleanup()
        if keep:
            log(f"kept the database cluster in {root / 'pg'} (database {DATABASE})")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "graph": meta,
        "facet_fields": FACET_FIELDS,
        "filters": FILTERS,
        "facets": facet_rows,
        "facets_cached": cached_rows,
        "facets_sql": sql_rows,
        "after_commit": cold,
        "breakdown": breakdown,
        "creation_method": how,
        "creation": creation,
        "http": http,
        "targets": _targets(meta["rows"]["patient"], facet_rows, creation, http),
    }
    if args.json:
        print(json.dumps(result, default=str))
    else:
        _print(result)


if __name__ == "__main__":
    main()
