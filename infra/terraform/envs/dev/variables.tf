variable "region" {
  description = "AWS region of the environment (e.g. us-east-1)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "availability_zones" {
  description = "Three availability zones of the region, by name (e.g. [\"us-east-1a\", \"us-east-1b\", \"us-east-1c\"])."
  type        = list(string)
  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "availability_zones must name exactly 3 zones."
  }
}

variable "domain_name" {
  description = "Host name of the UI (the API is served at api.<domain_name>)."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of domain_name; empty if you bring certificate_arn and manage DNS yourself."
  type        = string
  default     = ""
}

variable "certificate_arn" {
  description = "Existing ACM certificate for domain_name and api.<domain_name>; empty: Terraform requests one."
  type        = string
  default     = ""
}

variable "bucket_suffix" {
  description = "Suffix that makes the bucket names globally unique (e.g. your account id)."
  type        = string
}

variable "image_tag" {
  description = "Release tag of the api, ui and worker images pushed to this environment's ECR repositories."
  type        = string
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to the EKS API endpoint (where terraform and kubectl run); empty: private endpoint only."
  type        = list(string)
  default     = []
}

variable "admin_principal_arns" {
  description = "IAM roles given cluster-admin besides the identity that creates the cluster."
  type        = list(string)
  default     = []
}

variable "prefect_mode" {
  description = "server: a Prefect server in the cluster; cloud: Prefect Cloud."
  type        = string
  default     = "server"
  validation {
    condition     = contains(["server", "cloud"], var.prefect_mode)
    error_message = "prefect_mode must be server or cloud."
  }
}

variable "prefect_cloud_api_url" {
  description = "Prefect Cloud workspace API URL (prefect_mode = cloud)."
  type        = string
  default     = ""
}

variable "prefect_cloud_api_key_secret_arn" {
  description = "Secrets Manager secret holding the Prefect Cloud API key (prefect_mode = cloud)."
  type        = string
  default     = ""
}

variable "slide_bucket_arns" {
  description = "Existing S3 buckets with input slides/scans the workers may read."
  type        = list(string)
  default     = []
}

variable "gpu_max_nodes" {
  description = "Most GPU nodes (Ray GPU workers) the autoscaler may start; they scale from 0."
  type        = number
  validation {
    condition     = var.gpu_max_nodes >= 0 && var.gpu_max_nodes <= 100
    error_message = "gpu_max_nodes must be 0 to 100."
  }
}

variable "min_cell_count" {
  description = "ONCOGRAPH_MIN_CELL_COUNT: aggregate counts below it are suppressed in the API (0: off)."
  type        = number
  validation {
    condition     = var.min_cell_count >= 0
    error_message = "min_cell_count must be >= 0."
  }
}
