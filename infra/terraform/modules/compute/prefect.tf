# Prefect: with prefect_mode = server, a Prefect server in the cluster (its database `prefect` on the same RDS
# instance, its own role and password); with cloud, Prefect Cloud. Either way one Prefect worker serves the
# Kubernetes work pool var.prefect_work_pool: each flow run (harvest, embed, export) becomes a Job from the
# worker image, under the worker service account, with the worker's environment.

locals {
  server = var.prefect_mode == "server"

  flow_run_env = local.env["worker"]

  # Prefect's Kubernetes base job template, with our image, namespace, service account, environment and pod
  # security as the defaults a deployment may override through job_variables.
  base_job_template = {
    job_configuration = {
      command   = "{{ command }}"
      env       = "{{ env }}"
      labels    = "{{ labels }}"
      name      = "{{ name }}"
      namespace = "{{ namespace }}"
      job_manifest = {
        apiVersion = "batch/v1"
        kind       = "Job"
        metadata   = { generateName = "{{ name }}-", labels = "{{ labels }}", namespace = "{{ namespace }}" }
        spec = {
          backoffLimit            = 0
          ttlSecondsAfterFinished = "{{ finished_job_ttl }}"
          template = {
            metadata = { labels = { "oncograph.io/ray-client" = "true", "app.kubernetes.io/part-of" = "oncograph" } }
            spec = {
              restartPolicy      = "Never"
              serviceAccountName = "{{ service_account_name }}"
              nodeSelector       = { "oncograph.io/pool" = "system" }
              securityContext    = local.ray_pod_security
              containers = [{
                name            = "prefect-job"
                image           = "{{ image }}"
                imagePullPolicy = "{{ image_pull_policy }}"
                args            = "{{ command }}"
                env             = "{{ env }}"
                resources = {
                  requests = { cpu = "{{ cpu }}", memory = "{{ memory }}" }
                  limits   = { cpu = "{{ cpu }}", memory = "{{ memory }}" }
                }
                securityContext = local.ray_container_security
                volumeMounts = [
                  { name = "home", mountPath = local.home },
                  { name = "tmp", mountPath = "/tmp" },
                ]
              }]
              volumes = [
                { name = "home", emptyDir = { sizeLimit = "50Gi" } },
                { name = "tmp", emptyDir = { sizeLimit = "10Gi" } },
              ]
            }
          }
        }
      }
      cluster_config            = "{{ cluster_config }}"
      job_watch_timeout_seconds = "{{ job_watch_timeout_seconds }}"
      pod_watch_timeout_seconds = "{{ pod_watch_timeout_seconds }}"
      stream_output             = "{{ stream_output }}"
    }
    variables = {
      type = "object"
      properties = {
        name                      = { type = "string", title = "Name" }
        command                   = { type = "string", title = "Command" }
        labels                    = { type = "object", title = "Labels", additionalProperties = { type = "string" } }
        env                       = { type = "object", title = "Environment", additionalProperties = { type = "string" }, default = local.flow_run_env }
        image                     = { type = "string", title = "Image", default = local.images["worker"] }
        image_pull_policy         = { type = "string", title = "Image pull policy", enum = ["IfNotPresent", "Always", "Never"], default = "Always" }
        namespace                 = { type = "string", title = "Namespace", default = local.ns }
        service_account_name      = { type = "string", title = "Service account", default = "worker" }
        cpu                       = { type = "string", title = "CPU", default = "2" }
        memory                    = { type = "string", title = "Memory", default = "8Gi" }
        finished_job_ttl          = { type = "integer", title = "Finished job TTL (s)", default = 86400 }
        job_watch_timeout_seconds = { type = "integer", title = "Job watch timeout (s)" }
        pod_watch_timeout_seconds = { type = "integer", title = "Pod watch timeout (s)", default = 600 }
        stream_output             = { type = "boolean", title = "Stream output", default = true }
        cluster_config            = { type = "object", title = "Cluster config" }
      }
    }
  }
}

resource "terraform_data" "prefect_cloud_needs_settings" {
  lifecycle {
    precondition {
      condition     = local.server || (var.prefect_cloud_api_url != "" && var.prefect_cloud_api_key_secret_arn != "")
      error_message = "prefect_mode = cloud needs prefect_cloud_api_url and prefect_cloud_api_key_secret_arn."
    }
  }
}

# ---------------------------------------------------------------- in-cluster server

resource "random_password" "prefect_db" {
  count   = local.server ? 1 : 0
  length  = 40
  special = false
}

