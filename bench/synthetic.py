"""Seeded generator of SYNTHETIC GDC case documents for scale tests (never used as data, only for load).

Every synthetic case is a deep copy of a REAL case document (TCGA-CHOL clinical + biospecimen portal exports,
merged by case_id) with fresh UUIDs (from the seeded RNG), submitter ids rewritten to ``SYNTH-<n>`` and the
project set to ``SYNTH-CHOL``, so the shape, nesting and value distribution are real while no record can be
mistaken for a real patient. Each document carries ``_synthetic`` saying so.
"""

from __future__ import annotations

import copy
import random
import re
import uuid
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
PORTAL_JSON = REPO / "data" / "gdc" / "gdc_portal_json"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def real_templates() -> list[dict[str, Any]]:
    """The 51 real TCGA-CHOL cases, clinical and biospecimen documents merged by case_id."""
    clinical = orjson.loads((PORTAL_JSON / "gdc_clinical_TCGA-CHOL_2024_51cases.json").read_bytes())
    bio = {
        d["case_id"]: d
        for d in orjson.loads((PORTAL_JSON / "gdc_biospecimen_TCGA-CHOL_2024_51cases.json").read_bytes())
    }
    merged = []
    for doc in clinical:
        full = {**doc, **{k: v for k, v in bio.get(doc["case_id"], {}).items() if k not in doc}}
        merged.append(full)
    return merged


def synthetic_cases(n: int, *, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    templates = real_templates()
    out = []
    for i in range(n):
        template = templates[rng.randrange(len(templates))]
        old = str(template.get("submitter_id") or "")
        new = f"SYNTH-{i:07d}"
        ids: dict[str, str] = {}
        doc = _rewrite(copy.deepcopy(template), rng, ids, old, new)
        doc["project"] = {"project_id": "SYNTH-CHOL", "program": {"name": "SYNTH"}}
        doc["_synthetic"] = {
            "generator": "bench/synthetic.py",
            "seed": seed,
            "index": i,
            "template_case_id": template["case_id"],
        }
        out.append(doc)
    return out


def _rewrite(node: Any, rng: random.Random, ids: dict[str, str], old: str, new: str) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key.endswith("_id") and _UUID.match(value):
                node[key] = ids.setdefault(value, str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            elif isinstance(value, str) and old and value.startswith(old):
                node[key] = new + value[len(old) :]
            elif isinstance(value, (dict, list)):
                _rewrite(value, rng, ids, old, new)
            elif (
                key.startswith("days_to_") and isinstance(value, (int, float)) and not isinstance(value, bool)
            ):
                node[key] = type(value)(value + rng.randint(-30, 30))
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, rng, ids, old, new)
    return node
