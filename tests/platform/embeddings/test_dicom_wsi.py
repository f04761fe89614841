"""DICOM whole-slide images (an IDC ``SM`` series) through OpenSlide 4: the real two-instance series from
openslide-python's fixtures (data/wsi/dicom-wsi/SOURCES.md) is one slide, read at its stated scale and
embedded as one object keyed by its SeriesInstanceUID. The encoder here is a small random-init resnet10t with
16-px tiles, because the fixture is 16 x 16 px: it proves the reading path and the bookkeeping, not quality."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest
import torch
from pydicom.data import get_testdata_file
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.access import Scope
from oncograph.embeddings import encoders as enc
from oncograph.embeddings.compute import SerialExecutor
from oncograph.embeddings.dicom_wsi import is_dicom, split_dicom_slides
from oncograph.embeddings.inputs import local_input
from oncograph.embeddings.jobs import EmbedRequest
from oncograph.embeddings.runner import embed
from oncograph.embeddings.slides import open_slide
from oncograph.settings import Settings

REPO = Path(__file__).resolve().parents[3]
DICOM_WSI = REPO / "data" / "wsi" / "dicom-wsi"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SERIES_UID = "1.3.6.1.4.1.5962.99.1.1747645553.419656796.1689669825649.4.0"


def test_dicom_wsi_opens_with_its_scale() -> None:
    slide, info = open_slide(DICOM_WSI / "boxes_0.dcm")
    try:
        assert info.vendor == "dicom"
        assert (info.width, info.height) == (16, 16)
        assert info.mpp == pytest.approx(0.499) and info.mpp_source == "openslide.mpp-x"
        assert info.objective_power == 20
    finally:
        slide.close()


def test_series_files_are_one_slide_and_other_dicom_is_refused(tmp_path: Path) -> None:
    ct = Path(get_testdata_file("CT_small.dcm", download=False))
    items = [local_input(p) for p in sorted(DICOM_WSI.glob("*.dcm"))]
    items += [local_input(ct), local_input(REPO / "data" / "wsi" / "CMU-1-Small-Region.svs")]
    assert [is_dicom(i.path) for i in items] == [True, True, True, False]
    slides, rest, failures = split_dicom_slides(items)
    assert [s.series_uid for s in slides] == [SERIES_UID]
    assert [f.path.name for f in slides[0].files] == ["boxes_0.dcm", "boxes_1.dcm"]
    assert slides[0].image_types == ("VOLUME", "THUMBNAIL")
    assert [r.path.name for r in rest] == ["CMU-1-Small-Region.svs"]
    assert len(failures) == 1 and failures[0][0].endswith("CT_small.dcm")
    assert "not a whole-slide image" in failures[0][1] and "embed scans" in failures[0][1]
    # one series in two folders cannot be opened by OpenSlide: refused with what to do
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(DICOM_WSI / "boxes_0.dcm", tmp_path / "a")
    shutil.copy(DICOM_WSI / "boxes_1.dcm", tmp_path / "b")
    split = split_dicom_slides(
        [local_input(tmp_path / "a" / "boxes_0.dcm"), local_input(tmp_path / "b" / "boxes_1.dcm")]
    )
    assert split[0] == [] and "spans 2 folders" in split[2][0][1]


def test_dicom_wsi_series_embeds_as_one_object_and_reruns_skip(
    sample_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import timm

    torch.manual_seed(0)
    weights = tmp_path / "resnet10t.pth"
    torch.save(timm.create_model("resnet10t", pretrained=False, num_classes=0).state_dict(), weights)
    with sample_factory() as session, session.begin():
        spec = enc.add_encoder(
            session, name="test-tiny-tiles", arch="timm:resnet10t", weights=weights, modalities=["slide"],
            tile_size=16, mpp=0.5, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        )  # fmt: skip
    settings = Settings(home=tmp_path / "home")
    request = EmbedRequest("slide", paths=(str(DICOM_WSI),), encoder=spec.name, min_tissue=0.0, batch_size=8)
    scope = Scope.everything("test")
    first = embed(sample_factory, request, settings, SerialExecutor(threads=2), scope=scope)
    assert (first.embedded, first.failed, first.tiles) == (1, 2, 1)
    # the folder's SOURCES.md and SHA256SUMS are named as not slides; the two instances are one object
    assert sorted(Path(f["source"]).name for f in first.failures) == ["SHA256SUMS", "SOURCES.md"]
    assert all("not a whole-slide format" in f["reason"] for f in first.failures)
    assert first.unattached == 1  # the fixture's series is not in the sample graph's IDC index
    with sample_factory() as session:
        row = session.execute(
            text(
                "SELECT object_kind, object_id, attached_by, dim, tiles, features_uri, details FROM embedding "
                "WHERE model = :m"
            ),
            {"m": spec.name},
        ).one()
    assert (row.object_kind, row.object_id, row.attached_by, row.dim, row.tiles) == (
        "imaging_series", SERIES_UID, "unattached", 512, 1,
    )  # fmt: skip
    assert row.details["instances"] == 2 and row.details["image_types"] == ["VOLUME", "THUMBNAIL"]
    with h5py.File(row.features_uri.removeprefix("file://"), "r") as h5:
        assert h5["features"].shape == (1, 512) and h5["coords"][:].tolist() == [[0, 0]]
        assert h5.attrs["patch_size_level0"] == 16  # 16 px x 0.5 µm/px over 0.499 µm/px
    again = embed(sample_factory, request, settings, SerialExecutor(threads=2), scope=scope)
    assert (again.embedded, again.skipped) == (0, 1)
