variable "name" {
  description = "Name prefix of every resource: oncograph-<environment>."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "availability_zones" {
  description = "Three (2 to 4) availability zones of the region, by name."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "CIDR of the VPC."
  type        = string
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per AZ (prod) or one shared (dev)."
  type        = bool
}

variable "bucket_suffix" {
  description = "Makes the S3 bucket names globally unique (<name>-exports-<suffix>)."
  type        = string
}

variable "force_destroy_buckets" {
  description = "Let terraform destroy non-empty buckets (dev only)."
  type        = bool
  default     = false
}

variable "db" {
  description = "RDS sizing and protection."
  type = object({
    instance_class        = string
    allocated_storage_gb  = number
    max_storage_gb        = number
    multi_az              = bool
    deletion_protection   = bool
    backup_retention_days = number
  })
}

variable "eks" {
  description = "Cluster version, node groups and who may administer it."
  type = object({
    kubernetes_version    = string
    public_access_cidrs   = list(string)
    admin_principal_arns  = list(string)
    system_instance_types = list(string)
    system_min_size       = number
    system_max_size       = number
    gpu_instance_types    = list(string)
    gpu_max_nodes         = number
    gpu_capacity_type     = string
  })
}

variable "domain_name" {
  description = "Host name of the UI; the API is api.<domain_name>."
  type        = string
}

variable "route53_zone_id" {
  description = "Hosted zone of domain_name (certificate validation and alias records); empty with certificate_arn."
  type        = string
  default     = ""
}

variable "certificate_arn" {
  description = "Existing ACM certificate for domain_name and api.<domain_name>; empty to request one."
  type        = string
  default     = ""
}

variable "alb_deletion_protection" {
  description = "Refuse to delete the ALB."
  type        = bool
}

variable "image_tag" {
  description = "Release tag of the api, ui and worker images in ECR."
  type        = string
}

variable "min_cell_count" {
  description = "ONCOGRAPH_MIN_CELL_COUNT (small-count suppression in the API)."
  type        = number
}

variable "api_replicas" {
  description = "API pods, min and max."
  type        = object({ min = number, max = number })
}

variable "ui_replicas" {
  description = "UI pods, min and max."
  type        = object({ min = number, max = number })
}

variable "prefect_mode" {
  description = "server (in the cluster) or cloud (Prefect Cloud)."
  type        = string
}

variable "prefect_cloud_api_url" {
  description = "Prefect Cloud workspace API URL (prefect_mode = cloud)."
  type        = string
  default     = ""
}

variable "prefect_cloud_api_key_secret_arn" {
  description = "Secrets Manager secret with the Prefect Cloud API key (prefect_mode = cloud)."
  type        = string
  default     = ""
}

variable "slide_bucket_arns" {
  description = "Existing S3 buckets of input slides/scans the workers may read."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group (flow logs, EKS, RDS, WAF)."
  type        = number
  default     = 365
}
