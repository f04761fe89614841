"""Scans to 2.5D slices, checked on real DICOM files against values read independently with pydicom.

Data: the 3-slice GE CT colonography series bundled in ``data/dicom`` (SOURCES.md there), pydicom's locally
bundled test files (never downloaded), and, only where the shared folder is present, the unlicensed Philips
MR series (read in place, never copied).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from oncograph.embeddings.scans import (
    WINDOWS,
    Series,
    Unreadable,
    Volume,
    find_series,
    load_volume,
    normalise_mr,
    resample,
    scan_slices,
    series_sha256,
    slices_25d,
    window,
)
from oncograph.errors import ValidationError

REPO = Path(__file__).resolve().parents[3]
CT_DIR = REPO / "data" / "dicom" / "ge_ct_colonography_3slice"
CT_SERIES_UID = "1.2.392.200103.20080913.113635.1.2009.6.22.21.43.10.23430.1"
PHILIPS_MR = Path("/work/shared/data/dicom/philips_liver_mr_t2_axial")


def bundled(name: str) -> Path:
    """A pydicom test file that ships with pydicom; skip, never download, when it is not here."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom's {name} is not bundled locally")
    return Path(path)


def ct_series() -> Series:
    found, unreadable = find_series([CT_DIR])
    assert unreadable == []
    assert len(found) == 1
    return found[0]


def position_on_normal(path: Path) -> float:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    row, col = (
        np.asarray(ds.ImageOrientationPatient[:3], float),
        np.asarray(ds.ImageOrientationPatient[3:], float),
    )
    return float(np.dot(np.asarray(ds.ImagePositionPatient, float), np.cross(row, col)))


def reasons(unreadable: list[Unreadable]) -> dict[str, str]:
    return {u.path.name: u.reason for u in unreadable}


def test_ct_series_is_one_series_ordered_along_the_slice_normal() -> None:
    series = ct_series()
    files = sorted(CT_DIR.glob("*.dcm"))
    expected = sorted(files, key=position_on_normal)
    header = pydicom.dcmread(files[0], stop_before_pixels=True)

    assert series.series_uid == CT_SERIES_UID == header.SeriesInstanceUID
    assert (series.patient_id, series.modality) == ("99000", "CT")
    assert [p.name for p in series.files] == [p.name for p in expected] == ["03.dcm", "02.dcm", "01.dcm"]
    assert series.positions == pytest.approx([position_on_normal(p) for p in expected])
    assert series.sop_uids == tuple(
        pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in expected
    )
    assert series.ordering == "image_position"
    assert (series.rows, series.columns) == (512, 512)
    assert series.pixel_spacing == pytest.approx([float(v) for v in header.PixelSpacing])
    # positions 1 mm apart while SliceThickness is 1.25 mm (overlapping reconstruction): spacing is the gap
    assert series.slice_spacing == pytest.approx(1.0)
    assert series.slice_thickness == pytest.approx(1.25)
    assert series.to_json()["files"] == [str(p) for p in series.files]


