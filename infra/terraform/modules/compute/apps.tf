# The API, the UI and the export worker, and the per-deploy jobs that must finish before the API rolls out.

locals {
  deployments = {
    api = {
      image    = local.images["api"]
      account  = "api"
      env      = local.env["api"]
      args     = ["serve", "--host", "0.0.0.0", "--port", "8000"]
      port     = 8000
      health   = "/health"
      replicas = var.api_replicas.min
      cpu      = ["500m", "2"]
      memory   = ["1Gi", "4Gi"]
    }
    ui = {
      image    = local.images["ui"]
      account  = "ui"
      env      = local.env["ui"]
      args     = ["ui"]
      port     = 8501
      health   = "/_stcore/health"
      replicas = var.ui_replicas.min
      cpu      = ["250m", "1"]
      memory   = ["512Mi", "2Gi"]
    }
    export-worker = {
      image    = local.images["worker"]
      account  = "worker"
      env      = local.env["worker"]
      args     = ["worker"]
      port     = 0
      health   = ""
      replicas = var.export_workers
      cpu      = ["500m", "2"]
      memory   = ["2Gi", "8Gi"]
    }
  }
}

resource "kubernetes_deployment_v1" "app" {
  #checkov:skip=CKV_K8S_14:The image is <ECR repository>:<var.image_tag> (local.images); var.image_tag's validation rejects an empty tag and "latest"; checkov cannot resolve the for_each value
  #checkov:skip=CKV_K8S_43:Images are referenced by tag in ECR repositories with IMMUTABLE tags: a tag resolves to one digest forever
  for_each = local.deployments

  metadata {
    name      = each.key
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = merge(local.labels, { "app.kubernetes.io/name" = each.key })
  }

  spec {
    replicas = each.value.replicas
    selector {
      match_labels = { "app.kubernetes.io/name" = each.key }
    }
    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_unavailable = "0"
        max_surge       = "1"
      }
    }

    template {
      metadata {
        labels = merge(local.labels, { "app.kubernetes.io/name" = each.key, "oncograph.io/ray-client" = each.key == "export-worker" ? "true" : "false" })
      }
      spec {
        service_account_name             = each.value.account
        automount_service_account_token  = false
        termination_grace_period_seconds = 60
        node_selector                    = { "oncograph.io/pool" = "system" }

        security_context {
          run_as_non_root = true
          run_as_user     = local.uid
          run_as_group    = local.uid
          fs_group        = local.uid
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        topology_spread_constraint {
          max_skew           = 1
          topology_key       = "topology.kubernetes.io/zone"
          when_unsatisfiable = "ScheduleAnyway"
          label_selector {
            match_labels = { "app.kubernetes.io/name" = each.key }
          }
        }

        container {
          name              = each.key
          image             = each.value.image
          image_pull_policy = "Always"
          command           = ["oncograph"]
          args              = each.value.args

          dynamic "port" {
            for_each = each.value.port > 0 ? [each.value.port] : []
            content {
              name           = "http"
              container_port = port.value
            }
          }

          dynamic "env" {
            for_each = each.value.env
            content {
              name  = env.key
              value = env.value
            }
          }

          resources {
            requests = { cpu = each.value.cpu[0], memory = each.value.memory[0] }
            limits   = { cpu = each.value.cpu[1], memory = each.value.memory[1] }
          }

          # the export worker has no HTTP port: its probe is that the process is alive and its module imports
          dynamic "readiness_probe" {
            for_each = each.value.port > 0 ? [1] : []
            content {
              http_get {
                path = each.value.health
                port = each.value.port
              }
              period_seconds    = 10
              failure_threshold = 3
            }
          }
          dynamic "liveness_probe" {
            for_each = each.value.port > 0 ? [1] : []
            content {
              http_get {
                path = each.value.health
                port = each.value.port
              }
              initial_delay_seconds = 20
              period_seconds        = 20
              failure_threshold     = 3
            }
          }
          dynamic "liveness_probe" {
            for_each = each.value.port > 0 ? [] : [1]
            content {
              exec {
                command = ["python", "-c", "import oncograph"]
              }
              period_seconds = 60
            }
          }
          dynamic "readiness_probe" {
            for_each = each.value.port > 0 ? [] : [1]
            content {
              exec {
                command = ["python", "-c", "import oncograph"]
              }
              period_seconds = 60
            }
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            run_as_non_root            = true
            run_as_user                = local.uid
            capabilities {
              drop = ["ALL"]
            }
          }

          volume_mount {
            name       = "home"
            mount_path = local.home
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "home"
          empty_dir {
            size_limit = "10Gi"
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "2Gi"
          }
        }
      }
    }
  }

  lifecycle {
    # the HPA owns the replica count of api and ui
    ignore_changes = [spec[0].replicas]
  }

  # the schema is upgraded (and the app role exists) before a new API version starts
  depends_on = [kubernetes_job_v1.migrate, kubernetes_service_account_v1.this, terraform_data.identities_bound]
}

