variable "name" {
  description = "Name prefix (e.g. oncograph-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the oncograph workloads (the iam module binds roles to service accounts in it)."
  type        = string
  default     = "oncograph"
}

variable "cluster_name" {
  description = "EKS cluster name (for the autoscaler and the load balancer controller)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster (the load balancer controller is told it: pods cannot reach IMDS)."
  type        = string
}

variable "pod_identity_association_ids" {
  description = "IDs of the Pod Identity associations (from the iam module): workloads start only after their roles are bound."
  type        = list(string)
}

variable "image_repositories" {
  description = "Repository URL per image: api, ui, worker (from the registry module)."
  type        = map(string)
  validation {
    condition     = alltrue([for k in ["api", "ui", "worker"] : contains(keys(var.image_repositories), k)])
    error_message = "image_repositories must have api, ui and worker."
  }
}

variable "image_tag" {
  description = "The release tag of all three images (ECR tags are immutable, so a tag is one digest)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a valid Docker tag and not \"latest\" (deploy a release tag or a git sha)."
  }
}

variable "database_url" {
  description = "ONCOGRAPH_DATABASE_URL without a password (IAM authentication)."
  type        = string
  validation {
    condition     = can(regex("^postgresql\\+psycopg://[^:@/]+@[^/]+/[^?]+\\?sslmode=require$", var.database_url))
    error_message = "database_url must be postgresql+psycopg://USER@HOST:PORT/DB?sslmode=require, with no password."
  }
}

variable "database_address" {
  description = "Host of the RDS instance."
  type        = string
}

variable "database_port" {
  description = "Port of the RDS instance."
  type        = number
  default     = 5432
}

variable "database_name" {
  description = "The application database."
  type        = string
}

variable "database_app_user" {
  description = "The application's IAM-authenticated role (the bootstrap job creates it)."
  type        = string
}

variable "database_master_secret_arn" {
  description = "The RDS-managed master secret (the bootstrap job reads it)."
  type        = string
}

variable "export_root" {
  description = "ONCOGRAPH_EXPORT_ROOT (s3://<exports bucket>/exports)."
  type        = string
  validation {
    condition     = startswith(var.export_root, "s3://")
    error_message = "export_root must be an s3:// URI."
  }
}

variable "features_root" {
  description = "ONCOGRAPH_FEATURES_ROOT (s3://<features bucket>/features)."
  type        = string
  validation {
    condition     = startswith(var.features_root, "s3://")
    error_message = "features_root must be an s3:// URI."
  }
}

variable "min_cell_count" {
  description = "ONCOGRAPH_MIN_CELL_COUNT: aggregate counts from 1 to this minus 1 are suppressed in the API (0: off)."
  type        = number
  default     = 11
  validation {
    condition     = var.min_cell_count >= 0 && floor(var.min_cell_count) == var.min_cell_count
    error_message = "min_cell_count must be a whole number >= 0."
  }
}

variable "target_group_arns" {
  description = "ALB target group per app (api, ui), from the edge module."
  type        = map(string)
}

variable "api_replicas" {
  description = "Minimum and maximum API pods (the HPA scales between them on CPU)."
  type        = object({ min = number, max = number })
  default     = { min = 2, max = 10 }
  validation {
    condition     = var.api_replicas.min >= 1 && var.api_replicas.max >= var.api_replicas.min
    error_message = "api_replicas needs 1 <= min <= max."
  }
}

variable "ui_replicas" {
  description = "Minimum and maximum UI pods."
  type        = object({ min = number, max = number })
  default     = { min = 2, max = 6 }
  validation {
    condition     = var.ui_replicas.min >= 1 && var.ui_replicas.max >= var.ui_replicas.min
    error_message = "ui_replicas needs 1 <= min <= max."
  }
}

variable "export_workers" {
  description = "Pods running `oncograph worker` (the export queue; leases make more than one safe)."
  type        = number
  default     = 1
}

variable "prefect_mode" {
  description = "server: run a Prefect server in the cluster (its database on the same RDS instance); cloud: use Prefect Cloud."
  type        = string
  default     = "server"
  validation {
    condition     = contains(["server", "cloud"], var.prefect_mode)
    error_message = "prefect_mode must be server or cloud."
  }
}

variable "prefect_cloud_api_url" {
  description = "Prefect Cloud workspace API URL (https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>); only with prefect_mode = cloud."
  type        = string
  default     = ""
  validation {
    condition     = var.prefect_cloud_api_url == "" || can(regex("^https://api\\.prefect\\.cloud/api/accounts/[0-9a-f-]{36}/workspaces/[0-9a-f-]{36}$", var.prefect_cloud_api_url))
    error_message = "prefect_cloud_api_url must be https://api.prefect.cloud/api/accounts/<uuid>/workspaces/<uuid>."
  }
}

variable "prefect_cloud_api_key_secret_arn" {
  description = "Secrets Manager secret holding the Prefect Cloud API key (plain string); only with prefect_mode = cloud."
  type        = string
  default     = ""
}

variable "prefect_work_pool" {
  description = "Name of the Kubernetes work pool the worker serves (deployments name it)."
  type        = string
  default     = "oncograph-k8s"
}

variable "prefect_image_tag" {
  description = "Tag of prefecthq/prefect for the Prefect server and the worker process (keep it at the project's Prefect version)."
  type        = string
  default     = "3.9.1-python3.11-kubernetes"
}

variable "ray_version" {
  description = "Ray version of the worker image (the client in flow runs and the cluster must match)."
  type        = string
  default     = "2.60.0"
}

variable "gpu_max_nodes" {
  description = "Most Ray GPU workers (one per GPU node)."
  type        = number
}

variable "gpus_per_node" {
  description = "GPUs each Ray GPU worker claims (the whole node)."
  type        = number
  default     = 1
}

variable "ray_gpu_worker_resources" {
  description = "CPU and memory each Ray GPU worker requests (leave room for the node's daemons: 4 vCPU/16 GiB nodes fit 3/12Gi)."
  type        = object({ cpu = string, memory = string })
  default     = { cpu = "3", memory = "12Gi" }
}

variable "ray_cpu_max_workers" {
  description = "Most CPU-only Ray workers (slide reading/tiling, CPU encoders when no GPU is allowed), on the system nodes; 0..N."
  type        = number
  default     = 2
}

variable "chart_versions" {
  description = "Pinned versions of the Helm charts installed from their upstream repositories at apply time."
  type        = map(string)
  default = {
    aws_load_balancer_controller = "1.11.0"
    cluster_autoscaler           = "9.46.0"
    metrics_server               = "3.12.2"
    nvidia_device_plugin         = "0.17.0"
    kuberay_operator             = "1.3.0"
    prefect_server               = "2025.3.7194939"
    prefect_worker               = "2025.3.7194939"
  }
}
