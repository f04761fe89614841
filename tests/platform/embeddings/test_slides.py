"""Slides to tiles to feature files, on the three real slides in data/wsi (see its SOURCES.md).

What the slides state (OpenSlide 4.0.1):
- CMU-1-Small-Region.svs (Aperio JPEG, 2220x2967, 1 level): openslide.mpp-x 0.499, objective 20.
- tcga-cr-7395-01a-01-ts1.svs (Aperio JPEG2000, 4443x3567, 2 levels): no mpp, no objective power and no TIFF
  resolution, so it *is* the real "needs mpp=" case. Its true scale is unknown (the fixture was reduced from
  the TCGA original); where these tests need one they pass ``TCGA_MPP = 0.25`` as a stand-in, which also
  makes a 0.5 µm/px target read its level 1.
- test3-DAPI-2-387.ndpi (Hamamatsu NDPI, fluorescence, 3968x4864, 7 levels): openslide.mpp-x 0.228175,
  which equals its TIFF resolution (43826 px/cm); objective 40.

Oracles: tile counts and tissue fractions are recomputed here by point-sampling the mask (not the module's
integral image); coarse-level tiles are compared with level-0 reads downscaled here; feature files are read
back with h5py directly, the way TRIDENT reads them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import openslide
import pytest
from PIL import Image

from oncograph.embeddings import features as ft
from oncograph.embeddings import slides as sl
from oncograph.errors import ValidationError

WSI = Path(__file__).resolve().parents[3] / "data" / "wsi"
CMU, TCGA, NDPI = "CMU-1-Small-Region.svs", "tcga-cr-7395-01a-01-ts1.svs", "test3-DAPI-2-387.ndpi"
TCGA_MPP = 0.25  # stand-in: the slide states no scale
GIVEN = {CMU: None, TCGA: TCGA_MPP, NDPI: None}


@pytest.fixture(scope="module")
def opened() -> Iterator[dict[str, tuple[openslide.OpenSlide, sl.SlideInfo, sl.TissueMask]]]:
    out = {}
    for name, mpp in GIVEN.items():
        slide, info = sl.open_slide(WSI / name, mpp)
        out[name] = (slide, info, sl.tissue_mask(slide, mpp=info.mpp))
    yield out
    for slide, _, _ in out.values():
        slide.close()


def oracle_coverage(mask: sl.TissueMask, x: int, y: int, size: int, samples: int = 16) -> float:
    """Tissue fraction of a level-0 square by sampling the mask on a samples x samples lattice."""
    offsets = (np.arange(samples) + 0.5) * size / samples
    cols = np.clip(((x + offsets) / mask.downsample[0]).astype(int), 0, mask.mask.shape[1] - 1)
    rows = np.clip(((y + offsets) / mask.downsample[1]).astype(int), 0, mask.mask.shape[0] - 1)
    return float(mask.mask[np.ix_(rows, cols)].mean())


# --- scale -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mpp", "source", "objective"),
    [(CMU, 0.499, "openslide.mpp-x", 20.0), (NDPI, 0.2281750559, "openslide.mpp-x", 40.0)],
)
def test_open_slide_states_scale_and_its_source(name: str, mpp: float, source: str, objective: float) -> None:
    slide, info = sl.open_slide(WSI / name)
    assert ((info.width, info.height), info.level_count) == (slide.dimensions, slide.level_count)
    slide.close()
    assert info.mpp == pytest.approx(mpp, rel=1e-6)
    assert (info.mpp_source, info.objective_power) == (source, objective)
    assert info.to_json()["path"] == str(WSI / name) and info.to_json()["mpp"] == info.mpp


def test_tcga_slide_states_no_scale_and_needs_mpp() -> None:
    with pytest.raises(ValidationError) as caught:
        sl.open_slide(WSI / TCGA)
    assert TCGA in str(caught.value) and "--mpp" in caught.value.hint
    slide, info = sl.open_slide(WSI / TCGA, mpp=TCGA_MPP)
    slide.close()
    assert (info.mpp, info.mpp_source, info.objective_power) == (TCGA_MPP, "given", None)
    assert (info.width, info.height, info.level_count) == (4443, 3567, 2)


def test_scale_fallbacks_on_real_slide_properties() -> None:
    ndpi = openslide.OpenSlide(WSI / NDPI)
    props = dict(ndpi.properties)
    ndpi.close()
    no_mpp = {k: v for k, v in props.items() if not k.startswith("openslide.mpp")}
    mpp, source = sl.resolve_mpp(no_mpp, None) or (0, "")
    assert source == "tiff.resolution" and mpp == pytest.approx(10_000 / 43826) == pytest.approx(0.2281750559)
    no_tiff = {k: v for k, v in no_mpp.items() if k != "tiff.XResolution"}
    assert sl.resolve_mpp(no_tiff, None) == (0.25, "objective-power")  # 10 / 40x, an approximation
    assert sl.resolve_mpp({**no_mpp, "tiff.ResolutionUnit": "inch", "tiff.XResolution": "72"}, None) == (
        0.25,
        "objective-power",
    )  # 72 dpi is a writer's default, not a scan: skipped
    assert sl.resolve_mpp(props, 0.3) == (0.3, "given")  # an explicit value wins
    assert sl.resolve_mpp({}, None) is None


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_nonpositive_mpp_is_refused(bad: float) -> None:
    with pytest.raises(ValidationError, match="positive"):
        sl.open_slide(WSI / CMU, mpp=bad)


# --- broken files --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [CMU, TCGA, NDPI])
def test_truncated_copy_is_a_validation_error(tmp_path: Path, name: str) -> None:
    data = (WSI / name).read_bytes()
    broken = tmp_path / name
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValidationError, match=name):
        sl.tile_batches(broken, mpp=0.5, target_mpp=0.5, tile_px=224, min_tissue=0.25,
                        mask_params=sl.MaskParams(), batch_size=8)  # fmt: skip


def test_corrupt_tile_data_fails_on_read_with_a_validation_error(tmp_path: Path) -> None:
    data = bytearray((WSI / CMU).read_bytes())  # the directory survives, the JPEG tiles in the middle do not
    data[len(data) // 5 : 3 * len(data) // 5] = bytes(3 * len(data) // 5 - len(data) // 5)
    broken = tmp_path / CMU
    broken.write_bytes(bytes(data))
    slide, _ = sl.open_slide(broken)
    with pytest.raises(ValidationError, match="cannot read slide"):
        sl.tissue_mask(slide)
    slide.close()


def test_plain_tiff_and_missing_file_are_validation_errors(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tiff"  # stripped, no resolution: no whole-slide format OpenSlide reads
    Image.new("RGB", (256, 256), (200, 100, 150)).save(plain)
    with pytest.raises(ValidationError, match=r"cannot open slide plain\.tiff"):
        sl.open_slide(plain, mpp=0.5)
    with pytest.raises(ValidationError, match="does not exist"):
        sl.open_slide(tmp_path / "absent.svs")


# --- tissue mask -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "background", "low", "high"),
    [(CMU, "bright", 0.2, 0.5), (TCGA, "bright", 0.45, 0.75), (NDPI, "dark", 0.5, 0.9)],
)
def test_mask_finds_tissue_on_bright_and_dark_backgrounds(
    opened: dict, name: str, background: str, low: float, high: float
) -> None:
    slide, _, mask = opened[name]
    assert mask.background == background and low < mask.fraction < high
    size = sl.MaskParams().thumbnail_max
    assert mask.mask.dtype == bool and max(mask.mask.shape) == size
    rgb = sl.thumbnail_rgba(slide, size)[..., :3].astype(np.float32)
    if background == "bright":  # tissue is stained (saturated), background is white
        signal = (rgb.max(-1) - rgb.min(-1)) / np.maximum(rgb.max(-1), 1)
    else:  # tissue fluoresces, background is black
        signal = rgb.max(-1)
    assert signal[mask.mask].mean() > 2 * signal[~mask.mask].mean()


def test_saturation_alone_fails_on_fluorescence(opened: dict) -> None:
    slide, _, auto = opened[NDPI]
    forced = sl.tissue_mask(slide, sl.MaskParams(background="bright"))
    assert forced.fraction > 0.95 > auto.fraction  # near-black noise is "saturated": everything is tissue


def test_bad_mask_params_are_refused(opened: dict) -> None:
    slide, _, _ = opened[CMU]
    with pytest.raises(ValidationError, match="min_object_frac"):
        sl.tissue_mask(slide, sl.MaskParams(min_object_frac=2.0))


# --- grid ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [CMU, TCGA, NDPI])
def test_grid_matches_the_sampled_mask_and_the_slide_scale(opened: dict, name: str) -> None:
    slide, info, mask = opened[name]
    grid = sl.tile_grid(slide, info, mask, target_mpp=0.5, tile_px=224, min_tissue=0.25)
    size = grid.patch_size_level0
    assert size == round(224 * 0.5 / info.mpp) and grid.level0_mpp == info.mpp
    cells = [
        (x, y) for y in range(0, info.height - size + 1, size) for x in range(0, info.width - size + 1, size)
    ]
    cover = np.array([oracle_coverage(mask, x, y, size) for x, y in cells])
    assert (cover >= 0.35).sum() <= len(grid) <= (cover >= 0.15).sum()
    assert len(grid) > 20
    xy = grid.coords
    assert xy.dtype == np.int64 and xy.shape == (len(grid), 2)
    assert (
        (xy >= 0).all() and (xy[:, 0] + size <= info.width).all() and (xy[:, 1] + size <= info.height).all()
    )
    assert (xy % size == 0).all() and len({tuple(p) for p in xy}) == len(xy)
    sampled = np.array([oracle_coverage(mask, x, y, size) for x, y in xy])
    assert (sampled >= 0.15).all() and np.abs(sampled - grid.tissue).max() < 0.1


def test_grid_reads_the_coarsest_level_that_does_not_upsample(opened: dict) -> None:
    slide, info, mask = opened[NDPI]
    grid = sl.tile_grid(slide, info, mask, target_mpp=2.0, tile_px=224, min_tissue=0.25)
    assert grid.patch_size_level0 == round(224 * 2.0 / info.mpp) == 1963
    assert (grid.level, grid.read_size) == (3, 245)  # downsample 8 <= 1963/224 = 8.76 < 16
    slide, info, mask = opened[TCGA]
    grid = sl.tile_grid(slide, info, mask, target_mpp=0.5)
    assert (grid.level, grid.read_size) == (1, 224)  # downsample 2.0005 for 448/224 = 2: within 1%
    slide, info, mask = opened[CMU]
    assert sl.tile_grid(slide, info, mask).level == 0


def test_a_target_finer_than_level0_is_refused(opened: dict) -> None:
    slide, info, mask = opened[CMU]
    with pytest.raises(ValidationError, match="finer than slide") as caught:
        sl.tile_grid(slide, info, mask, target_mpp=0.25)
    assert "0.499" in caught.value.hint
    assert sl.tile_grid(slide, info, mask, target_mpp=0.46).patch_size_level0 == 206  # within 10%: allowed


# --- reading ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [CMU, TCGA, NDPI])
def test_tiles_are_rgb_uint8_and_show_tissue(opened: dict, name: str) -> None:
    slide, info, mask = opened[name]
    grid = sl.tile_grid(slide, info, mask)
    batches = list(sl.read_tiles(slide, grid, batch_size=16))
    tiles = np.concatenate(batches)
    assert [len(b) for b in batches[:-1]] == [16] * (len(batches) - 1) and len(tiles) == len(grid)
    assert tiles.dtype == np.uint8 and tiles.shape[1:] == (224, 224, 3)
    stained = (tiles.min(-1) < 220).mean(axis=(1, 2))  # not white
    lit = (tiles.max(-1) > 40).mean(axis=(1, 2))  # not black
    assert (stained > 0.2).mean() > 0.9 if mask.background == "bright" else (lit > 0.05).mean() > 0.9


def test_coarse_level_tiles_match_level0_downscaled(opened: dict) -> None:
    for name, target in [(NDPI, 2.0), (TCGA, 0.5)]:
        slide, info, mask = opened[name]
        grid = sl.tile_grid(slide, info, mask, target_mpp=target)
        assert grid.level > 0
        tiles = next(sl.read_tiles(slide, grid, batch_size=3))
        size = grid.patch_size_level0
        for tile, (x, y) in zip(tiles, grid.coords[:3], strict=True):
            full = slide.read_region((int(x), int(y)), 0, (size, size)).convert("RGB")
            ref = np.asarray(full.resize((224, 224), Image.Resampling.BOX)).astype(np.float32)
            got = tile.astype(np.float32)
            assert np.abs(got - ref).mean() < 8, name
            assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.9, name


def test_transparency_outside_the_scan_is_composited_on_white(opened: dict) -> None:
    slide, info, mask = opened[CMU]
    grid = sl.tile_grid(slide, info, mask)
    edge = dataclasses.replace(
        grid, coords=np.array([[info.width - 112, 0]], dtype=np.int64), tissue=np.ones(1)
    )
    tile = next(sl.read_tiles(slide, edge))[0]  # OpenSlide returns alpha 0 beyond the slide's right edge
    assert (tile[:, 113:] == 255).all() and (tile[:, :110] < 250).any()


def test_thumbnail_read_in_blocks_equals_one_read(opened: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    slide, _, _ = opened[CMU]
    whole = sl.thumbnail_rgba(slide, 1024).astype(np.float32)
    monkeypatch.setattr(sl, "_THUMB_BLOCK", 700)  # 4 x 5 blocks
    blocks = sl.thumbnail_rgba(slide, 1024).astype(np.float32)
    assert blocks.shape == whole.shape and np.abs(blocks - whole).max() <= 1  # no seams


def test_reading_resumes_at_start(opened: dict) -> None:
    slide, info, mask = opened[CMU]
    grid = sl.tile_grid(slide, info, mask)
    whole = np.concatenate(list(sl.read_tiles(slide, grid, batch_size=20)))
    tail = np.concatenate(list(sl.read_tiles(slide, grid, batch_size=7, start=30)))
    assert np.array_equal(whole[30:], tail)
    with pytest.raises(ValidationError):
        next(sl.read_tiles(slide, grid, start=len(grid) + 1))


def test_tile_batches_opens_masks_grids_and_reads() -> None:
    info, mask, grid, batches = sl.tile_batches(
        WSI / NDPI,
        mpp=None,
        target_mpp=2.0,
        tile_px=224,
        min_tissue=0.25,
        mask_params=sl.MaskParams(),
        batch_size=2,
    )
    assert info.mpp_source == "openslide.mpp-x" and mask.background == "dark" and grid.level == 3
    assert sum(len(b) for b in batches) == len(grid) > 0


# --- feature files ------------------------------------------------------------------------------------


def _real_features(slide: openslide.OpenSlide, grid: sl.TileGrid) -> np.ndarray:
    """Per-tile colour means and spreads: a small real 'encoder' output."""
    tiles = np.concatenate(list(sl.read_tiles(slide, grid))).astype(np.float32)
    return np.concatenate([tiles.mean(axis=(1, 2)), tiles.std(axis=(1, 2))], axis=1)


@pytest.mark.parametrize("name", [CMU, NDPI])
def test_feature_file_round_trip_and_trident_reader(opened: dict, tmp_path: Path, name: str) -> None:
    slide, info, mask = opened[name]
    grid = sl.tile_grid(slide, info, mask)
    feats = _real_features(slide, grid)
    attrs = ft.feature_attrs(
        info, grid, encoder="colour-stats", encoder_version="1", mask=sl.MaskParams().to_json()
    )
    path = tmp_path / "features" / f"{info.path.stem}.h5"
    sha, size = ft.write_features_h5(path, grid.coords, feats, attrs)
    assert (
        (sha, size)
        == (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)
        == (ft.file_sha256(path), size)
    )
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    coords, back, read_attrs = ft.read_features_h5(path)
    assert np.array_equal(coords, grid.coords) and np.array_equal(back, feats.astype(np.float32))
    assert (
        read_attrs["patch_size_level0"] == grid.patch_size_level0 and read_attrs["encoder"] == "colour-stats"
    )

    with h5py.File(path, "r") as f:  # how TRIDENT / CLAM consumers read it
        features, xy = f["features"][:], f["coords"][:]
        coord_attrs = dict(f["coords"].attrs)
        assert f.attrs["patch_size_level0"] == coord_attrs["patch_size_level0"]
    assert features.dtype == np.float32 and xy.dtype == np.int64 and features.shape == (len(grid), 6)
    assert coord_attrs["patch_size_level0"] == round(224 * 0.5 / info.mpp)
    assert coord_attrs["level0_magnification"] == info.objective_power
    trident_size = (
        coord_attrs["patch_size"] * coord_attrs["level0_magnification"] / coord_attrs["target_magnification"]
    )
    assert trident_size == pytest.approx(coord_attrs["patch_size_level0"], rel=0.02)  # rounded magnifications

    again = tmp_path / "again.h5"
    assert ft.write_features_h5(again, grid.coords, feats, attrs)[0] == sha  # same input, same bytes


def test_feature_file_inputs_are_checked(tmp_path: Path, opened: dict) -> None:
    slide, info, mask = opened[CMU]
    grid = sl.tile_grid(slide, info, mask)
    attrs = ft.feature_attrs(info, grid, encoder="e", encoder_version="1")
    n = len(grid)
    with pytest.raises(ValidationError, match="features must be"):
        ft.write_features_h5(tmp_path / "a.h5", grid.coords, np.zeros((n + 1, 4)), attrs)
    with pytest.raises(ValidationError, match=r"missing: patch_size_level0, .*, encoder_version"):
        ft.write_features_h5(tmp_path / "a.h5", grid.coords, np.zeros((n, 4)), {"patch_size": 224})
    with pytest.raises(ValidationError, match="NaN"):
        ft.write_features_h5(tmp_path / "a.h5", grid.coords, np.full((n, 4), np.nan), attrs)
    with pytest.raises(ValidationError, match="unsupported type"):
        ft.write_features_h5(tmp_path / "a.h5", grid.coords, np.zeros((n, 4)), {**attrs, "x": object()})
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValidationError, match="cannot read feature file"):
        ft.read_features_h5(tmp_path / "junk.h5")
