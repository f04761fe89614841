variable "name" {
  description = "Name prefix of every resource (e.g. oncograph-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "bucket_suffix" {
  description = "Suffix that makes the globally unique bucket names (e.g. the account id or a random word); names are <name>-<purpose>-<suffix>."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,20}$", var.bucket_suffix))
    error_message = "bucket_suffix must be 3-21 lowercase letters, digits or dashes."
  }
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted object version is kept before it expires."
  type        = number
  default     = 30
  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "access_log_days" {
  description = "Days S3 server access logs and ALB access logs are kept."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Let terraform destroy non-empty buckets (dev only)."
  type        = bool
  default     = false
}
