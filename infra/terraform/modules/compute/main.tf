# The oncograph workloads on EKS. What runs where:
#   kube-system:  AWS Load Balancer Controller (TargetGroupBindings only), cluster autoscaler, metrics-server,
#                 NVIDIA device plugin (GPU nodes)
#   kuberay:      the KubeRay operator
#   <namespace>:  api and ui (Deployments + HPA + PDB, registered in the ALB's target groups), the export worker
#                 (`oncograph worker`), the Prefect server (prefect_mode = server) and worker (Kubernetes work
#                 pool: each flow run is a Job from the worker image), the Ray cluster (head on a system node,
#                 GPU workers 0..N driven by the Ray autoscaler), and two Jobs per deploy: db-bootstrap
#                 (idempotent) then migrate (`oncograph db upgrade`), both before the API rolls out.

data "aws_region" "current" {}

locals {
  ns   = var.namespace
  home = "/var/lib/oncograph"

  images = { for k in ["api", "ui", "worker"] : k => "${var.image_repositories[k]}:${var.image_tag}" }

  ray_cluster_name = "oncograph-ray"
  ray_address      = "ray://${local.ray_cluster_name}-head-svc.${local.ns}.svc.cluster.local:10001"
  api_internal_url = "http://api.${local.ns}.svc.cluster.local:8000"
  prefect_api_url  = var.prefect_mode == "server" ? "http://prefect-server.${local.ns}.svc.cluster.local:4200/api" : var.prefect_cloud_api_url

  # The environment contract: every deployment-provided setting the apps read, by its variable name. Each key
  # is an output of the environments (app_config) and a variable of docker/compose.yml
  # (tests/deploy/test_settings_contract.py holds all three to oncograph.settings.Settings).
  app_config = {
    ONCOGRAPH_DATABASE_URL      = var.database_url
    ONCOGRAPH_DATABASE_IAM_AUTH = "true"
    ONCOGRAPH_EXPORT_ROOT       = var.export_root
    ONCOGRAPH_FEATURES_ROOT     = var.features_root
    ONCOGRAPH_RAY_ADDRESS       = local.ray_address
    PREFECT_API_URL             = local.prefect_api_url
    ONCOGRAPH_API_URL           = local.api_internal_url
    ONCOGRAPH_HOME              = local.home
    ONCOGRAPH_MIN_CELL_COUNT    = tostring(var.min_cell_count)
  }

  # which container reads which of them
  container_env = {
    api     = ["ONCOGRAPH_DATABASE_URL", "ONCOGRAPH_DATABASE_IAM_AUTH", "ONCOGRAPH_EXPORT_ROOT", "ONCOGRAPH_HOME", "ONCOGRAPH_MIN_CELL_COUNT"]
    ui      = ["ONCOGRAPH_API_URL", "ONCOGRAPH_HOME"]
    worker  = ["ONCOGRAPH_DATABASE_URL", "ONCOGRAPH_DATABASE_IAM_AUTH", "ONCOGRAPH_EXPORT_ROOT", "ONCOGRAPH_FEATURES_ROOT", "ONCOGRAPH_RAY_ADDRESS", "PREFECT_API_URL", "ONCOGRAPH_HOME", "ONCOGRAPH_MIN_CELL_COUNT"]
    migrate = ["ONCOGRAPH_DATABASE_URL", "ONCOGRAPH_DATABASE_IAM_AUTH", "ONCOGRAPH_HOME"]
  }

  # process environment that is not oncograph configuration: the AWS SDK's region (token signing, S3), a
  # writable HOME on a read-only root filesystem, and no telemetry calls from the libraries
  runtime_env = {
    AWS_REGION                           = data.aws_region.current.name
    AWS_DEFAULT_REGION                   = data.aws_region.current.name
    HOME                                 = local.home
    RAY_USAGE_STATS_ENABLED              = "0"
    STREAMLIT_BROWSER_GATHER_USAGE_STATS = "false"
    HF_HUB_OFFLINE                       = "1"
    PREFECT_SERVER_ANALYTICS_ENABLED     = "false"
  }

  env = { for app, names in local.container_env : app => merge(local.runtime_env, { for n in names : n => local.app_config[n] }) }

  # one pod security posture for everything we run: non-root high UID, no privilege escalation, no capabilities,
  # read-only root filesystem (emptyDirs for /tmp and ONCOGRAPH_HOME), RuntimeDefault seccomp
  uid = 10001

  labels = { "app.kubernetes.io/part-of" = "oncograph" }
}

resource "terraform_data" "identities_bound" {
  input = var.pod_identity_association_ids
}

resource "kubernetes_namespace_v1" "this" {
  metadata {
    name = local.ns
    # our pods meet "restricted"; enforcing "baseline" keeps a chart upgrade that misses one field from
    # blocking a rollout, while warnings and audit events name any pod below "restricted"
    labels = merge(local.labels, {
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
    })
  }
}

# Service accounts the iam module's Pod Identity associations name (ui and prefect have no AWS role).
resource "kubernetes_service_account_v1" "this" {
  for_each = toset(["api", "ui", "worker", "migrate", "db-bootstrap"])
  metadata {
    name      = each.value
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  automount_service_account_token = false
}
