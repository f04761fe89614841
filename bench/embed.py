"""Benchmark: the embedding pipeline against its encoder alone, for slides and for clinical text.

1. Starts a fresh embedded PostgreSQL, migrates it and builds the REAL sample graph (its patients' clinical
   records are the text input).
2. Slides: the three REAL bundled slides (data/wsi: Aperio JPEG, Aperio JPEG2000 TCGA, Hamamatsu NDPI),
   ``--repeat`` copies of each (see ``_copies``). Pipeline = a whole ``embed slides`` run on a warm Ray
   executor (tiling, encoder actors, HDF5 files and database rows included): tiles / run seconds.
   Encoder alone = the same tiles, read into memory beforehand, through the same encoder in this process.
3. Text: every sample patient's summary; pipeline = a whole ``embed text`` run on the warm executor;
   encoder alone = the same summaries through the sentence encoder in this process.
4. Prints tiles/s, summaries/s and the ratios. Targets (issue 10, CPU): slides >= 0.85, text >= 0.9.

``--encoder-threads N`` gives the encoder (pipeline actors and encoder alone alike) N torch threads instead of
every core: with N below the core count, reading has cores of its own, which shows how much of the reading
the pipeline hides when reading and encoding do not compete for the same cores (as on a GPU node).

    .venv/bin/python bench/embed.py [--repeat 2] [--encoder-threads N] [--json] [--serial]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from report import print_result

REPO = Path(__file__).resolve().parents[1]
#: The TCGA fixture states no scale; 0.25 µm/px stands in (as in the tests and the demo).
FALLBACK_MPP = 0.25
SLIDES = sorted((REPO / "data" / "wsi").glob("*.s*")) + sorted((REPO / "data" / "wsi").glob("*.ndpi"))


def _copies(folder: Path, repeat: int) -> list[Path]:
    """``repeat`` copies of each real slide. The first keeps the bytes; later ones get one trailing byte (TIFF
    readers ignore bytes past the image data), so each has its own checksum and is embedded rather than skipped
    as the same object — the work per copy is exactly that of the original."""
    out = []
    for i in range(repeat):
        for slide in SLIDES:
            target = folder / f"copy{i}" / slide.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(slide, target)
            if i:
                with target.open("ab") as f:
                    f.write(bytes([i % 256]))
            out.append(target)
    return out


def _encoder_alone_slides(spec: Any, paths: list[Path], batch: int, threads: int) -> tuple[int, float]:
    from oncograph.embeddings.compute import _fallback_mpp
    from oncograph.embeddings.encoders import load_image_encoder
    from oncograph.embeddings.slides import MaskParams, tile_batches

    tiles = []
    for path in paths:
        _, _, _, batches = tile_batches(
            path,
            mpp=_fallback_mpp(path, FALLBACK_MPP),
            target_mpp=spec.mpp or 0.5,
            tile_px=spec.tile_size,
            min_tissue=0.25,
            mask_params=MaskParams(),
            batch_size=batch,
        )
        tiles.extend(batches)
    encoder = load_image_encoder(spec, device=None, threads=threads)
    encoder.encode(tiles[0][:4])  # warm up
    start = time.perf_counter()
    n = 0
    for b in tiles:
        n += len(encoder.encode(b))
    return n, time.perf_counter() - start


def _encoder_alone_text(spec: Any, texts: list[str], batch: int) -> float:
    from oncograph.embeddings.encoders import load_text_encoder

    encoder = load_text_encoder(spec)
    encoder.encode(texts[:4])
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        encoder.encode(texts[i : i + batch])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="copies of each real slide")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--encoder-threads", type=int, default=None, help="torch threads (default: every core)"
    )
    parser.add_argument("--serial", action="store_true", help="also time the serial in-process executor")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from support.sample_graph import build_sample_graph

    from oncograph.access import Scope
    from oncograph.db.embedded import start_embedded
    from oncograph.db.migrate import upgrade
    from oncograph.embeddings.compute import SerialExecutor
    from oncograph.embeddings.encoders import get_encoder
    from oncograph.embeddings.jobs import EmbedRequest
    from oncograph.embeddings.runner import embed
    from oncograph.embeddings.text import render_summaries
    from oncograph.settings import Settings
    from oncograph_flows.embed import RayExecutor

    work = Path(tempfile.mkdtemp(prefix="oncograph-bench-embed-"))
    os.environ["ONCOGRAPH_HOME"] = str(work / "home")
    server_url, server = start_embedded(work / "pg", keep_running=False)
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE bench_embed"))
    admin.dispose()
    url = make_url(server_url).set(database="bench_embed").render_as_string(hide_password=False)
    engine = create_engine(url)
    upgrade(engine)
    print("building the sample graph", file=sys.stderr)
    build_sample_graph(url, REPO / "data")
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    cpus = len(os.sched_getaffinity(0))
    threads = args.encoder_threads or cpus
    settings = Settings(home=work / "home", database_url=url, embed_threads=threads)
    result: dict[str, Any] = {
        "cpus": cpus,
        "encoder_threads": threads,
        "repeat": args.repeat,
        "batch_size": args.batch_size,
    }
    scope = Scope.everything("bench")

    with factory() as session:
        slide_spec = get_encoder(session, None, "slide")
        text_spec = get_encoder(session, None, "text")
        ids = list(session.execute(text("SELECT id FROM patient WHERE retired_release_id IS NULL")).scalars())
        texts = [s.text for s in render_summaries(session, ids)]

    paths = _copies(work / "slides", args.repeat)
    warm = _copies(work / "warm", 1)[:1]

    def clear() -> None:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM embedding"))

    with RayExecutor(settings) as ray_exec:
        # warm up: actors started and the model loaded on one slide, then forgotten
        embed(
            factory,
            EmbedRequest("slide", paths=tuple(map(str, warm)), mpp=FALLBACK_MPP, batch_size=args.batch_size),
            settings,
            ray_exec,
            scope=scope,
        )
        clear()
        summary = embed(
            factory,
            EmbedRequest("slide", paths=tuple(map(str, paths)), mpp=FALLBACK_MPP, batch_size=args.batch_size),
            settings,
            ray_exec,
            scope=scope,
        )
        result["slides"] = len(paths)
        result["slide_failures"] = summary.failed
        result["tiles"] = summary.tiles
        result["pipeline_tiles_per_s"] = round(summary.tiles / summary.seconds, 2)
        embed(factory, EmbedRequest("text", batch_size=args.batch_size), settings, ray_exec, scope=scope)
        clear()
        tsum = embed(
            factory, EmbedRequest("text", batch_size=args.batch_size), settings, ray_exec, scope=scope
        )
        result["summaries"] = tsum.embedded
        result["pipeline_summaries_per_s"] = round(tsum.embedded / tsum.seconds, 2)

    n, seconds = _encoder_alone_slides(slide_spec, paths, args.batch_size, threads)
    result["encoder_tiles_per_s"] = round(n / seconds, 2)
    result["slide_ratio"] = round(result["pipeline_tiles_per_s"] / result["encoder_tiles_per_s"], 3)
    tseconds = _encoder_alone_text(text_spec, texts, args.batch_size)
    result["encoder_summaries_per_s"] = round(len(texts) / tseconds, 2)
    result["text_ratio"] = round(result["pipeline_summaries_per_s"] / result["encoder_summaries_per_s"], 3)
    result["targets"] = {"slide_ratio": 0.85, "text_ratio": 0.9}

    if args.serial:
        clear()
        s = embed(
            factory,
            EmbedRequest("slide", paths=tuple(map(str, paths)), mpp=FALLBACK_MPP, batch_size=args.batch_size),
            settings,
            SerialExecutor(threads=threads),
            scope=scope,
        )
        result["serial_tiles_per_s"] = round(s.tiles / s.seconds, 2)
    engine.dispose()
    server.cleanup()
    shutil.rmtree(work, ignore_errors=True)
    print_result(result, as_json=args.json)


if __name__ == "__main__":
    main()
