variable "name" {
  description = "Name prefix of the roles (e.g. oncograph-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "cluster_name" {
  description = "EKS cluster whose service accounts get the roles (EKS Pod Identity)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the oncograph workloads."
  type        = string
  default     = "oncograph"
}

variable "db_connect_arn" {
  description = "rds-db:connect ARN of the application user (arn:...:dbuser:<resource id>/<user>)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:rds-db:", var.db_connect_arn))
    error_message = "db_connect_arn must be an rds-db ARN."
  }
}

variable "db_master_secret_arn" {
  description = "The RDS-managed master secret (read by the one-shot bootstrap job only)."
  type        = string
}

variable "db_kms_key_arn" {
  description = "KMS key of the master secret."
  type        = string
}

variable "exports_bucket_arn" {
  description = "ARN of the exports bucket."
  type        = string
}

variable "features_bucket_arn" {
  description = "ARN of the features bucket."
  type        = string
}

variable "s3_kms_key_arn" {
  description = "KMS key of the data buckets."
  type        = string
}

variable "slide_bucket_arns" {
  description = "Existing buckets with input slides and scans the workers may read (read-only). Empty: inputs come from GDC over HTTPS."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for a in var.slide_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", a))])
    error_message = "slide_bucket_arns must be bucket ARNs (arn:aws:s3:::name), without a key part."
  }
}

variable "slide_kms_key_arns" {
  description = "KMS keys of the slide buckets, if they use SSE-KMS."
  type        = list(string)
  default     = []
}

variable "target_group_arns" {
  description = "ALB target groups the load balancer controller may register pod IPs in."
  type        = list(string)
}