def test_ct_volume_is_in_hounsfield_units() -> None:
    series = ct_series()
    volume = load_volume(series)
    assert volume.array.dtype == np.float32 and volume.array.shape == (3, 512, 512)
    assert volume.spacing == pytest.approx((1.0, 0.810547, 0.810547))
    for z, path in enumerate(series.files):
        ds = pydicom.dcmread(path)
        stored = ds.pixel_array
        hu = apply_modality_lut(stored, ds)
        for y, x in [(256, 256), (100, 400), (300, 120), (200, 250)]:
            manual = float(stored[y, x]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            assert volume.array[z, y, x] == pytest.approx(manual) == pytest.approx(float(hu[y, x]))
        # outside the reconstruction circle GE stores PixelPaddingValue (-3024 HU): read as the lowest real value
        padded = stored == ds.PixelPaddingValue
        assert padded[0, 0] and padded[511, 3] and not padded[256, 256]
        assert (volume.array[z][padded] == hu[~padded].min()).all()
    assert volume.array.min() == -1024 and volume.array.max() > 1000  # air, and bone


def test_window_presets_and_grey_levels() -> None:
    assert WINDOWS == {
        "lung": (-600, 1500),
        "mediastinum": (50, 350),
        "soft_tissue": (40, 400),
        "brain": (40, 80),
        "bone": (400, 1800),
    }
    hu = np.array([-1000.0, -160.0, 0.0, 40.0, 140.0, 240.0, 3000.0])
    # soft tissue: -160 HU is black, 240 HU white, linear between
    assert window(hu, "soft_tissue").tolist() == [0, 0, 102, 128, 191, 255, 255]
    assert window(hu, (40.0, 400.0)).tolist() == window(hu, "soft_tissue").tolist()
    assert window(np.array([-600.0]), "lung").tolist() == [128]

    grey = window(load_volume(ct_series()).array, "soft_tissue")
    assert grey.dtype == np.uint8 and grey.shape == (3, 512, 512)
    assert grey.min() == 0 and grey.max() == 255  # air outside the body and denser structures


def test_unknown_window_preset_lists_the_presets() -> None:
    with pytest.raises(ValidationError) as info:
        window(np.zeros((1, 2, 2)), "liver")
    assert all(name in str(info.value) for name in WINDOWS)
    with pytest.raises(ValidationError):
        window(np.zeros((1, 2, 2)), (40.0, 0.0))


def test_slices_25d_stacks_neighbours_as_channels() -> None:
    grey = window(load_volume(ct_series()).array, "soft_tissue")
    slices = slices_25d(grey)
    assert slices.shape == (3, 224, 224, 3) and slices.dtype == np.uint8
    np.testing.assert_array_equal(slices[1, ..., 0], slices[0, ..., 1])
    np.testing.assert_array_equal(slices[0, ..., 2], slices[1, ..., 1])
    np.testing.assert_array_equal(slices[2, ..., 0], slices[1, ..., 1])
    np.testing.assert_array_equal(slices[0, ..., 0], slices[0, ..., 1])  # clamped at the ends
    np.testing.assert_array_equal(slices[2, ..., 2], slices[2, ..., 1])
    resized = np.asarray(Image.fromarray(grey[1]).resize((224, 224), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(slices[1, ..., 1], resized)
    assert slices_25d(grey, size=64).shape == (3, 64, 64, 3)
    with pytest.raises(ValidationError):
        slices_25d(grey.astype(np.float32))


def test_scan_slices_records_how_the_slices_were_made() -> None:
    slices, details = scan_slices(
        ct_series(), window_preset="lung", spacing=(1.0, 1.621094, 1.621094), size=128
    )
    assert slices.shape == (3, 128, 128, 3)
    assert details["window"] == {"preset": "lung", "center": -600.0, "width": 1500.0}
    assert details["spacing_before"] == pytest.approx([1.0, 0.810547, 0.810547])
    assert details["spacing_after"] == pytest.approx([1.0, 1.621094, 1.621094])
    assert details["shape_after"] == [3, 256, 256]
    assert (details["n_slices"], details["ordering"], details["series_uid"]) == (
        3,
        "image_position",
        CT_SERIES_UID,
    )


def test_pydicom_ct_and_mr_load_and_mr_is_normalised() -> None:
    ct_path, mr_path = bundled("CT_small.dcm"), bundled("MR_small.dcm")
    found, unreadable = find_series([ct_path, mr_path])
    assert unreadable == []
    by_modality = {s.modality: s for s in found}
    assert set(by_modality) == {"CT", "MR"}

    ds = pydicom.dcmread(ct_path)
    ct = load_volume(by_modality["CT"])
    np.testing.assert_allclose(ct.array[0], apply_modality_lut(ds.pixel_array, ds))
    assert ct.spacing == pytest.approx((float(ds.SliceThickness), *map(float, ds.PixelSpacing)))

    mr = load_volume(by_modality["MR"])
    raw = pydicom.dcmread(mr_path).pixel_array
    np.testing.assert_array_equal(mr.array[0], raw)  # MR_small has no rescale: values stay raw
    grey = normalise_mr(mr.array)
    low, high = np.percentile(raw, [1, 99])
    assert grey.dtype == np.uint8
    assert (grey[mr.array <= low] == 0).all() and (grey[mr.array >= high] == 255).all()

    slices, details = scan_slices(by_modality["MR"])
    assert slices.shape == (1, 224, 224, 3)
    assert details["window"] is None and details["normalise"] == {"low": 1.0, "high": 99.0, "inverted": False}
    with pytest.raises(ValidationError):
        scan_slices(by_modality["MR"], window_preset="brain")


def test_mixed_folder_gives_series_and_reasons_without_raising(tmp_path: Path) -> None:
    shutil.copytree(CT_DIR, tmp_path / "ct")
    shutil.copy(CT_DIR / "02.dcm", tmp_path / "ct" / "copy_of_02.dcm")  # the same SOP instance twice
    shutil.copy(bundled("MR_small.dcm"), tmp_path / "MR_small.dcm")
    (tmp_path / "x.dcm").write_text("not an image\n")
    data = (CT_DIR / "01.dcm").read_bytes()
    (tmp_path / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (tmp_path / "header_only.dcm").write_bytes(data[:1000])
    shutil.copy(bundled("reportsi.dcm"), tmp_path / "report.dcm")

    found, unreadable = find_series([tmp_path])

    assert sorted((s.modality, len(s.files)) for s in found) == [("CT", 3), ("MR", 1)]
    ct = next(s for s in found if s.modality == "CT")
    assert "copy_of_02.dcm" not in {p.name for p in ct.files}
    assert any("copy_of_02.dcm" in note for note in ct.notes)
    why = reasons(unreadable)
    assert set(why) == {"x.dcm", "truncated.dcm", "header_only.dcm", "report.dcm"}
    assert "not a DICOM file" in why["x.dcm"]
    assert why["truncated.dcm"].startswith("truncated: the header declares")
    assert why["header_only.dcm"].startswith("truncated: no pixel data")
    assert "no pixel data" in why["report.dcm"]


def test_pydicoms_truncated_mr_is_reported() -> None:
    found, unreadable = find_series([bundled("MR_truncated.dcm")])
    assert found == [] and reasons(unreadable)["MR_truncated.dcm"].startswith("truncated")


def test_a_different_image_size_is_left_out_of_its_series(tmp_path: Path) -> None:
    shutil.copytree(CT_DIR, tmp_path / "ct")
    ds = pydicom.dcmread(CT_DIR / "02.dcm")
    ds.PixelData = np.ascontiguousarray(ds.pixel_array[::2, ::2]).tobytes()
    ds.Rows, ds.Columns = 256, 256
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "half.dcm")

    found, unreadable = find_series([tmp_path])
    assert [len(s.files) for s in found] == [3]
    assert "256x256" in reasons(unreadable)["half.dcm"]


def test_a_file_that_fails_to_decode_is_named(tmp_path: Path) -> None:
    copy = tmp_path / "CT_small.dcm"
    shutil.copy(bundled("CT_small.dcm"), copy)
    (series,), _ = find_series([copy])
    copy.write_bytes(copy.read_bytes()[:-1000])  # broken after it was found
    with pytest.raises(ValidationError, match=r"CT_small\.dcm"):
        load_volume(series)


def test_a_compression_without_a_decoder_is_named() -> None:
    path = bundled("MR_small_jpeg_ls_lossless.dcm")
    try:
        pydicom.dcmread(path).pixel_array  # noqa: B018
        pytest.skip("a JPEG-LS decoder is installed")
    except RuntimeError:
        pass
    (series,), _ = find_series([path])
    with pytest.raises(ValidationError, match=r"MR_small_jpeg_ls_lossless\.dcm"):
        load_volume(series)


def test_series_sha256_hashes_contents_in_any_order(tmp_path: Path) -> None:
    sums = dict(
        reversed(line.split()) for line in (CT_DIR.parent / "SHA256SUMS").read_text().splitlines() if line
    )
    listed = sorted(digest for name, digest in sums.items() if name.startswith(CT_DIR.name + "/"))
    expected = hashlib.sha256("\n".join(listed).encode()).hexdigest()

    series = ct_series()
    assert series_sha256(series) == expected
    (reordered,), _ = find_series(sorted(CT_DIR.glob("*.dcm"), reverse=True))
    assert series_sha256(reordered) == expected
    shutil.copytree(CT_DIR, tmp_path / "elsewhere")
    (moved,), _ = find_series([tmp_path / "elsewhere"])
    assert series_sha256(moved) == expected
    (mr,), _ = find_series([bundled("MR_small.dcm")])
    assert series_sha256(mr) != expected


def test_resample_changes_shape_and_interpolates_linearly() -> None:
    volume = load_volume(ct_series())
    assert resample(volume, None) is volume

    finer = resample(volume, (0.5, 0.810547, 0.810547))
    assert finer.array.shape == (6, 512, 512) and finer.spacing == (0.5, 0.810547, 0.810547)
    # corner-aligned grids: output slice 1 is centred a quarter of the way from input slice 0 to slice 1
    np.testing.assert_allclose(finer.array[1], 0.75 * volume.array[0] + 0.25 * volume.array[1], atol=1e-2)

    coarser = resample(volume, (1.0, 2.0, 2.0))
    assert coarser.array.shape == (3, 208, 208)  # 512 × 0.810547 / 2 = 207.50003
    assert coarser.array.dtype == np.float32

    (single,), _ = find_series([bundled("CT_small.dcm")])
    one = load_volume(single)
    flat = resample(one, (2.0, 1.0, 1.0))
    assert flat.array.shape == (1, 85, 85) and flat.spacing == (one.spacing[0], 1.0, 1.0)
    with pytest.raises(ValidationError):
        resample(volume, (0.0, 1.0, 1.0))


def test_user_mistakes_are_validation_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        find_series([tmp_path / "missing"])
    with pytest.raises(ValidationError):
        normalise_mr(np.zeros((1, 2, 2)), low=50, high=10)
    with pytest.raises(ValidationError):
        Volume(array=np.zeros((2, 2)), spacing=(1.0, 1.0, 1.0))


@pytest.mark.skipif(not PHILIPS_MR.is_dir(), reason="the shared Philips MR series (no licence) is not here")
def test_philips_mr_series_in_place() -> None:
    (series,), unreadable = find_series([PHILIPS_MR])
    assert unreadable == [] and len(series.files) == 25 and series.ordering == "image_position"
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in series.files]
    assert [int(h.InstanceNumber) for h in headers] == list(range(1, 26))
    assert series.slice_spacing == pytest.approx(float(headers[0].SpacingBetweenSlices))
    volume = load_volume(series)
    ds = pydicom.dcmread(series.files[12])
    manual = ds.pixel_array[128, 128] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert volume.array[12, 128, 128] == pytest.approx(manual, rel=1e-5)
    slices, details = scan_slices(series, spacing=(5.5, 2.34375, 2.34375))
    assert slices.shape == (25, 224, 224, 3) and details["shape_after"] == [25, 128, 128]
