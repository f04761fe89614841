"""``oncograph encoders list|add`` in real subprocesses against a real database.

The registered checkpoint is a random-init timm resnet10t: these tests prove the command registers and
checks a checkpoint, not that any model is good.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import torch
from support.cli import run_cli

ADD = ["--arch", "timm:resnet10t", "--modality", "slide", "--mpp", "0.5", "--tile", "224"]
NORM = ["--mean", "0.485", "0.456", "0.406", "--std", "0.229", "0.224", "0.225"]


def _ok(args: list[str], db_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    out = run_cli(args, db_url, tmp_path, timeout=180)
    assert out.returncode == 0, out.stderr
    return out


def _fails(args: list[str], db_url: str, tmp_path: Path, message: str) -> None:
    out = run_cli(args, db_url, tmp_path, timeout=180)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert message in out.stderr and "Traceback" not in out.stderr, out.stderr


def _checkpoint(path: Path) -> Path:
    import timm

    torch.manual_seed(0)
    torch.save(timm.create_model("resnet10t", pretrained=False, num_classes=0).state_dict(), path)
    return path


def test_list_shows_the_builtin_encoders(fresh_db_url: str, tmp_path: Path) -> None:
    listed = json.loads(_ok(["encoders", "list", "--json"], fresh_db_url, tmp_path).stdout)
    by_name = {e["name"]: e for e in listed}
    assert list(by_name) == ["efficientnet-lite0", "minilm-l6"]
    lite0 = by_name["efficientnet-lite0"]
    assert (lite0["dim"], lite0["modalities"], lite0["mpp"], lite0["builtin"]) == (
        1280,
        ["slide", "scan"],
        0.5,
        True,
    )
    # the package's file is named after its sha256 prefix (torch hub convention)
    assert lite0["version"].startswith("timm:tf_efficientnet_lite0@sha256:57934424")
    assert by_name["minilm-l6"]["dim"] == 384


def test_add_registers_a_checkpoint_once(fresh_db_url: str, tmp_path: Path) -> None:
    weights = _checkpoint(tmp_path / "resnet10t.pth")
    args = ["encoders", "add", "test-r10t", *ADD, "--weights", str(weights), *NORM, "--json"]
    added = json.loads(_ok(args, fresh_db_url, tmp_path).stdout)
    assert (added["created"], added["dim"], added["weights"], added["mean"]) == (
        True,
        512,
        str(weights),
        [0.485, 0.456, 0.406],
    )
    assert added["version"].startswith(f"timm:resnet10t@sha256:{added['weights_sha256'][:16]}+prep:")
    again = _ok(args[:-1], fresh_db_url, tmp_path).stdout
    assert "already registered (unchanged) encoder test-r10t: 512-d" in again
    listed = _ok(["encoders", "list"], fresh_db_url, tmp_path).stdout
    assert "test-r10t" in listed and "efficientnet-lite0 (built-in)" in listed
    stored = json.loads(_ok(["encoders", "list", "--json"], fresh_db_url, tmp_path).stdout)[-1]
    assert stored == {k: v for k, v in added.items() if k != "created"}


def test_add_refuses_a_missing_file_and_an_unknown_arch(fresh_db_url: str, tmp_path: Path) -> None:
    missing = ["encoders", "add", "test-r10t", *ADD, "--weights", str(tmp_path / "nope.pth"), *NORM]
    _fails(missing, fresh_db_url, tmp_path, "nope.pth does not exist")
    weights = str(_checkpoint(tmp_path / "resnet10t.pth"))
    bad_arch = [
        "encoders",
        "add",
        "x",
        "--arch",
        "timm:resnet10x",
        "--modality",
        "scan",
        "--weights",
        weights,
        *NORM,
    ]
    _fails(bad_arch, fresh_db_url, tmp_path, "timm has no architecture 'resnet10x'")
    assert len(json.loads(_ok(["encoders", "list", "--json"], fresh_db_url, tmp_path).stdout)) == 2