# Prefect's database credential: a Kubernetes Secret (envelope-encrypted with the cluster's KMS key), read by the
# Prefect server and by db-bootstrap (which sets it on the prefect role). It is in the Terraform state: keep the
# state bucket encrypted and private (docs/deploy.md).
resource "kubernetes_secret_v1" "prefect_db" {
  count = local.server ? 1 : 0
  metadata {
    name      = "prefect-server-db"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
  }
  data = {
    password            = random_password.prefect_db[0].result
    "connection-string" = "postgresql+asyncpg://prefect:${random_password.prefect_db[0].result}@${var.database_address}:${var.database_port}/prefect?ssl=require"
  }
}

resource "helm_release" "prefect_server" {
  count      = local.server ? 1 : 0
  name       = "prefect-server"
  namespace  = kubernetes_namespace_v1.this.metadata[0].name
  repository = "https://prefecthq.github.io/prefect-helm"
  chart      = "prefect-server"
  version    = var.chart_versions["prefect_server"]
  values = [yamlencode({
    server = {
      image              = { repository = "prefecthq/prefect", prefectTag = var.prefect_image_tag }
      nodeSelector       = { "oncograph.io/pool" = "system" }
      podSecurityContext = { runAsNonRoot = true, runAsUser = local.uid, runAsGroup = local.uid, fsGroup = local.uid, seccompProfile = { type = "RuntimeDefault" } }
      containerSecurityContext = {
        allowPrivilegeEscalation = false
        readOnlyRootFilesystem   = true
        runAsNonRoot             = true
        runAsUser                = local.uid
        capabilities             = { drop = ["ALL"] }
      }
      env = [{ name = "PREFECT_SERVER_ANALYTICS_ENABLED", value = "false" }]
    }
    service    = { type = "ClusterIP", port = 4200 }
    postgresql = { enabled = false }
    # the chart reads the database URL from this Secret's key `connection-string`
    secret = { create = false, name = kubernetes_secret_v1.prefect_db[0].metadata[0].name }
  })]
  depends_on = [kubernetes_job_v1.db_bootstrap]
}

# ---------------------------------------------------------------- Prefect Cloud

data "aws_secretsmanager_secret_version" "prefect_cloud_key" {
  count     = local.server ? 0 : 1
  secret_id = var.prefect_cloud_api_key_secret_arn
}

resource "kubernetes_secret_v1" "prefect_cloud_key" {
  count = local.server ? 0 : 1
  metadata {
    name      = "prefect-api-key"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
  }
  data = {
    key = data.aws_secretsmanager_secret_version.prefect_cloud_key[0].secret_string
  }
}

# ---------------------------------------------------------------- the worker (Kubernetes work pool)

locals {
  cloud_ids = local.server ? [] : regex("accounts/([0-9a-f-]+)/workspaces/([0-9a-f-]+)", var.prefect_cloud_api_url)
}

resource "helm_release" "prefect_worker" {
  name       = "prefect-worker"
  namespace  = kubernetes_namespace_v1.this.metadata[0].name
  repository = "https://prefecthq.github.io/prefect-helm"
  chart      = "prefect-worker"
  version    = var.chart_versions["prefect_worker"]
  values = [yamlencode({
    worker = merge(
      {
        image        = { repository = "prefecthq/prefect", prefectTag = var.prefect_image_tag }
        nodeSelector = { "oncograph.io/pool" = "system" }
        apiConfig    = local.server ? "selfHostedServer" : "cloud"
        config = {
          workPool        = var.prefect_work_pool
          type            = "kubernetes"
          baseJobTemplate = { configuration = jsonencode(local.base_job_template) }
        }
        podSecurityContext = { runAsNonRoot = true, runAsUser = local.uid, runAsGroup = local.uid, fsGroup = local.uid, seccompProfile = { type = "RuntimeDefault" } }
        containerSecurityContext = {
          allowPrivilegeEscalation = false
          readOnlyRootFilesystem   = true
          runAsNonRoot             = true
          runAsUser                = local.uid
          capabilities             = { drop = ["ALL"] }
        }
      },
      local.server ? {
        selfHostedServerApiConfig = { apiUrl = local.prefect_api_url }
        } : {
        cloudApiConfig = {
          accountId    = local.cloud_ids[0]
          workspaceId  = local.cloud_ids[1]
          apiKeySecret = { name = "prefect-api-key", key = "key" }
        }
      },
    )
  })]
  depends_on = [helm_release.prefect_server, kubernetes_secret_v1.prefect_cloud_key, kubernetes_job_v1.migrate]
}