resource "kubernetes_service_v1" "app" {
  for_each = { api = 8000, ui = 8501 }
  metadata {
    name      = each.key
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  spec {
    type     = "ClusterIP"
    selector = { "app.kubernetes.io/name" = each.key }
    port {
      name        = "http"
      port        = each.value
      target_port = each.value
    }
  }
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "app" {
  for_each = { api = var.api_replicas, ui = var.ui_replicas }
  metadata {
    name      = each.key
    namespace = kubernetes_namespace_v1.this.metadata[0].name
  }
  spec {
    min_replicas = each.value.min
    max_replicas = each.value.max
    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.app[each.key].metadata[0].name
    }
    metric {
      type = "Resource"
      resource {
        name = "cpu"
        target {
          type                = "Utilization"
          average_utilization = 70
        }
      }
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "app" {
  for_each = toset(["api", "ui"])
  metadata {
    name      = each.key
    namespace = kubernetes_namespace_v1.this.metadata[0].name
  }
  spec {
    min_available = "1"
    selector {
      match_labels = { "app.kubernetes.io/name" = each.key }
    }
  }
}

# ---------------------------------------------------------------- per-deploy jobs

# db-bootstrap: as the RDS master user (its rotated secret read at run time), idempotently create the
# application role (LOGIN, rds_iam: IAM tokens only), hand it the database, create the pgvector extension
# (rds_superuser only) and, with the in-cluster Prefect server, Prefect's role and database.
resource "kubernetes_config_map_v1" "db_bootstrap" {
  metadata {
    name      = "db-bootstrap"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
  }
  data = {
    "db_bootstrap.py" = file("${path.module}/files/db_bootstrap.py")
  }
}

locals {
  bootstrap_env = merge(local.runtime_env, {
    BOOTSTRAP_SECRET_ARN = var.database_master_secret_arn
    BOOTSTRAP_DB_HOST    = var.database_address
    BOOTSTRAP_DB_PORT    = tostring(var.database_port)
    BOOTSTRAP_DB_NAME    = var.database_name
    BOOTSTRAP_APP_USER   = var.database_app_user
    BOOTSTRAP_PREFECT    = var.prefect_mode == "server" ? "true" : "false"
  })
  # a new script, image or setting makes a new Job name, so the Job runs again (it is idempotent)
  bootstrap_hash = substr(sha1(jsonencode([file("${path.module}/files/db_bootstrap.py"), local.images["worker"], local.bootstrap_env])), 0, 10)
  migrate_hash   = substr(sha1(jsonencode([local.images["api"], local.env["migrate"]])), 0, 10)
}

resource "kubernetes_job_v1" "db_bootstrap" {
  #checkov:skip=CKV_K8S_43:Images are referenced by tag in ECR repositories with IMMUTABLE tags: a tag resolves to one digest forever
  metadata {
    name      = "db-bootstrap-${local.bootstrap_hash}"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  spec {
    backoff_limit           = 3
    active_deadline_seconds = 600
    template {
      metadata {
        labels = merge(local.labels, { "app.kubernetes.io/name" = "db-bootstrap" })
      }
      spec {
        service_account_name            = "db-bootstrap"
        automount_service_account_token = false
        restart_policy                  = "Never"
        node_selector                   = { "oncograph.io/pool" = "system" }
        security_context {
          run_as_non_root = true
          run_as_user     = local.uid
          run_as_group    = local.uid
          fs_group        = local.uid
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }
        container {
          name              = "db-bootstrap"
          image             = local.images["worker"]
          image_pull_policy = "Always"
          command           = ["python", "/bootstrap/db_bootstrap.py"]
          dynamic "env" {
            for_each = local.bootstrap_env
            content {
              name  = env.key
              value = env.value
            }
          }
          resources {
            requests = { cpu = "100m", memory = "256Mi" }
            limits   = { cpu = "500m", memory = "512Mi" }
          }
          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            run_as_non_root            = true
            run_as_user                = local.uid
            capabilities {
              drop = ["ALL"]
            }
          }
          volume_mount {
            name       = "script"
            mount_path = "/bootstrap"
            read_only  = true
          }
          dynamic "volume_mount" {
            for_each = var.prefect_mode == "server" ? [1] : []
            content {
              name       = "prefect-db"
              mount_path = "/run/secrets/prefect-db"
              read_only  = true
            }
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }
        volume {
          name = "script"
          config_map {
            name = kubernetes_config_map_v1.db_bootstrap.metadata[0].name
          }
        }
        dynamic "volume" {
          for_each = var.prefect_mode == "server" ? [1] : []
          content {
            name = "prefect-db"
            secret {
              secret_name = kubernetes_secret_v1.prefect_db[0].metadata[0].name
            }
          }
        }
        volume {
          name = "tmp"
          empty_dir {}
        }
      }
    }
  }
  wait_for_completion = true
  timeouts {
    create = "15m"
    update = "15m"
  }
  depends_on = [kubernetes_service_account_v1.this, terraform_data.identities_bound]
}

# migrate: `oncograph db upgrade` (alembic upgrade head) once per deploy, as the application role, before the
# new API version rolls out (the Deployments depend on this Job; Terraform waits for it to complete).
# Migrations are expand/contract (docs/deploy.md): the old API version keeps working on the new schema.
resource "kubernetes_job_v1" "migrate" {
  #checkov:skip=CKV_K8S_43:Images are referenced by tag in ECR repositories with IMMUTABLE tags: a tag resolves to one digest forever
  metadata {
    name      = "migrate-${local.migrate_hash}"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  spec {
    backoff_limit           = 1
    active_deadline_seconds = 3600
    template {
      metadata {
        labels = merge(local.labels, { "app.kubernetes.io/name" = "migrate" })
      }
      spec {
        service_account_name            = "migrate"
        automount_service_account_token = false
        restart_policy                  = "Never"
        node_selector                   = { "oncograph.io/pool" = "system" }
        security_context {
          run_as_non_root = true
          run_as_user     = local.uid
          run_as_group    = local.uid
          fs_group        = local.uid
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }
        container {
          name              = "migrate"
          image             = local.images["api"]
          image_pull_policy = "Always"
          command           = ["oncograph"]
          args              = ["db", "upgrade"]
          dynamic "env" {
            for_each = local.env["migrate"]
            content {
              name  = env.key
              value = env.value
            }
          }
          resources {
            requests = { cpu = "250m", memory = "512Mi" }
            limits   = { cpu = "1", memory = "2Gi" }
          }
          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            run_as_non_root            = true
            run_as_user                = local.uid
            capabilities {
              drop = ["ALL"]
            }
          }
          volume_mount {
            name       = "home"
            mount_path = local.home
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }
        volume {
          name = "home"
          empty_dir {}
        }
        volume {
          name = "tmp"
          empty_dir {}
        }
      }
    }
  }
  wait_for_completion = true
  timeouts {
    create = "60m"
    update = "60m"
  }
  depends_on = [kubernetes_job_v1.db_bootstrap]
}
