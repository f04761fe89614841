"""``oncograph gdc-server``: serve real recorded GDC documents on a local GDC-compatible API."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from oncograph.errors import OncographError
from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, run_mirror
from oncograph.sources.gdc.mirror.data_files import DataFiles
from oncograph.sources.gdc.mirror.inputs import API_DIR, PORTAL_DIRS
from oncograph_cli.commands import stand_in
from oncograph_cli.output import console, exit_with_error


def _is_mirror_dir(path: Path) -> bool:
    return (path / "status.json").is_file() or any(
        (path / ep).is_dir() for ep in ("cases", "files", "projects")
    )


def _is_raw_data_dir(path: Path) -> bool:
    return any((path / d).is_dir() for d in (API_DIR, *PORTAL_DIRS))


def gdc_server(
    data: Path = typer.Option(
        Path("data/gdc"),
        "--data",
        help="A built mirror directory, or the raw bundled data (data/gdc), which is built into a temp dir.",
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="A folder of files (e.g. data/wsi) served on /data/{id}; each id is a stand-in UUID5 of the "
        "file's SHA-256, not a GDC file id (they are printed at start).",
    ),
    host: str = stand_in.HOST,
    port: int = stand_in.port(8765),
    fail_rate: float = stand_in.FAIL_RATE,
    latency_ms: float = stand_in.LATENCY_MS,
    rate_limit: float | None = stand_in.RATE_LIMIT,
    truncate_rate: float = stand_in.TRUNCATE_RATE,
    seed: int = stand_in.SEED,
) -> None:
    """Serve a local GDC-compatible API (/status, /cases, /files, /projects, /data) until Ctrl-C."""
    try:
        faults = stand_in.faults(fail_rate, latency_ms, rate_limit, truncate_rate, seed)
        files = DataFiles.from_directory(data_dir) if data_dir is not None else None
        with tempfile.TemporaryDirectory(prefix="oncograph-gdc-mirror-") as tmp:
            if _is_mirror_dir(data):
                mirror_dir = data
            elif _is_raw_data_dir(data):
                mirror_dir = Path(tmp) / "mirror"
                report = build_mirror_directory(data, mirror_dir)
                console.print(report.summary(), highlight=False)
            else:
                exit_with_error(
                    f"{data} is neither a mirror directory (status.json, cases/ …) nor the bundled GDC data "
                    f"({API_DIR}/, {PORTAL_DIRS[0]}/); pass --data data/gdc"
                )
            store = MirrorStore.from_directory(mirror_dir)
            counts = ", ".join(f"{n:,} {ep}" for ep, n in store.counts().items())

            def ready(url: str) -> None:
                console.print(f"GDC mirror serving {counts} ({store.status.get('data_release', '?')})")
                for item in (files or {}).values():
                    console.print(
                        f"/data/{item.file_id}  {item.file_name} ({item.size:,} bytes)", highlight=False
                    )
                if faults.active:
                    console.print(f"fault injection: {faults}", highlight=False)
                console.print(f"set ONCOGRAPH_GDC_URL={url} to harvest from it; Ctrl-C stops")
                typer.echo(url)

            run_mirror(store, host=host, port=port, faults=faults, data_files=files, on_ready=ready)
    except OncographError as exc:
        exit_with_error(str(exc))
    except OSError as exc:
        exit_with_error(f"cannot serve on {host}:{port}: {exc}")
    console.print("GDC mirror stopped")
