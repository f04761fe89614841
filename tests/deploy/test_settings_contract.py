"""The environment contract: every setting a deployed app reads comes from Terraform in the cloud and from
docker/compose.yml locally, and nothing is passed that no app reads.

Each ``Settings`` field is either deployment-provided (``DEPLOYMENT``: an environment variable that Terraform's
``app_config`` output and the compose file both set, unless it exists on one side only) or tuning with a safe
default (``TUNING``, with the reason). A new field in neither list fails ``test_every_setting_is_classified``.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from deploy.terraform_hcl import ENVS, MODULES, ROOT, labelled, locals_of, parse_dir, unquote

from oncograph.settings import Settings

#: deployment-provided settings -> their variable
DEPLOYMENT = {
    "database_url": "ONCOGRAPH_DATABASE_URL",
    "database_iam_auth": "ONCOGRAPH_DATABASE_IAM_AUTH",
    "export_root": "ONCOGRAPH_EXPORT_ROOT",
    "features_root": "ONCOGRAPH_FEATURES_ROOT",
    "ray_address": "ONCOGRAPH_RAY_ADDRESS",
    "home": "ONCOGRAPH_HOME",
    "min_cell_count": "ONCOGRAPH_MIN_CELL_COUNT",
    "s3_endpoint_url": "ONCOGRAPH_S3_ENDPOINT_URL",
}

#: variables of the contract that are not oncograph Settings fields, and who reads them
NOT_SETTINGS = {
    "PREFECT_API_URL": "Prefect's own setting: the worker and flow runs talk to the Prefect API with it",
    "ONCOGRAPH_API_URL": "read by the UI (oncograph_ui's REST client), which never builds Settings",
}

#: only in the cloud / only locally
CLOUD_ONLY = {
    "ONCOGRAPH_DATABASE_IAM_AUTH": "RDS IAM tokens; the local PostgreSQL takes the password in the URL"
}
LOCAL_ONLY = {
    "ONCOGRAPH_S3_ENDPOINT_URL": "MinIO/moto locally; unset on AWS, where boto's default endpoint is S3"
}

#: pure tuning with safe defaults: not deployment-provided (an operator may still set them by hand)
TUNING = {
    "gdc_url": "the public GDC API is the default; only tests and the offline demo point it at a local server",
    "pdc_url": "the public PDC endpoint is the default; only tests point it at a local stand-in",
    "gdc_page_size": "GDC paging size; the default suits the API's limits",
    "gdc_timeout_s": "per-request timeout of the GDC client",
    "gdc_max_attempts": "retry budget of the GDC client",
    "gdc_backoff_base_s": "retry backoff of the GDC client",
    "gdc_backoff_max_s": "retry backoff cap of the GDC client",
    "ingest_batch_size": "documents per ingest transaction",
    "cohort_index": "in-memory cohort index switch (ADR 0010); on by default, off only for benchmarks",
    "cohort_answer_cache": "cohort answer cache switch; on by default, off only for benchmarks",
    "api_threads": "request threads per API process; the default suits CPU-bound requests on few cores",
    "embed_batch_size": "encoder batch size",
    "embed_actors": "encoder actors; the default follows the cluster's GPUs",
    "embed_readers": "concurrent slide readers",
    "embed_reader_cpus": "Ray CPUs per reader task",
    "embed_threads": "torch threads of a CPU encoder actor; the default follows the node",
}

CONTRACT = set(DEPLOYMENT.values()) | set(NOT_SETTINGS)
TERRAFORM_NAMES = CONTRACT - set(LOCAL_ONLY)
COMPOSE_NAMES = CONTRACT - set(CLOUD_ONLY)
COMPOSE = ROOT / "docker" / "compose.yml"


def test_every_setting_is_classified() -> None:
    fields = set(Settings.model_fields)
    assert not set(DEPLOYMENT) & set(TUNING)
    unclassified = fields - set(DEPLOYMENT) - set(TUNING)
    assert not unclassified, (
        f"new Settings fields {sorted(unclassified)}: add each to DEPLOYMENT (and to Terraform's app_config and "
        "docker/compose.yml) or to TUNING with the reason it is not deployment-provided"
    )
    assert not (set(DEPLOYMENT) | set(TUNING)) - fields, "a listed setting no longer exists"
    prefix = Settings.model_config.get("env_prefix", "")
    for name, variable in DEPLOYMENT.items():
        assert variable == f"{prefix}{name}".upper()


def _compute() -> dict[str, Any]:
    return locals_of(parse_dir(MODULES / "compute"))


def test_terraform_app_config_is_the_contract_both_ways() -> None:
    app_config = set(_compute()["app_config"])
    assert app_config == TERRAFORM_NAMES, (
        f"missing from app_config: {sorted(TERRAFORM_NAMES - app_config)}; "
        f"not in the contract: {sorted(app_config - TERRAFORM_NAMES)}"
    )


def test_every_terraform_variable_reaches_a_container_that_reads_it() -> None:
    local = _compute()
    container_env = {app: {unquote(n) for n in names} for app, names in local["container_env"].items()}
    passed = set().union(*container_env.values())
    assert passed == set(local["app_config"]), "a contract variable is produced but no container gets it"
    assert "ONCOGRAPH_API_URL" in container_env["ui"]
    assert {"ONCOGRAPH_RAY_ADDRESS", "PREFECT_API_URL", "ONCOGRAPH_FEATURES_ROOT"} <= container_env["worker"]
    assert "ONCOGRAPH_DATABASE_URL" not in container_env["ui"], "the UI talks only to the API"
    # and the containers are built from exactly these environments
    apps = (MODULES / "compute" / "apps.tf").read_text()
    for app in ("api", "ui", "worker", "migrate"):
        assert f'local.env["{app}"]' in apps
    runtime = {unquote(k) for k in local["runtime_env"]}
    assert not {n for n in runtime if n.startswith("ONCOGRAPH_")}, "oncograph settings belong in app_config"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_environment_outputs_the_app_config(env: str) -> None:
    outputs = labelled(parse_dir(ENVS / env)["output"])
    assert unquote(outputs["app_config"]["value"]) == "${module.stack.app_config}"
    stack = labelled(parse_dir(MODULES / "stack")["output"])
    assert unquote(stack["app_config"]["value"]) == "${module.compute.app_config}"
    compute = labelled(parse_dir(MODULES / "compute")["output"])
    assert unquote(compute["app_config"]["value"]) == "${local.app_config}"
    secretish = [n for n in outputs if "password" in n or n.endswith("_secret")]
    assert not secretish, "no output carries a credential"


def _compose_environment() -> set[str]:
    if not COMPOSE.is_file():
        pytest.fail(
            f"{COMPOSE.relative_to(ROOT)} is missing: the local stack must set {sorted(COMPOSE_NAMES)}"
        )
    doc = yaml.safe_load(COMPOSE.read_text())
    names: set[str] = set()
    for service in (doc.get("services") or {}).values():
        env = service.get("environment") or {}
        items = env.items() if isinstance(env, dict) else ([*e.split("=", 1), ""] for e in env)
        names.update(str(k) for k, *_ in items)
    return {n for n in names if n.startswith("ONCOGRAPH_") or n.startswith("PREFECT_API_URL")}


def test_compose_sets_the_contract_both_ways() -> None:
    compose = _compose_environment()
    assert compose >= COMPOSE_NAMES, f"docker/compose.yml does not set {sorted(COMPOSE_NAMES - compose)}"
    unknown = compose - CONTRACT - {f"ONCOGRAPH_{f.upper()}" for f in TUNING}
    assert not unknown, f"docker/compose.yml sets variables no app reads: {sorted(unknown)}"
