"""Parsed Terraform for the offline checks (python-hcl2), and where the infra tree lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
MODULES = TERRAFORM / "modules"
ENVS = TERRAFORM / "envs"


def unquote(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of string literals and block labels: strip them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _clean(value: Any) -> Any:
    """Drop python-hcl2's bookkeeping keys (``__is_block__``, ``__comments__``)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("__"))}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def load_file(path: Path) -> dict[str, Any]:
    """One HCL file (.tf, .tfvars), without python-hcl2's bookkeeping keys."""
    with path.open() as f:
        cleaned: dict[str, Any] = _clean(hcl2.load(f))
    return cleaned


def parse_dir(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every top-level block of the .tf files in ``path``, merged: {"resource": [...], "variable": [...], ...}."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for tf in sorted(path.glob("*.tf")):
        for kind, blocks in load_file(tf).items():
            merged.setdefault(kind, []).extend(blocks)
    return merged


def labelled(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``variable``/``output``/``module`` blocks by their label."""
    return {unquote(k): v for block in blocks for k, v in block.items()}


def resources(parsed: dict[str, list[dict[str, Any]]], kind: str = "resource") -> dict[str, dict[str, Any]]:
    """Resources (or data sources) by address: {"aws_vpc.this": {...}}."""
    out: dict[str, dict[str, Any]] = {}
    for block in parsed.get(kind, []):
        for rtype, named in block.items():
            for name, body in named.items():
                out[f"{unquote(rtype)}.{unquote(name)}"] = body
    return out


def locals_of(parsed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in parsed.get("locals", []):
        merged.update(block)
    return merged
